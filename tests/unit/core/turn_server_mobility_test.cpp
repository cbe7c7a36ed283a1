// RFC 8016 (Mobility with TURN) in the sans-I/O core: tickets in Allocate and Refresh, the
// move of an allocation to a new 5-tuple on the same worker and across workers (two
// TurnServers wired by hand, as relay/io wires them through mailboxes), and the refusals.
#include <doctest/doctest.h>

#include "auth/rest_credentials.hpp"
#include "relay/wire/channel_data.hpp"
#include "support/turn_harness.hpp"

using namespace tern;
using test::Reply;
using test::TestClient;
using test::TurnHarness;
using wire::AttributeType;

namespace {

const core::FiveTuple kOld = test::udpTuple("192.0.2.7:40000");
const core::FiveTuple kNew = test::udpTuple("203.0.113.9:41000");
// A new source port on the same address: what a client behind a NAT that rebinds sees, and
// what coturn's `turnutils_uclient -M` does.
const core::FiveTuple kNewPort = test::udpTuple("192.0.2.7:40001");
const wire::SocketAddress kPeer = test::socketAddress("8.8.8.8:5000");
constexpr std::uint16_t kChannel = 0x4001;

client::TurnSession::AllocateOptions mobile() {
  client::TurnSession::AllocateOptions o;
  o.mobility = true;
  return o;
}

std::vector<std::uint8_t> ticketOf(const Reply& r) {
  const auto t = r.get<wire::attr::MobilityTicket>();
  REQUIRE(t.has_value());
  return {t->value.begin(), t->value.end()};
}

// A client with a UDP allocation that asked for mobility, a permission and a channel.
void setUp(TestClient& c) {
  c.mustAllocate(mobile());
  REQUIRE_FALSE(c.session.mobilityTicket().empty());
  REQUIRE(c.createPermission({kPeer}).success());
  REQUIRE(c.channelBind(kChannel, kPeer).success());
}

// The same client (same session, same ticket) seen from another 5-tuple.
TestClient movedClient(TurnHarness& h, const TestClient& c, const core::FiveTuple& tuple) {
  TestClient moved(h, tuple);
  moved.session = c.session;
  moved.session.addressChanged();
  return moved;
}

}  // namespace

TEST_CASE("Allocate with an empty MOBILITY-TICKET gets a ticket, without one gets none (RFC 8016 §3.1)") {
  TurnHarness h;
  TestClient with(h, kOld);
  const Reply r = with.allocate(mobile());
  REQUIRE(r.success());
  CHECK(ticketOf(r).size() == auth::MobilityTicketCodec::kSize);
  TestClient without(h, kNew);
  const Reply plain = without.allocate();
  REQUIRE(plain.success());
  CHECK_FALSE(plain.has(AttributeType::kMobilityTicket));
}

TEST_CASE("a Refresh with the ticket from a new 5-tuple moves the allocation with its permissions and channels (RFC 8016 §3.2)") {
  TurnHarness h;
  TestClient c(h, kOld);
  setUp(c);
  const auto relayed = *c.session.relayed();
  const auto old_ticket = c.session.mobilityTicket();
  TestClient moved = movedClient(h, c, kNew);
  const Reply r = moved.refresh();
  REQUIRE(r.success());
  // A new ticket each time, so the one just used cannot move the allocation again.
  CHECK(ticketOf(r) != old_ticket);
  CHECK(*moved.session.relayed() == relayed);
  REQUIRE(h.output.moves.size() == 1);
  CHECK(h.output.moves[0].from == kOld.client);
  CHECK(h.output.moves[0].to == kNew.client);
  CHECK_FALSE(h.output.moves[0].cross_worker);
  CHECK(h.counters.allocations_moved[0].get() == 1);

  // Both ways over the channel bound before the move.
  const std::size_t to_peers = h.output.to_peers.size();
  moved.channelData(kChannel, test::payloadOf(8));
  CHECK(h.output.to_peers.size() == to_peers + 1);
  const std::size_t sent = h.output.sent.size();
  h.fromPeer(moved.relay(), kPeer, test::bytesOf(test::payloadOf(8)));
  REQUIRE(h.output.sent.size() == sent + 1);
  CHECK(h.output.sent.back().tuple == kNew);
  CHECK(wire::classify(h.output.sent.back().bytes) == wire::PacketKind::kChannelData);

  // The old 5-tuple has no allocation any more; the spent ticket moves nothing.
  CHECK(c.refresh().code() == 400);
  c.session.setMobilityTicket({});
  CHECK(c.refresh().code() == 437);
  TestClient replay(h, test::udpTuple("203.0.113.10:42000"));
  replay.session = c.session;
  replay.session.addressChanged();
  replay.session.setMobilityTicket(old_ticket);
  CHECK(replay.refresh().code() == 400);
}

