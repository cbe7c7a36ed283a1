// TurnServer's answers to requests that prove nothing (DESIGN.md §4): limited per source
// address, counted when dropped, reported once per episode, and as small as the protocol
// allows over UDP, where the source may be a spoofed victim. Authenticated requests are never
// limited.
#include <doctest/doctest.h>

#include "support/turn_harness.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::Reply;
using test::TestClient;
using test::TurnHarness;
using wire::AttributeType;
using wire::Method;

namespace {

core::ServerOptions limited(std::uint32_t per_second, std::uint32_t burst) {
  core::ServerOptions options;
  options.unauthenticated = {per_second, burst};
  return options;
}

// A request of `method` without credentials, with REQUESTED-TRANSPORT for an Allocate.
std::vector<std::uint8_t> bare(Method method, bool fingerprint = false) {
  static std::uint8_t counter = 0;
  wire::TransactionId tid{};
  tid.fill(0x5A);
  tid[0] = ++counter;
  std::vector<std::uint8_t> buf(128);
  wire::MessageBuilder b(buf, method, wire::MessageClass::kRequest, tid);
  if (method == Method::kAllocate) b.add(wire::attr::RequestedTransport{});
  if (fingerprint) b.addFingerprint();
  buf.resize(b.finish()->size());
  return buf;
}

// How many of `count` requests from `address` (each from its own port) were answered.
std::size_t answeredOf(TurnHarness& h, const std::string& address, std::size_t count,
                       const std::vector<std::uint8_t>& request, bool tcp = false) {
  const std::size_t before = h.output.sent.size();
  for (std::size_t i = 0; i < count; ++i) {
    const std::string client = address + ":" + std::to_string(20000 + i);
    h.fromClient(tcp ? test::tcpTuple(client) : test::udpTuple(client), test::bytesOf(request));
  }
  return h.output.sent.size() - before;
}

Reply lastReply(const TurnHarness& h) { return Reply(h.output.sent.back().bytes); }

}  // namespace

TEST_CASE(
    "401s to one address share one bucket whatever the ports, and the rest are dropped, counted, "
    "reported once") {
  TurnHarness h(limited(10, 20));
  // A reflection attack aims at an IP and varies the ports: the bucket is the IP's.
  CHECK(answeredOf(h, "203.0.113.5", 50, bare(Method::kAllocate)) == 20);
  CHECK(lastReply(h).code() == 401);
  CHECK(h.dropped(metrics::DropReason::kRateLimited) == 30);
  REQUIRE(h.output.rate_limited.size() == 1);
  CHECK(h.output.rate_limited[0].client.ip == test::ipAddress("203.0.113.5"));
  // Another address is not disturbed.
  CHECK(answeredOf(h, "203.0.113.6", 1, bare(Method::kAllocate)) == 1);
  // 10 a second come back; the episode goes on (no second report) until the bucket is full.
  h.advance(1s);
  CHECK(answeredOf(h, "203.0.113.5", 15, bare(Method::kAllocate)) == 10);
  CHECK(h.output.rate_limited.size() == 1);
  h.advance(10s);
  CHECK(answeredOf(h, "203.0.113.5", 25, bare(Method::kAllocate)) == 20);
  CHECK(h.output.rate_limited.size() == 2);
}

TEST_CASE(
    "Binding responses, 420s, 400s to malformed requests and forged nonces all take a token") {
  TurnHarness h(limited(1, 5));
  auto unknown = bare(Method::kBinding);
  {
    std::vector<std::uint8_t> buf(64);
    wire::MessageBuilder b(buf, Method::kBinding, wire::MessageClass::kRequest,
                           wire::TransactionId{});
    b.addRaw(0x0077, std::vector<std::uint8_t>{1, 2, 3, 4});
    buf.resize(b.finish()->size());
    unknown = buf;
  }
  auto malformed = bare(Method::kBinding);
  malformed.insert(malformed.end(), {0x80, 0x22, 0x00, 0x40});  // SOFTWARE runs past the end
  malformed[3] = 4;
  TestClient forger(h, test::udpTuple("203.0.113.5:7000"));
  forger.session.setNonce("obMatJos2AAABforged-nonce-of-no-use");
  const auto forged = forger.build(
      Method::kAllocate, [](wire::MessageBuilder& b) { b.add(wire::attr::RequestedTransport{}); });

  CHECK(answeredOf(h, "203.0.113.5", 1, bare(Method::kBinding)) == 1);
  CHECK(lastReply(h).success());
  CHECK(answeredOf(h, "203.0.113.5", 1, unknown) == 1);
  CHECK(lastReply(h).code() == 420);
  CHECK(answeredOf(h, "203.0.113.5", 1, malformed) == 1);
  CHECK(lastReply(h).code() == 400);
  CHECK(answeredOf(h, "203.0.113.5", 1, forged) == 1);
  CHECK(lastReply(h).code() == 438);  // a nonce not ours (issue 18)
  CHECK(answeredOf(h, "203.0.113.5", 1, bare(Method::kRefresh)) == 1);
  CHECK(lastReply(h).code() == 401);
  // The bucket is empty: every class is now dropped alike.
  for (const auto& request :
       {bare(Method::kBinding), unknown, malformed, forged, bare(Method::kAllocate)}) {
    CHECK(answeredOf(h, "203.0.113.5", 1, request) == 0);
  }
  CHECK(h.dropped(metrics::DropReason::kRateLimited) == 5);
}

