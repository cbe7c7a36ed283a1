// Issue 20, upgrade hand-over in the sans-I/O core: TurnServer A (the old process) snapshots
// its allocations, the bytes cross, TurnServer B (the new process, another clock, its own
// quota and relay ids) restores them, and A forgets them without a usage record.
#include <doctest/doctest.h>

#include "hand_over_fixture.hpp"
#include "relay/core/allocation_snapshot.hpp"
#include "relay/wire/channel_data.hpp"
#include "support/turn_harness.hpp"

using namespace tern;
using test::Reply;
using test::TestClient;
using test::TurnHarness;
using namespace test::hand_over;

namespace {

// What crosses between the processes: every allocation of A, encoded and decoded.
std::vector<core::AllocationSnapshot> handOver(TurnHarness& a) {
  std::vector<core::AllocationSnapshot> out;
  for (const auto& s :
       a.server.snapshotAllocations(a.now, [](const core::Allocation&) { return true; })) {
    out.push_back(test::hand_over::crossed(s));
  }
  return out;
}

}  // namespace

TEST_CASE(
    "a restored allocation relays both ways, keeps its expiry and permission times, and its usage "
    "record counts both processes") {
  TurnHarness a;
  TestClient c(a, kTuple);
  setUpOnA(a, c);
  const auto moving = handOver(a);
  REQUIRE(moving.size() == 1);
  CHECK(moving[0].worker == 0);

  TurnHarness b;
  b.now = core::TimePoint{std::chrono::seconds(200)};  // another process, another clock
  REQUIRE(restoreOnB(b, moving[0]));
  CHECK(b.server.allocationCount() == 1);
  CHECK(b.quota.total() == 1);
  CHECK(b.counters.activeAllocations() == 1);
  CHECK(b.counters.allocations_created[0][0].get() == 0);  // created in the old process

  // The old process lets go: no usage record, its quota and gauge down, its descriptor closed.
  CHECK(a.server.forgetHandedOver([](const core::Allocation&) { return true; }, a.now) == 1);
  CHECK(a.server.allocationCount() == 0);
  CHECK(a.output.ended.empty());
  CHECK(a.quota.total() == 0);
  CHECK(a.counters.activeAllocations() == 0);
  CHECK(a.output.closed_relays.size() == 1);

  TestClient on_b(b, kTuple);
  on_b.session = c.session;
  on_b.channelData(kChannel, test::payloadOf(10));
  REQUIRE(b.output.to_peers.size() == 1);
  CHECK(b.output.to_peers[0].relay == kNewRelay);
  CHECK(b.output.to_peers[0].peer == kPeer);
  b.fromPeer(kNewRelay, kPeer, test::bytesOf(test::payloadOf(20)));
  REQUIRE(b.output.sent.size() == 1);
  CHECK(b.output.sent[0].tuple == kTuple);
  CHECK(wire::classify(b.output.sent[0].bytes) == wire::PacketKind::kChannelData);

  // The permission was made 100 s before the hand-over: 200 s are left of its 300 s.
  b.advance(std::chrono::seconds(190));
  on_b.channelData(kChannel, test::payloadOf(10));
  CHECK(b.output.to_peers.size() == 2);
  b.advance(std::chrono::seconds(20));
  on_b.channelData(kChannel, test::payloadOf(10));
  CHECK(b.output.to_peers.size() == 2);
  CHECK(b.dropped(metrics::DropReason::kNoPermission) == 1);

  // The allocation had 500 s of its 600 s left.
  b.advance(std::chrono::seconds(280));
  CHECK(b.server.allocationCount() == 1);
  CHECK(b.output.ended.empty());
  b.advance(std::chrono::seconds(20));
  CHECK(b.server.allocationCount() == 0);
  REQUIRE(b.output.ended.size() == 1);
  CHECK(b.output.ended[0].reason == "expired");
  CHECK(b.output.ended[0].usage.packets_to_peer == 3);  // 1 on A, 2 on B
  CHECK(b.output.ended[0].usage.bytes_to_peer == 30);
  CHECK(b.output.ended[0].usage.packets_to_client == 2);  // 1 on A, 1 on B
  CHECK(b.output.ended[0].usage.bytes_to_client == 40);
  CHECK(b.quota.total() == 0);
  CHECK(b.counters.activeAllocations() == 0);
  CHECK(b.output.closed_relays == std::vector<core::RelayId>{kNewRelay});
}

