// TurnServer's bandwidth limits (--max-bps per allocation, --max-bps-per-user shared by a
// user's allocations across workers) on ChannelData, Send and Data indications and RFC 6062
// TCP pipes, driven with a fake clock: drops are exact, so the bounds below only allow for
// the burst and for the one packet a bucket may run into debt.
#include <doctest/doctest.h>

#include "auth/rest_credentials.hpp"
#include "support/turn_harness.hpp"

using namespace tern;
using namespace std::chrono_literals;
using metrics::Direction;
using metrics::DropReason;
using test::TestClient;
using test::TurnHarness;

namespace {

const wire::SocketAddress kPeer = test::socketAddress("8.8.8.8:5000");
constexpr std::uint16_t kChannel = 0x4000;
// 400 kbit/s = 50,000 bytes a second: fifty 1000-byte packets, and a burst of as many.
constexpr std::uint64_t kLimitBps = 400'000;
constexpr std::size_t kPacket = 1000;
constexpr std::size_t kPacketsPerSecondAtLimit = kLimitBps / 8 / kPacket;

core::ServerOptions limited(std::uint64_t per_allocation, std::uint64_t per_user = 0) {
  core::ServerOptions o;
  o.allocation_bandwidth = core::BandwidthLimit(per_allocation);
  o.user_bandwidth = core::BandwidthLimit(per_user);
  return o;
}

// A UDP allocation with a channel to kPeer, ready to relay both ways.
void bindChannel(TestClient& c) {
  c.mustAllocate();
  REQUIRE(c.channelBind(kChannel, kPeer).success());
}

// A client of a TURN REST username "<expiry>:<user>", as a web service mints them.
TestClient restClient(TurnHarness& h, std::string_view client, std::string_view user, std::int64_t ttl) {
  const auto rest = auth::mintRestCredential(test::kTestSecret, user, h.unix_now, ttl);
  return TestClient(h, test::udpTuple(client), rest.username, rest.password);
}

// Moves the fake clock without a tick (ticks are for expiry; the buckets need none).
void wait(TurnHarness& h, std::chrono::milliseconds by) { h.now += by; }

// How many of `packets` datagrams a sender spreading them evenly over `span` got through,
// client -> peer on a channel.
std::size_t channelStream(TurnHarness& h, TestClient& c, std::size_t packets, std::chrono::milliseconds span) {
  const std::size_t before = h.output.to_peers.size();
  const auto payload = test::payloadOf(kPacket);
  for (std::size_t i = 0; i < packets; ++i) {
    c.channelData(kChannel, payload);
    wait(h, span / static_cast<std::int64_t>(packets));
  }
  return h.output.to_peers.size() - before;
}

// A count expected from the burst and the limit over the whole span, within what the span's
// last gap between packets leaves unused (the refill after the last packet sent) and the one
// packet of debt: 2 %.
bool near(std::size_t actual, std::size_t expected) {
  const std::size_t slack = expected / 50 + 1;
  return actual + slack >= expected && actual <= expected + slack;
}

std::size_t sentTo(const TurnHarness& h, const core::FiveTuple& tuple) {
  std::size_t n = 0;
  for (const auto& s : h.output.sent) n += s.tuple == tuple ? 1u : 0u;
  return n;
}

}  // namespace

TEST_CASE("--max-bps: a stream at twice the limit loses about half, counted as bandwidth_limit") {
  TurnHarness h(limited(kLimitBps));
  TestClient c(h, test::udpTuple("192.0.2.7:40000"));
  bindChannel(c);
  // Ten seconds at twice the limit: the first second's burst plus ten seconds at the limit.
  const std::size_t sent = 20 * kPacketsPerSecondAtLimit;
  const std::size_t passed = channelStream(h, c, sent, 10s);
  CHECK(near(passed, 11 * kPacketsPerSecondAtLimit));
  CHECK(h.dropped(DropReason::kBandwidthLimit) == sent - passed);
  CHECK(h.relayedBytes(Direction::kClientToPeer) == passed * kPacket);
}

TEST_CASE("--max-bps: a stream under the limit loses nothing") {
  TurnHarness h(limited(kLimitBps));
  TestClient c(h, test::udpTuple("192.0.2.7:40000"));
  bindChannel(c);
  // 90 % of the limit for ten seconds, from a standing start and after a quiet spell.
  const std::size_t sent = 9 * kPacketsPerSecondAtLimit;
  CHECK(channelStream(h, c, sent, 10s) == sent);
  wait(h, 5s);
  CHECK(channelStream(h, c, sent, 10s) == sent);
  CHECK(h.dropped(DropReason::kBandwidthLimit) == 0);
}