TEST_CASE("an altered or forged MOBILITY-TICKET is 400 (RFC 8016 §3.2)") {
  TurnHarness h;
  TestClient c(h, kOld);
  setUp(c);
  auto altered = c.session.mobilityTicket();
  altered[20] = altered[20] == 'A' ? 'B' : 'A';  // still base64, no longer MACed
  TestClient moved = movedClient(h, c, kNew);
  moved.session.setMobilityTicket(altered);
  const Reply r = moved.refresh();
  CHECK(r.code() == 400);
  CHECK(h.output.moves.empty());
  moved.session.setMobilityTicket(std::vector<std::uint8_t>(32, 'A'));
  CHECK(moved.refresh().code() == 400);
  CHECK(c.refresh().success());  // still on its old 5-tuple
}

TEST_CASE("a MOBILITY-TICKET presented by another user is 441 (RFC 8016 §3.2)") {
  TurnHarness h;
  TestClient c(h, kOld);
  setUp(c);
  const auto bob = auth::mintRestCredential(test::kTestSecret, "bob", h.unix_now, 3600);
  TestClient other(h, kNew, bob.username, bob.password);
  other.challenge();
  other.session.setMobilityTicket(c.session.mobilityTicket());
  CHECK(other.refresh().code() == 441);
  CHECK(h.output.moves.empty());
}

TEST_CASE("mobility switched off answers 405 Mobility Forbidden (RFC 8016 §3.4)") {
  core::ServerOptions options;
  options.mobility = false;
  TurnHarness h(options);
  TestClient c(h, kOld);
  CHECK(c.allocate(mobile()).code() == 405);
  CHECK(c.allocate().success());
}

TEST_CASE("a TCP client asking for mobility gets 405: its allocation ends with its connection") {
  TurnHarness h;
  TestClient c(h, test::tcpTuple("192.0.2.7:40000"));
  const Reply r = c.allocate(mobile());
  CHECK(r.code() == 405);
}

TEST_CASE("a ticket of another worker is passed to that worker, which hands the allocation over (RFC 8016, SO_REUSEPORT)") {
  TurnHarness a;  // worker 0 owns the allocation
  core::ServerOptions options_b;
  options_b.worker_index = 1;
  TurnHarness b(options_b);  // worker 1 receives the new 5-tuple
  TestClient c(a, kOld);
  setUp(c);
  const auto relayed = *c.session.relayed();

  // Worker 1 cannot answer: it passes the request on and stays silent.
  const auto refresh = c.session.refresh(std::nullopt);
  b.fromClient(kNewPort, test::bytesOf(refresh));
  CHECK(b.output.sent.empty());
  REQUIRE(b.output.transfers.size() == 1);
  CHECK(b.output.transfers[0].owner == 0);

  // Worker 0 authenticates it and lets the allocation go, relay socket and all.
  a.server.onForwardedRefresh(1, kNewPort, test::bytesOf(b.output.transfers[0].request), a.now);
  CHECK(a.output.sent.size() == 4);  // Allocate (401 + success), CreatePermission, ChannelBind: nothing new
  REQUIRE(a.output.handed_over.size() == 1);
  CHECK(a.server.allocationCount() == 0);
  CHECK(a.output.closed_relays.empty());  // the socket moves, it is not closed
  auto [to, moved] = std::move(a.output.handed_over[0]);
  CHECK(to == 1);
  CHECK(moved.previous_client == kOld.client);

  // Worker 1 takes the socket over under its own relay id and answers with a new ticket.
  moved.allocation->setRelayId(0, 77);
  b.output.open_relays[77] = relayed;
  b.server.adoptAllocation(std::move(moved), b.now);
  REQUIRE(b.output.sent.size() == 1);
  CHECK(b.output.sent[0].tuple == kNewPort);
  const Reply r(b.output.sent[0].bytes);
  REQUIRE(r.success());
  CHECK(ticketOf(r) != c.session.mobilityTicket());
  CHECK(b.output.moves.size() == 1);
  CHECK(b.output.moves[0].cross_worker);
  CHECK(b.counters.allocations_moved[1].get() == 1);
  CHECK(a.counters.activeAllocations() + b.counters.activeAllocations() == 1);

  // The channel still works both ways on worker 1.
  TestClient on_b = movedClient(b, c, kNewPort);
  on_b.session.onResponse(r.view());
  on_b.channelData(kChannel, test::payloadOf(8));
  REQUIRE(b.output.to_peers.size() == 1);
  CHECK(b.output.to_peers[0].relay == 77);
  b.fromPeer(77, kPeer, test::bytesOf(test::payloadOf(8)));
  CHECK(b.output.sent.back().tuple == kNewPort);

  // The next move is within worker 1: the new ticket names it.
  const core::FiveTuple third = test::udpTuple("203.0.113.11:43000");
  TestClient again = movedClient(b, on_b, third);
  CHECK(again.refresh().success());
  CHECK(b.output.moves.size() == 2);
}