TEST_CASE("requests with valid credentials never count and are never dropped") {
  TurnHarness h(limited(1, 2));
  TestClient c(h, test::udpTuple("203.0.113.5:7000"));
  c.mustAllocate();  // its first Allocate's 401 took one token
  CHECK(answeredOf(h, "203.0.113.5", 10, bare(Method::kAllocate)) == 1);
  // The address's bucket is empty, but everything signed goes through.
  CHECK(c.createPermission({test::socketAddress("8.8.8.8:53")}).success());
  CHECK(c.channelBind(0x4000, test::socketAddress("8.8.8.8:53")).success());
  CHECK(c.refresh().success());
  // A second allocation from the same host, signed with the nonce the first one learnt.
  TestClient second(h, test::udpTuple("203.0.113.5:7001"));
  second.session.setNonce(c.session.nonce());
  CHECK(second
            .request(Method::kAllocate,
                     [](wire::MessageBuilder& b) { b.add(wire::attr::RequestedTransport{}); })
            .success());
  // A 438 is answered before the integrity is checked, so anyone can earn one: it is limited
  // like a 401 (issue 18). With the source's bucket empty, the stale Refresh goes unanswered.
  h.advance(601s);
  CHECK(answeredOf(h, "203.0.113.5", 10, bare(Method::kAllocate)) == 2);
  const std::size_t drops = h.dropped(metrics::DropReason::kRateLimited);
  h.fromClient(c.tuple, test::bytesOf(c.session.refresh(std::nullopt)));
  CHECK(h.dropped(metrics::DropReason::kRateLimited) == drops + 1);
  // Once the bucket holds a token again, the 438 comes, small and unsigned.
  h.advance(1s);
  const Reply stale = c.send(c.session.refresh(std::nullopt));
  CHECK(stale.code() == 438);
  CHECK_FALSE(stale.view().has(AttributeType::kMessageIntegrity));
}

TEST_CASE(
    "a source's UDP bucket and its TCP bucket are apart: a spoofer cannot starve the victim's TCP "
    "clients") {
  TurnHarness h(limited(1, 3));
  CHECK(answeredOf(h, "203.0.113.5", 10, bare(Method::kAllocate)) == 3);
  CHECK(answeredOf(h, "203.0.113.5", 10, bare(Method::kAllocate), true) == 3);
  REQUIRE(h.output.rate_limited.size() == 2);
  CHECK(h.output.rate_limited[1].transport == core::Transport::kTcp);
}

TEST_CASE("rate 0 turns the limit off") {
  TurnHarness h(limited(0, 1));
  CHECK(answeredOf(h, "203.0.113.5", 3000, bare(Method::kAllocate)) == 3000);
  CHECK(h.dropped(metrics::DropReason::kRateLimited) == 0);
}

TEST_CASE("a reload's limits apply from the next request") {
  TurnHarness h(limited(1, 2));
  CHECK(answeredOf(h, "203.0.113.5", 5, bare(Method::kBinding)) == 2);
  h.server.reconfigure(limited(0, 1), h.services, h.now);
  CHECK(answeredOf(h, "203.0.113.5", 5, bare(Method::kBinding)) == 5);
}

TEST_CASE(
    "over UDP a 401 carries what RFC 8489 §9.2.4 requires and nothing optional, over TCP it keeps "
    "SOFTWARE and its reason") {
  TurnHarness h;
  REQUIRE(answeredOf(h, "203.0.113.5", 1, bare(Method::kAllocate, true)) == 1);
  const Reply udp = lastReply(h);
  CHECK(udp.code() == 401);
  CHECK(udp.reason().empty());
  CHECK_FALSE(udp.has(AttributeType::kSoftware));
  CHECK(udp.has(AttributeType::kRealm));
  CHECK(udp.has(AttributeType::kNonce));
  CHECK(udp.has(AttributeType::kPasswordAlgorithms));
  CHECK(udp.view().fingerprintMatches());
  REQUIRE(answeredOf(h, "203.0.113.5", 1, bare(Method::kAllocate), true) == 1);
  const Reply tcp = lastReply(h);
  CHECK(tcp.code() == 401);
  CHECK(tcp.reason() == "Unauthenticated");
  CHECK(tcp.has(AttributeType::kSoftware));
}

TEST_CASE(
    "every request without credentials earns the 401 challenge, over UDP as over TCP (RFC 8489 "
    "§9.2.4)") {
  // Even a bare 20-byte Refresh: the RFC leaves no other answer, so the per-source limit is
  // what bounds the gain of aiming such requests at a spoofed victim.
  TurnHarness h;
  for (const bool tcp : {false, true}) {
    for (Method method :
         {Method::kAllocate, Method::kRefresh, Method::kCreatePermission, Method::kChannelBind}) {
      CAPTURE(tcp);
      CAPTURE(static_cast<int>(method));
      REQUIRE(answeredOf(h, "203.0.113.5", 1, bare(method), tcp) == 1);
      const Reply r = lastReply(h);
      CHECK(r.code() == 401);
      CHECK(r.has(AttributeType::kRealm));
      CHECK(r.has(AttributeType::kNonce));
    }
  }
}