TEST_CASE("--max-bps: one second's worth passes at once, then the bucket refills at the limit") {
  TurnHarness h(limited(kLimitBps));
  TestClient c(h, test::udpTuple("192.0.2.7:40000"));
  bindChannel(c);
  // A full bucket holds 50,000 bytes: fifty packets at one instant, not one more.
  CHECK(channelStream(h, c, kPacketsPerSecondAtLimit + 10, 0ms) == kPacketsPerSecondAtLimit);
  CHECK(h.dropped(DropReason::kBandwidthLimit) == 10);
  // Half a second refills half the bucket.
  wait(h, 500ms);
  CHECK(channelStream(h, c, kPacketsPerSecondAtLimit, 0ms) == kPacketsPerSecondAtLimit / 2);
  // A long quiet spell refills it to the full burst, never more.
  wait(h, 60s);
  CHECK(channelStream(h, c, 2 * kPacketsPerSecondAtLimit, 0ms) == kPacketsPerSecondAtLimit);
}

TEST_CASE("--max-bps: a packet larger than the whole bucket passes when it is full, and repays it") {
  // 8 kbit/s: a bucket of 1000 bytes, and a 1400-byte packet.
  TurnHarness h(limited(8'000));
  TestClient c(h, test::udpTuple("192.0.2.7:40000"));
  bindChannel(c);
  const auto big = test::payloadOf(1400);
  c.channelData(kChannel, big);
  c.channelData(kChannel, big);
  CHECK(h.output.to_peers.size() == 1);
  // 400 bytes of debt: 0.4 s at 1000 bytes a second until the bucket holds anything again.
  wait(h, 390ms);
  c.channelData(kChannel, big);
  CHECK(h.output.to_peers.size() == 1);
  wait(h, 20ms);
  c.channelData(kChannel, big);
  CHECK(h.output.to_peers.size() == 2);
}

TEST_CASE("--max-bps: each direction has its own bucket, so a flood one way leaves the other whole") {
  TurnHarness h(limited(kLimitBps));
  TestClient c(h, test::udpTuple("192.0.2.7:40000"));
  bindChannel(c);
  const std::size_t from_client_before = h.output.to_peers.size();
  const std::size_t to_client_before = sentTo(h, c.tuple);
  const auto payload = test::payloadOf(kPacket);
  // Ten seconds: the peer floods at four times the limit while the client sends at 90 % of it.
  for (int tick = 0; tick < 1000; ++tick) {
    for (int i = 0; i < 2; ++i) h.fromPeer(c.relay(), kPeer, test::bytesOf(payload));
    if (tick % 20 < 9) c.channelData(kChannel, payload);
    wait(h, 10ms);
  }
  const std::size_t from_client = h.output.to_peers.size() - from_client_before;
  const std::size_t to_client = sentTo(h, c.tuple) - to_client_before;
  CHECK(from_client == 450);  // every packet the client sent
  CHECK(near(to_client, 11 * kPacketsPerSecondAtLimit));
  CHECK(h.dropped(DropReason::kBandwidthLimit) == 2000 - to_client);
}

TEST_CASE("--max-bps applies to clients over UDP, TCP, TLS and DTLS alike, both ways") {
  for (const core::Transport transport :
       {core::Transport::kUdp, core::Transport::kTcp, core::Transport::kTls, core::Transport::kDtls}) {
    CAPTURE(static_cast<int>(transport));
    TurnHarness h(limited(kLimitBps));
    TestClient c(h, {transport, test::socketAddress("192.0.2.7:40000"), test::socketAddress("198.51.100.1:3478")});
    bindChannel(c);
    CHECK(channelStream(h, c, 2 * kPacketsPerSecondAtLimit, 0ms) == kPacketsPerSecondAtLimit);
    const std::size_t before = sentTo(h, c.tuple);
    const auto payload = test::payloadOf(kPacket);
    for (std::size_t i = 0; i < 2 * kPacketsPerSecondAtLimit; ++i) h.fromPeer(c.relay(), kPeer, test::bytesOf(payload));
    CHECK(sentTo(h, c.tuple) - before == kPacketsPerSecondAtLimit);
    CHECK(h.dropped(DropReason::kBandwidthLimit) == 2 * kPacketsPerSecondAtLimit);
  }
}

TEST_CASE("--max-bps: Send and Data indications are charged like ChannelData") {
  TurnHarness h(limited(kLimitBps));
  TestClient c(h, test::udpTuple("192.0.2.7:40000"));
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeer}).success());
  const auto payload = test::payloadOf(kPacket);
  for (std::size_t i = 0; i < 2 * kPacketsPerSecondAtLimit; ++i) c.sendIndication(kPeer, payload);
  CHECK(h.output.to_peers.size() == kPacketsPerSecondAtLimit);
  const std::size_t before = sentTo(h, c.tuple);
  for (std::size_t i = 0; i < 2 * kPacketsPerSecondAtLimit; ++i) h.fromPeer(c.relay(), kPeer, test::bytesOf(payload));
  CHECK(sentTo(h, c.tuple) - before == kPacketsPerSecondAtLimit);
  CHECK(h.dropped(DropReason::kBandwidthLimit) == 2 * kPacketsPerSecondAtLimit);
}

