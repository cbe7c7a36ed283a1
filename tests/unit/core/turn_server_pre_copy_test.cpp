// Issue 20's pre-copy (docs/upgrade.md): the old process sends each allocation early while it
// serves on, then at the freeze only what changed (Allocation::changes()); the new process
// swaps the newer state into what it restored (updateRestored) or lets go of what ended in the
// old process meanwhile (dropRestored). Fixtures: hand_over_fixture.hpp.
#include <doctest/doctest.h>

#include "hand_over_fixture.hpp"
#include "relay/core/allocation_snapshot.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/wire/channel_data.hpp"
#include "support/turn_harness.hpp"

using namespace tern;
using test::TestClient;
using test::TurnHarness;
using namespace test::hand_over;

namespace {

const core::FiveTuple kOther = test::udpTuple("192.0.2.8:40000");
const wire::SocketAddress kPeer2 = test::socketAddress("8.8.4.4:6000");
constexpr std::uint16_t kChannel2 = 0x4002;

// What crosses between the processes for the allocation of A whose first relay is `relay`.
core::AllocationSnapshot crossing(TurnHarness& a, core::RelayId relay) {
  const core::Allocation* allocation = a.server.allocationByRelay(relay);
  REQUIRE(allocation != nullptr);
  return crossed(a.server.snapshot(*allocation, a.now));
}

std::vector<core::FiveTuple> tuplesOn(const TurnHarness& h) {
  std::vector<core::FiveTuple> out;
  h.server.forEachAllocation([&](const core::Allocation& x) { out.push_back(x.tuple()); });
  return out;
}

}  // namespace