TEST_CASE(
    "a Refresh on the new process authenticates with the allocation's key, and a MOBILITY-TICKET "
    "the old one sealed still moves it") {
  TurnHarness a;
  TestClient c(a, kTuple);
  setUpOnA(a, c);
  const auto old_ticket = c.session.mobilityTicket();
  REQUIRE_FALSE(old_ticket.empty());
  const auto moving = handOver(a);
  REQUIRE(moving.size() == 1);
  TurnHarness b;
  b.now = core::TimePoint{std::chrono::seconds(200)};
  REQUIRE(restoreOnB(b, moving[0]));

  TestClient on_b(b, kTuple);
  on_b.session = c.session;
  const Reply refreshed = on_b.refresh();
  REQUIRE(refreshed.success());
  CHECK(b.authResults(metrics::AuthResult::kOk) >= 1);

  // The old process's ticket names (worker 0, relay 0): relay 0 is nothing on B; the rename
  // table leads it to kNewRelay, and the handle still matches.
  REQUIRE(moving[0].relays[0].id != kNewRelay);
  TestClient moved(b, kNew);
  moved.session = on_b.session;
  moved.session.addressChanged();
  moved.session.setMobilityTicket(old_ticket);
  const Reply r = moved.refresh();
  REQUIRE(r.success());
  REQUIRE(b.output.moves.size() == 1);
  CHECK(b.output.moves[0].from == kTuple.client);
  CHECK(b.output.moves[0].to == kNew.client);
  moved.channelData(kChannel, test::payloadOf(4));
  REQUIRE_FALSE(b.output.to_peers.empty());
  CHECK(b.output.to_peers.back().relay == kNewRelay);

  // The ticket is spent (a move renews the handle): the old process's ticket moves nothing more.
  TestClient replay(b, test::udpTuple("203.0.113.10:42000"));
  replay.session = moved.session;
  replay.session.addressChanged();
  replay.session.setMobilityTicket(old_ticket);
  CHECK(replay.refresh().code() == 400);

  // The rename goes with the allocation.
  REQUIRE(moved.refresh(0).success());
  CHECK(b.output.ended.size() == 1);
  CHECK(b.output.ended[0].reason == "deleted");
}

TEST_CASE("an old process's ticket is served by worker (index mod worker count) of the new one") {
  core::ServerOptions old_options;
  old_options.worker_index = 3;
  TurnHarness a(old_options);
  TestClient c(a, kTuple);
  setUpOnA(a, c);
  const auto ticket = c.session.mobilityTicket();
  const auto moving = handOver(a);
  REQUIRE(moving.size() == 1);
  CHECK(moving[0].worker == 3);

  // Two workers now: old worker 3 goes to new worker 1.
  core::ServerOptions options_1;
  options_1.worker_index = 1;
  options_1.worker_count = 2;
  TurnHarness b1(options_1);
  REQUIRE(restoreOnB(b1, moving[0]));
  TestClient moved(b1, kNew);
  moved.session = c.session;
  moved.session.addressChanged();
  moved.session.setMobilityTicket(ticket);
  CHECK(moved.refresh().success());
  CHECK(b1.output.moves.size() == 1);

  // Worker 0 of the new process passes such a ticket on to worker 1.
  core::ServerOptions options_0;
  options_0.worker_count = 2;
  TurnHarness b0(options_0, b1);
  TestClient elsewhere(b0, test::udpTuple("203.0.113.10:42000"));
  elsewhere.session = c.session;
  elsewhere.session.addressChanged();
  elsewhere.session.setMobilityTicket(ticket);
  // The first try learns a nonce of this worker for this address (438).
  b0.fromClient(elsewhere.tuple, test::bytesOf(elsewhere.session.refresh(std::nullopt)));
  REQUIRE(b0.output.sent.size() == 1);
  (void)elsewhere.session.onResponse(Reply(b0.output.sent[0].bytes).view());
  b0.fromClient(elsewhere.tuple, test::bytesOf(elsewhere.session.refresh(std::nullopt)));
  CHECK(b0.output.sent.size() == 1);
  REQUIRE(b0.output.transfers.size() == 1);
  CHECK(b0.output.transfers[0].owner == 1);
}