TEST_CASE("--max-bps-per-user: two allocations of one user share the budget, another user keeps all of it") {
  TurnHarness h(limited(0, kLimitBps));
  // Two credentials of one REST user (different expiries) count as one user; carol is another.
  TestClient first = restClient(h, "192.0.2.7:40000", "bob", 3600);
  TestClient second = restClient(h, "192.0.2.8:40000", "bob", 7200);
  TestClient carol = restClient(h, "192.0.2.9:40000", "carol", 3600);
  for (TestClient* c : {&first, &second, &carol}) bindChannel(*c);
  const auto payload = test::payloadOf(kPacket);
  std::size_t bob_passed = 0;
  std::size_t carol_passed = 0;
  // Ten seconds: each of bob's allocations at the limit, carol at 90 % of it.
  for (int tick = 0; tick < 1000; ++tick) {
    for (TestClient* c : {&first, &second}) {
      if (tick % 2 == 0) {
        const std::size_t before = h.output.to_peers.size();
        c->channelData(kChannel, payload);
        bob_passed += h.output.to_peers.size() - before;
      }
    }
    if (tick % 20 < 9) {
      const std::size_t before = h.output.to_peers.size();
      carol.channelData(kChannel, payload);
      carol_passed += h.output.to_peers.size() - before;
    }
    wait(h, 10ms);
  }
  // Bob sent 1000 packets, twice his budget: the burst and ten seconds at the limit pass.
  CHECK(near(bob_passed, 11 * kPacketsPerSecondAtLimit));
  CHECK(h.dropped(DropReason::kUserBandwidthLimit) == 1000 - bob_passed);
  CHECK(carol_passed == 450);
  CHECK(h.dropped(DropReason::kBandwidthLimit) == 0);
}

TEST_CASE("--max-bps-per-user: the budget is shared by allocations on different workers") {
  TurnHarness worker0(limited(0, kLimitBps));
  core::ServerOptions options1 = limited(0, kLimitBps);
  options1.worker_index = 1;
  TurnHarness worker1(options1, worker0);
  TestClient on0 = restClient(worker0, "192.0.2.7:40000", "bob", 3600);
  TestClient on1 = restClient(worker1, "192.0.2.8:40000", "bob", 3600);
  bindChannel(on0);
  bindChannel(on1);
  // Half the burst from each worker empties the shared bucket; the next packet anywhere waits.
  const std::size_t half = kPacketsPerSecondAtLimit / 2;
  CHECK(channelStream(worker0, on0, half, 0ms) == half);
  CHECK(channelStream(worker1, on1, half, 0ms) == half);
  CHECK(channelStream(worker0, on0, 1, 0ms) == 0);
  CHECK(channelStream(worker1, on1, 1, 0ms) == 0);
  CHECK(worker0.dropped(DropReason::kUserBandwidthLimit) == 1);
  CHECK(worker1.dropped(DropReason::kUserBandwidthLimit) == 1);
  // A tenth of a second later, five packets' worth is back, for whichever worker comes first.
  wait(worker0, 100ms);
  wait(worker1, 100ms);
  CHECK(channelStream(worker1, on1, 10, 0ms) == 5);
  CHECK(channelStream(worker0, on0, 1, 0ms) == 0);
}

TEST_CASE("--max-bps and --max-bps-per-user together: the tighter one drops, under its own reason") {
  const auto payload = test::payloadOf(kPacket);
  SUBCASE("two allocations each within --max-bps, together twice --max-bps-per-user") {
    TurnHarness h(limited(kLimitBps, kLimitBps));
    TestClient first(h, test::udpTuple("192.0.2.7:40000"));
    TestClient second(h, test::udpTuple("192.0.2.8:40000"));
    bindChannel(first);
    bindChannel(second);
    for (int tick = 0; tick < 1000; ++tick) {  // ten seconds, each at 90 % of the limit
      if (tick % 20 < 9) {
        first.channelData(kChannel, payload);
        second.channelData(kChannel, payload);
      }
      wait(h, 10ms);
    }
    CHECK(h.dropped(DropReason::kBandwidthLimit) == 0);
    CHECK(near(h.output.to_peers.size(), 11 * kPacketsPerSecondAtLimit));
    CHECK(h.dropped(DropReason::kUserBandwidthLimit) == 900 - h.output.to_peers.size());
  }
  SUBCASE("one allocation at twice --max-bps, far under --max-bps-per-user") {
    TurnHarness h(limited(kLimitBps, 10 * kLimitBps));
    TestClient c(h, test::udpTuple("192.0.2.7:40000"));
    bindChannel(c);
    const std::size_t passed = channelStream(h, c, 20 * kPacketsPerSecondAtLimit, 10s);
    CHECK(near(passed, 11 * kPacketsPerSecondAtLimit));
    CHECK(h.dropped(DropReason::kBandwidthLimit) == 20 * kPacketsPerSecondAtLimit - passed);
    CHECK(h.dropped(DropReason::kUserBandwidthLimit) == 0);
  }
}