TEST_CASE("pre-copy: every control-path change bumps Allocation::changes(), relaying does not") {
  const core::TimePoint now{std::chrono::seconds(1000)};
  core::Allocation a(kTuple, 7, test::socketAddress("198.51.100.1:50000"), "user",
                     std::vector<std::uint8_t>(16, 1), now);
  std::uint32_t seen = a.changes();
  const auto bumped = [&] {
    const bool moved = a.changes() != seen;
    seen = a.changes();
    return moved;
  };

  // The packet path: usage and the bandwidth buckets (a snapshot compares those by value).
  a.usage().packets_to_peer += 1;
  a.usage().bytes_to_peer += 100;
  a.usage().packets_to_client += 1;
  a.usage().bytes_to_client += 200;
  const core::RequestRateLimit limit(10, 10);
  a.bandwidth(metrics::Direction::kClientToPeer).take(limit, 1, now);
  a.bandwidth(metrics::Direction::kPeerToClient).take(limit, 1, now);
  (void)a.hasPermission(kPeer.ip, now);
  (void)a.channelByNumber(kChannel, now);
  (void)a.channelByPeer(kPeer, now);
  (void)a.snapshot(now);
  CHECK_FALSE(bumped());

  CHECK(a.installPermission(kPeer.ip, now, now + std::chrono::seconds(300), 10));
  CHECK(bumped());
  CHECK(a.installPermission(kPeer.ip, now, now + std::chrono::seconds(400), 10));  // a refresh
  CHECK(bumped());
  CHECK(a.bindChannel(kChannel, kPeer, now, now + std::chrono::seconds(600), 10));
  CHECK(bumped());
  a.setExpiry(now + std::chrono::seconds(600));
  CHECK(bumped());
  a.setToken(1'800'000'000, std::vector<std::uint8_t>(16, 2), "kid");
  CHECK(bumped());
  a.setMobilityHandle(5);
  CHECK(bumped());
  a.setTuple(kNew);
  CHECK(bumped());
  (void)a.admitRequest(limit, now);
  CHECK(bumped());
  (void)a.recheckPeers(core::PeerPolicy{core::PeerPolicyOptions{}}, now);
  CHECK(bumped());
  a.reserveConnection();
  a.addConnection(5);
  CHECK(bumped());
  a.removeConnection(5);
  CHECK(bumped());
  a.addConnection(6);
  CHECK(bumped());
  a.clearConnections();
  CHECK(bumped());
  a.setAllocateExtras(9, 440);
  CHECK(bumped());
  a.setAllocateTransaction(wire::TransactionId{});
  CHECK(bumped());
  a.setIntegrity(wire::AttributeType::kMessageIntegritySha256);
  CHECK(bumped());
  a.setRelayId(0, 8);
  CHECK(bumped());
  a.setTcp();
  CHECK(bumped());
}

TEST_CASE("pre-copy: relaying through the server leaves changes() alone, a request moves it") {
  TurnHarness a;
  TestClient c(a, kTuple);
  setUpOnA(a, c);
  const core::Allocation* allocation = a.server.allocationByRelay(c.relay());
  REQUIRE(allocation != nullptr);
  const std::uint32_t before = allocation->changes();
  c.channelData(kChannel, test::payloadOf(10));
  c.sendIndication(kPeer, {1, 2, 3});
  a.fromPeer(c.relay(), kPeer, test::bytesOf(test::payloadOf(20)));
  REQUIRE(a.output.to_peers.size() == 3);
  CHECK(allocation->usage().packets_to_peer == 3);
  CHECK(allocation->changes() == before);
  REQUIRE(c.createPermission({kPeer}).success());  // only a refresh of the same permission
  CHECK(allocation->changes() != before);
}

TEST_CASE(
    "pre-copy: updateRestored swaps in newer permissions, channels, lifetime, usage and an RFC "
    "8016 move, in place") {
  TurnHarness a;
  TestClient c(a, kTuple);
  setUpOnA(a, c);
  const core::AllocationSnapshot early = crossing(a, c.relay());

  TurnHarness b;
  b.now = core::TimePoint{std::chrono::seconds(200)};  // another process, another clock
  REQUIRE(restoreOnB(b, early));
  const core::Allocation* restored = b.server.allocationByRelay(kNewRelay);
  REQUIRE(restored != nullptr);

  // A serves on: the client moves to kNew (RFC 8016), then makes a new permission and
  // channel, asks for a longer lifetime (after the move: its Refresh set the default one) and
  // relays more.
  TestClient moved(a, kNew);
  moved.session = c.session;
  moved.session.addressChanged();
  moved.session.setMobilityTicket(c.session.mobilityTicket());
  REQUIRE(moved.refresh().success());
  REQUIRE(a.output.moves.size() == 1);
  REQUIRE(moved.createPermission({kPeer2}).success());
  REQUIRE(moved.channelBind(kChannel2, kPeer2).success());
  REQUIRE(moved.refresh(3600).success());
  moved.channelData(kChannel, test::payloadOf(10));
  REQUIRE(a.output.to_peers.size() == 2);
  const core::AllocationSnapshot late = crossing(a, c.relay());
  REQUIRE(late.tuple == kNew);

  // Before the update B knows neither the new channel nor the new 5-tuple.
  TestClient on_b(b, kTuple);
  on_b.session = moved.session;
  on_b.channelData(kChannel2, test::payloadOf(4));
  CHECK(b.output.to_peers.empty());

  const core::Allocation* updated = b.server.updateRestored(late, b.now);
  REQUIRE(updated != nullptr);
  CHECK(updated == restored);  // the same object: the table's entries stay valid
  REQUIRE(updated->relays().size() == 1);
  CHECK(updated->relay() == kNewRelay);
  CHECK(updated->tuple() == kNew);
  CHECK(updated->usage().packets_to_peer == 2);
  CHECK(b.server.allocationByRelay(kNewRelay) == updated);
  CHECK(tuplesOn(b) == std::vector<core::FiveTuple>{kNew});
  CHECK(b.server.allocationCount() == 1);
  CHECK(b.server.scheduledExpiries() == 1);
  CHECK(b.quota.total() == 1);
  CHECK(b.counters.activeAllocations() == 1);

  // The new channel relays from the new 5-tuple, through the same adopted socket; the old
  // 5-tuple has nothing any more.
  TestClient at_new(b, kNew);
  at_new.session = moved.session;
  at_new.channelData(kChannel2, test::payloadOf(6));
  REQUIRE(b.output.to_peers.size() == 1);
  CHECK(b.output.to_peers[0].relay == kNewRelay);
  CHECK(b.output.to_peers[0].peer == kPeer2);
  on_b.channelData(kChannel, test::payloadOf(4));
  CHECK(b.output.to_peers.size() == 1);
  b.fromPeer(kNewRelay, kPeer2, test::bytesOf(test::payloadOf(20)));
  REQUIRE_FALSE(b.output.sent.empty());
  CHECK(b.output.sent.back().tuple == kNew);

  // The old lifetime had 500 s left; the refreshed one about 3600 s.
  b.advance(std::chrono::seconds(3000));
  CHECK(b.server.allocationCount() == 1);
  CHECK(b.output.ended.empty());
  b.advance(std::chrono::seconds(700));
  CHECK(b.server.allocationCount() == 0);
  CHECK(b.server.scheduledExpiries() == 0);
  REQUIRE(b.output.ended.size() == 1);
  CHECK(b.output.ended[0].reason == "expired");
  CHECK(b.output.ended[0].usage.packets_to_peer == 3);  // 2 on A, 1 on B
  CHECK(b.output.ended[0].usage.bytes_to_peer == 26);
  CHECK(b.output.ended[0].usage.packets_to_client == 2);  // 1 on A, 1 on B
  CHECK(b.output.ended[0].usage.bytes_to_client == 40);
  CHECK(b.output.closed_relays == std::vector<core::RelayId>{kNewRelay});
  CHECK(b.quota.total() == 0);
}

TEST_CASE(
    "pre-copy: updateRestored refuses a snapshot never restored and a 5-tuple taken by another "
    "allocation, keeping the old state") {
  TurnHarness a;
  TestClient c(a, kTuple);
  setUpOnA(a, c);
  TestClient other(a, kOther);
  other.mustAllocate();
  const core::AllocationSnapshot of_c = crossing(a, c.relay());
  const core::AllocationSnapshot of_other = crossing(a, other.relay());

  TurnHarness b;
  REQUIRE(restoreOnB(b, of_c));
  REQUIRE(restoreOnB(b, of_other, 41));
  const core::Allocation* restored = b.server.allocationByRelay(kNewRelay);
  REQUIRE(restored != nullptr);
  const core::TimePoint expires = restored->expires();

  // Never restored: another old worker, or another old relay.
  auto elsewhere = of_c;
  elsewhere.worker = 1;
  CHECK(b.server.updateRestored(elsewhere, b.now) == nullptr);
  auto unknown_relay = of_c;
  unknown_relay.relays[0].id = 99;
  CHECK(b.server.updateRestored(unknown_relay, b.now) == nullptr);
  auto no_relay = of_c;
  no_relay.relays.clear();
  CHECK(b.server.updateRestored(no_relay, b.now) == nullptr);

  // Moved onto the 5-tuple the other allocation holds: refused, nothing of it applied.
  auto onto_other = of_c;
  onto_other.tuple = kOther;
  onto_other.expires_in_ns += std::int64_t{1000} * 1'000'000'000;
  onto_other.usage.packets_to_peer = 50;
  CHECK(b.server.updateRestored(onto_other, b.now) == nullptr);
  CHECK(restored->tuple() == kTuple);
  CHECK(restored->expires() == expires);
  CHECK(restored->usage().packets_to_peer == 1);
  CHECK(restored->relay() == kNewRelay);
  CHECK(b.server.allocationCount() == 2);
  CHECK(b.server.scheduledExpiries() == 2);
  const core::Allocation* other_on_b = b.server.allocationByRelay(41);
  REQUIRE(other_on_b != nullptr);
  CHECK(other_on_b->tuple() == kOther);
  CHECK(b.output.ended.empty());
  CHECK(b.output.closed_relays.empty());

  // The same update without the move goes through (it was the taken 5-tuple that refused).
  auto in_place = onto_other;
  in_place.tuple = kTuple;
  const core::Allocation* updated = b.server.updateRestored(in_place, b.now);
  REQUIRE(updated == restored);
  CHECK(updated->expires() > expires);
  CHECK(updated->usage().packets_to_peer == 50);
  CHECK(b.server.scheduledExpiries() == 2);
  // The queue follows the new expiry: the other allocation (600 s left) now goes first.
  b.advance(std::chrono::seconds(700));
  CHECK(b.server.allocationByRelay(41) == nullptr);
  CHECK(b.server.allocationByRelay(kNewRelay) == updated);
  REQUIRE(b.output.ended.size() == 1);
  CHECK(b.output.ended[0].reason == "expired");
  b.advance(std::chrono::seconds(1000));
  CHECK(b.server.allocationCount() == 0);
  REQUIRE(b.output.ended.size() == 2);
  CHECK(b.output.ended[1].usage.packets_to_peer == 50);
}

TEST_CASE(
    "pre-copy: dropRestored lets go without a usage record, closes the relay and frees the "
    "quota") {
  TurnHarness a;
  TestClient c(a, kTuple);
  setUpOnA(a, c);
  const core::AllocationSnapshot s = crossing(a, c.relay());

  test::ServicesOptions one_each;
  one_each.max_per_user = 1;
  TurnHarness b({}, one_each);
  REQUIRE(restoreOnB(b, s));
  CHECK(b.server.allocationCount() == 1);
  CHECK(b.quota.allocationsOf(test::kTestUser) == 1);
  TestClient refused(b, kOther);
  CHECK(refused.allocate().code() == 486);  // the limit of 1 is used

  CHECK_FALSE(
      b.server.dropRestored(static_cast<std::uint8_t>(s.worker + 1), s.relays[0].id, b.now));
  CHECK_FALSE(b.server.dropRestored(s.worker, s.relays[0].id + 1, b.now));
  CHECK_FALSE(b.server.dropRestored(s.worker, kNewRelay, b.now));  // B's id, not the old one
  CHECK(b.server.allocationCount() == 1);

  CHECK(b.server.dropRestored(s.worker, s.relays[0].id, b.now));
  CHECK(b.server.allocationCount() == 0);
  CHECK(b.server.scheduledExpiries() == 0);
  CHECK(b.output.ended.empty());  // the old process wrote its record
  CHECK(b.output.closed_relays == std::vector<core::RelayId>{kNewRelay});
  CHECK_FALSE(b.output.open_relays.contains(kNewRelay));
  CHECK(b.quota.total() == 0);
  CHECK(b.counters.activeAllocations() == 0);
  CHECK(b.server.allocationByRelay(kNewRelay) == nullptr);

  // Gone for good: neither dropped again nor updated.
  CHECK_FALSE(b.server.dropRestored(s.worker, s.relays[0].id, b.now));
  CHECK(b.server.updateRestored(s, b.now) == nullptr);

  // The user's place is free again under the limit of 1.
  TestClient later(b, kNew);
  CHECK(later.allocate().success());
  CHECK(b.server.allocationCount() == 1);
  b.advance(std::chrono::seconds(4000));
  REQUIRE(b.output.ended.size() == 1);  // only the new allocation's record
  CHECK(b.output.ended[0].usage.packets_to_peer == 0);
}