TEST_CASE(
    "a restore counts past a lowered quota, and a lost relay ends the allocation with its usage "
    "record") {
  TurnHarness a;
  TestClient c(a, kTuple);
  setUpOnA(a, c);
  TestClient second(a, test::udpTuple("192.0.2.8:40000"));
  second.mustAllocate();
  const auto moving = handOver(a);
  REQUIRE(moving.size() == 2);

  test::ServicesOptions lowered;
  lowered.max_per_user = 1;
  TurnHarness b({}, lowered);
  const bool first_is_c = moving[0].tuple == kTuple;
  const auto& of_c = moving[first_is_c ? 0 : 1];
  const auto& of_second = moving[first_is_c ? 1 : 0];
  REQUIRE(restoreOnB(b, of_c));
  // RFC 6062 peer connections stay behind (the old process closes them): their ids go.
  auto with_connection = of_second;
  with_connection.connections = {5};
  REQUIRE(restoreOnB(b, with_connection, 41));
  b.server.forEachAllocation([](const core::Allocation& x) { CHECK(x.connections().empty()); });
  CHECK(b.quota.allocationsOf(test::kTestUser) == 2);  // over the new limit of 1: still running
  CHECK(b.server.allocationCount() == 2);
  // A new Allocate is held to the new limit.
  TestClient third(b, test::udpTuple("192.0.2.9:40000"));
  CHECK(third.allocate().code() == 486);

  // The same allocation in another new process, its relay lost this time.
  TurnHarness b2;
  CHECK_FALSE(restoreOnB(b2, of_c, core::kLostRelay));
  CHECK(b2.server.allocationCount() == 0);
  REQUIRE(b2.output.ended.size() == 1);
  CHECK(b2.output.ended[0].reason == "deleted");
  CHECK(b2.output.ended[0].usage.packets_to_peer == 1);
  CHECK(b2.output.ended[0].usage.packets_to_client == 1);
  CHECK(b2.quota.total() == 0);
  CHECK(b2.counters.activeAllocations() == 0);
  // A 5-tuple that already has an allocation: the restored one ends, the adopted socket closes.
  CHECK_FALSE(restoreOnB(b, of_c, 42));
  CHECK(b.server.allocationCount() == 2);
  CHECK(b.output.closed_relays == std::vector<core::RelayId>{42});
  CHECK(b.output.ended.size() == 1);
}

TEST_CASE("forgetHandedOver removes only what moves, and what stays keeps working") {
  TurnHarness a;
  TestClient c(a, kTuple);
  setUpOnA(a, c);
  TestClient stays(a, test::udpTuple("192.0.2.8:40000"));
  stays.mustAllocate();
  const auto moves = [](const core::Allocation& x) { return x.tuple() == kTuple; };
  const auto snapshots = a.server.snapshotAllocations(a.now, moves);
  REQUIRE(snapshots.size() == 1);
  CHECK(snapshots[0].tuple == kTuple);
  CHECK(a.server.allocationCount() == 2);  // a snapshot changes nothing
  CHECK(a.server.forgetHandedOver(moves, a.now) == 1);
  CHECK(a.server.allocationCount() == 1);
  CHECK(a.output.ended.empty());
  CHECK(a.quota.total() == 1);
  CHECK(stays.refresh().success());
}

TEST_CASE(
    "a dual allocation restores with both relayed addresses, each under its adopted relay id (RFC "
    "8656 §7.2)") {
  const wire::SocketAddress peer6 = test::socketAddress("[2001:4860:4860::8888]:7000");
  TurnHarness a;
  a.output.ipv6 = true;
  TestClient c(a, kTuple);
  REQUIRE(c.request(wire::Method::kAllocate, [](wire::MessageBuilder& b) {
             b.add(wire::attr::RequestedTransport{}).add(wire::attr::AdditionalAddressFamily{0x02});
           }).success());
  REQUIRE(c.createPermission({kPeer, peer6}).success());
  REQUIRE(c.channelBind(kChannel, peer6).success());
  const auto moving = handOver(a);
  REQUIRE(moving.size() == 1);
  REQUIRE(moving[0].relays.size() == 2);

  TurnHarness b;
  b.now = core::TimePoint{std::chrono::seconds(200)};
  b.output.open_relays[40] = moving[0].relays[0].relayed;
  b.output.open_relays[41] = moving[0].relays[1].relayed;
  const std::array<core::RelayId, 2> adopted{40, 41};
  REQUIRE(b.server.restoreAllocation(moving[0], adopted, b.now));
  TestClient on_b(b, kTuple);
  on_b.session = c.session;
  on_b.channelData(kChannel, {1, 2, 3});
  on_b.sendIndication(kPeer, {4, 5});
  REQUIRE(b.output.to_peers.size() == 2);
  CHECK(b.output.to_peers[0].relay == 41);
  CHECK(b.output.to_peers[0].peer == peer6);
  CHECK(b.output.to_peers[1].relay == 40);
  b.fromPeer(41, peer6, test::bytesOf({9, 9}));
  REQUIRE(b.output.sent.size() == 1);
  CHECK(wire::classify(b.output.sent[0].bytes) == wire::PacketKind::kChannelData);
  REQUIRE(on_b.refresh(0).success());
  CHECK(b.output.closed_relays == std::vector<core::RelayId>{40, 41});
  CHECK(b.quota.total() == 0);
}