TEST_CASE("A reload applies a new --max-bps to existing allocations from their next packet") {
  TurnHarness h;  // no limit
  TestClient c(h, test::udpTuple("192.0.2.7:40000"));
  bindChannel(c);
  CHECK(channelStream(h, c, 4 * kPacketsPerSecondAtLimit, 1s) == 4 * kPacketsPerSecondAtLimit);
  h.server.reconfigure(limited(kLimitBps), h.services, h.now);
  // The bucket starts full: the burst, then the limit.
  CHECK(near(channelStream(h, c, 4 * kPacketsPerSecondAtLimit, 1s), 2 * kPacketsPerSecondAtLimit));
  h.server.reconfigure(limited(0), h.services, h.now);
  CHECK(channelStream(h, c, 4 * kPacketsPerSecondAtLimit, 1s) == 4 * kPacketsPerSecondAtLimit);
}

TEST_CASE("--max-bps on an RFC 6062 TCP pipe pauses the reading side instead of dropping") {
  TurnHarness h(limited(kLimitBps));
  TestClient control(h, test::tcpTuple("192.0.2.7:40000"));
  client::TurnSession::AllocateOptions tcp;
  tcp.transport = wire::attr::RequestedTransport::kTcp;
  control.mustAllocate(tcp);
  // Connect (signed with the nonce the Allocate taught), completed by the fake network, then
  // a data connection bound to it.
  h.fromClient(control.tuple, test::bytesOf(control.build(wire::Method::kConnect, [](wire::MessageBuilder& b) {
                 b.add(wire::attr::XorPeerAddress{kPeer});
               })));
  REQUIRE(!h.output.connects.empty());
  const core::ConnectionId id = h.output.connects.back().id;
  h.server.onPeerConnected(id, true, h.now);
  TestClient data(h, test::tcpTuple("192.0.2.7:40001"));
  REQUIRE(data.request(wire::Method::kConnectionBind, [&](wire::MessageBuilder& b) {
                b.add(wire::attr::ConnectionId{id});
              }).success());

  // Reads under the burst go on; every byte counts as relayed, none is dropped.
  CHECK(h.server.onConnectionRelayed(id, Direction::kClientToPeer, 30'000, h.now) == 0ns);
  // The read that empties the bucket (and 10,000 bytes beyond) stops that side for the 0.2 s
  // the debt takes to repay; the other direction reads on.
  const auto pause = h.server.onConnectionRelayed(id, Direction::kClientToPeer, 30'000, h.now);
  CHECK(pause > 199ms);
  CHECK(pause <= 200ms + 1ns);
  CHECK(h.server.onConnectionRelayed(id, Direction::kPeerToClient, 30'000, h.now) == 0ns);
  CHECK(h.counters.bandwidth_pauses[metrics::idx(metrics::BandwidthLimitKind::kAllocation)].get() == 1);
  CHECK(h.relayedBytes(Direction::kClientToPeer, core::Transport::kTcp) == 60'000);
  CHECK(h.dropped(DropReason::kBandwidthLimit) == 0);
  // The I/O layer asks again when its timer fires.
  wait(h, 100ms);
  CHECK(h.server.connectionWait(id, Direction::kClientToPeer, h.now) > 99ms);
  wait(h, 101ms);
  CHECK(h.server.connectionWait(id, Direction::kClientToPeer, h.now) == 0ns);
  // Over a long run the pipe moves at the limit: reads of 8 KiB, each made as soon as allowed.
  std::size_t moved = 0;
  const core::TimePoint start = h.now;
  while (h.now - start < 10s) {
    const auto next = h.server.onConnectionRelayed(id, Direction::kClientToPeer, 8192, h.now);
    moved += 8192;
    h.now += std::max<std::chrono::nanoseconds>(next, 1ms);
  }
  // 50,000 bytes a second, give or take the one read of debt and the burst left.
  CHECK(moved >= 500'000 - 8192);
  CHECK(moved <= 500'000 + 50'000 + 8192);
  // A reload that lifts the limit ends every pause at the timer's next look.
  h.server.onConnectionRelayed(id, Direction::kClientToPeer, 200'000, h.now);
  CHECK(h.server.connectionWait(id, Direction::kClientToPeer, h.now) > 0ns);
  h.server.reconfigure(limited(0), h.services, h.now);
  CHECK(h.server.connectionWait(id, Direction::kClientToPeer, h.now) == 0ns);
}