TEST_CASE("a forwarded Refresh with bad credentials is refused by the owner and nothing moves") {
  TurnHarness a;
  TestClient c(a, kOld);
  setUp(c);
  const auto bob = auth::mintRestCredential(test::kTestSecret, "bob", a.unix_now, 3600);
  TestClient other(a, kNewPort, bob.username, bob.password);
  other.session.setMobilityTicket(c.session.mobilityTicket());
  (void)other.allocate();  // learns a nonce (and allocates on kNewPort: pick another tuple below)
  const auto refresh = other.session.refresh(std::nullopt);
  const core::FiveTuple fresh = test::udpTuple("192.0.2.7:44000");
  a.server.onForwardedRefresh(1, fresh, test::bytesOf(refresh), a.now);
  CHECK(a.output.handed_over.empty());
  REQUIRE(a.output.sent.back().tuple == fresh);
  const Reply r(a.output.sent.back().bytes);
  CHECK(r.code() == 441);
}

TEST_CASE("a retransmitted Refresh gets the same ticket, and only a move renews it (RFC 8016 §3.2)") {
  TurnHarness h;
  TestClient c(h, kOld);
  setUp(c);
  const auto first = c.session.mobilityTicket();
  REQUIRE(c.refresh().success());
  CHECK(c.session.mobilityTicket() == first);
  TestClient moved = movedClient(h, c, kNewPort);
  const auto request = moved.session.refresh(std::nullopt);
  const Reply answer = moved.send(request);
  REQUIRE(answer.success());
  const Reply again = moved.send(request);  // the retransmission finds the moved allocation
  REQUIRE(again.success());
  CHECK(ticketOf(again) == ticketOf(answer));
  CHECK(ticketOf(answer) != first);
}

TEST_CASE("a retransmission forwarded after the hand-over is dropped by the old owner, not refused") {
  TurnHarness a;
  core::ServerOptions options_b;
  options_b.worker_index = 1;
  TurnHarness b(options_b);
  TestClient c(a, kOld);
  setUp(c);
  const auto refresh = c.session.refresh(std::nullopt);
  a.server.onForwardedRefresh(1, kNewPort, test::bytesOf(refresh), a.now);
  REQUIRE(a.output.handed_over.size() == 1);
  const std::size_t sent = a.output.sent.size();
  // The same request again, forwarded before worker 1 adopted the allocation.
  a.server.onForwardedRefresh(1, kNewPort, test::bytesOf(refresh), a.now);
  CHECK(a.output.sent.size() == sent);
  CHECK(a.output.handed_over.size() == 1);
  // Worker 1 answers once it has the allocation, the retransmission too.
  auto moved = std::move(a.output.handed_over[0].second);
  moved.allocation->setRelayId(0, 5);
  b.server.adoptAllocation(std::move(moved), b.now);
  b.fromClient(kNewPort, test::bytesOf(refresh));
  REQUIRE(b.output.sent.size() == 2);
  CHECK(Reply(b.output.sent[0].bytes).success());
  CHECK(Reply(b.output.sent[1].bytes).success());
  CHECK(Reply(b.output.sent[1].bytes).get<wire::attr::MobilityTicket>()->value.size() == 32);
}

TEST_CASE("a DTLS allocation moves within its worker, and across workers is 405 (RFC 8016 §3.4)") {
  const core::FiveTuple dtls_old{core::Transport::kDtls, kOld.client, kOld.server};
  const core::FiveTuple dtls_new{core::Transport::kDtls, kNewPort.client, kNewPort.server};
  SUBCASE("same worker") {
    TurnHarness h;
    TestClient c(h, dtls_old);
    setUp(c);
    TestClient moved = movedClient(h, c, dtls_new);
    CHECK(moved.refresh().success());
    CHECK(h.output.moves.size() == 1);
  }
  SUBCASE("another worker") {
    TurnHarness a;
    core::ServerOptions options_b;
    options_b.worker_index = 1;
    TurnHarness b(options_b);
    TestClient c(a, dtls_old);
    setUp(c);
    TestClient moved = movedClient(b, c, dtls_new);
    const Reply r = moved.refresh();
    CHECK(r.code() == 405);
    CHECK(b.output.transfers.empty());
  }
}
