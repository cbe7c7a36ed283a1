// TurnServer's Refresh (RFC 8656 §8), allocation expiry on the worker's tick (RFC 8656 §7)
// and shutdown, driven with a fake clock.
#include <doctest/doctest.h>

#include <memory>

#include "auth/rest_credentials.hpp"
#include "support/turn_harness.hpp"

using namespace tern;
using test::Reply;
using test::TestClient;
using test::TurnHarness;
using wire::AttributeType;
using wire::Method;

namespace {

const core::FiveTuple kTuple = test::udpTuple("192.0.2.7:40000");
const core::FiveTuple kOtherTuple = test::udpTuple("192.0.2.8:40001");
const core::FiveTuple kThirdTuple = test::udpTuple("192.0.2.9:40002");
const wire::SocketAddress kPeer = test::socketAddress("8.8.8.8:5000");

client::TurnSession::AllocateOptions withLifetime(std::uint32_t seconds) {
  client::TurnSession::AllocateOptions o;
  o.lifetime = seconds;
  return o;
}

// Whether the client's allocation still answers: a CreatePermission succeeds only on a live one.
bool alive(TestClient& c) { return c.createPermission({kPeer}).success(); }

}  // namespace

// --- Refresh ------------------------------------------------------------------------------

TEST_CASE("Refresh extends the allocation to the requested lifetime (RFC 8656 §8.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  h.advance(std::chrono::seconds(500));
  const Reply r = c.refresh(1800);
  REQUIRE(r.success());
  CHECK(r.get<wire::attr::Lifetime>()->seconds == 1800);
  CHECK(c.session.lastResponseSigned());
  // The original 600 s are long over; the refreshed 1800 s are not.
  h.advance(std::chrono::seconds(1799));
  CHECK(h.server.allocationCount() == 1);
  CHECK(alive(c));
  h.advance(std::chrono::seconds(1));
  CHECK(h.server.allocationCount() == 0);
  CHECK(h.output.closed_relays.size() == 1);
}

TEST_CASE(
    "Refresh without LIFETIME resets to the default lifetime, even downwards (RFC 8656 §8.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate(withLifetime(3600));
  const Reply r = c.refresh();
  REQUIRE(r.success());
  CHECK(r.get<wire::attr::Lifetime>()->seconds == 600);
  h.advance(std::chrono::seconds(600));
  CHECK(h.server.allocationCount() == 0);
}

TEST_CASE("Refresh applies the same lifetime rule as Allocate (RFC 8656 §8.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  CHECK(c.refresh(30).get<wire::attr::Lifetime>()->seconds == 600);
  CHECK(c.refresh(99999).get<wire::attr::Lifetime>()->seconds == 3600);
  CHECK(c.refresh(1000).get<wire::attr::Lifetime>()->seconds == 1000);
}

TEST_CASE("Refresh with LIFETIME 0 deletes the allocation at once (RFC 8656 §8.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeer}).success());
  const core::RelayId relay = c.relay();
  const Reply r = c.refresh(0);
  REQUIRE(r.success());
  CHECK(r.get<wire::attr::Lifetime>()->seconds == 0);
  CHECK(c.session.lastResponseSigned());
  CHECK(h.server.allocationCount() == 0);
  REQUIRE(h.output.closed_relays.size() == 1);
  CHECK(h.output.closed_relays[0] == relay);
  CHECK(h.output.open_relays.empty());
  CHECK(h.quota.total() == 0);
  CHECK(h.ended(metrics::AllocationEnd::kDeleted) == 1);

  // Everything on the 5-tuple now meets no allocation.
  CHECK(c.refresh(0).code() == 437);
  CHECK(c.refresh().code() == 437);
  CHECK(c.createPermission({kPeer}).code() == 437);
  CHECK(c.channelBind(0x4000, kPeer).code() == 437);
  const auto payload = test::payloadOf(8);
  h.fromPeer(relay, kPeer, test::bytesOf(payload));
  c.sendIndication(kPeer, payload);
  CHECK(h.dropped(metrics::DropReason::kNoAllocation) == 2);
  CHECK(h.output.to_peers.empty());
  // A later tick has nothing left to expire.
  h.advance(std::chrono::seconds(3600));
  CHECK(h.output.closed_relays.size() == 1);
  CHECK(h.ended(metrics::AllocationEnd::kExpired) == 0);
}

TEST_CASE("after LIFETIME 0 the 5-tuple can allocate again (RFC 8656 §8.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.refresh(0).success());
  c.mustAllocate();
  CHECK(h.server.allocationCount() == 1);
  CHECK(h.quota.total() == 1);
  // The deleted allocation's expiry entry must not end the new one early.
  h.advance(std::chrono::seconds(599));
  CHECK(h.server.allocationCount() == 1);
}

TEST_CASE("Refresh without an allocation gets 437 (RFC 8656 §8.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.challenge();
  const Reply r = c.refresh();
  CHECK(r.code() == 437);
  CHECK(c.session.lastResponseSigned());
  CHECK(h.quota.total() == 0);
}

TEST_CASE(
    "Refresh with another user's credentials on the 5-tuple gets 441 and changes nothing (RFC 8656 "
    "§5)") {
  TurnHarness h;
  TestClient alice(h, kTuple);
  alice.mustAllocate();
  const auto bob_credential = auth::mintRestCredential(test::kTestSecret, "bob", h.unix_now, 3600);
  TestClient bob(h, kTuple, bob_credential.username, bob_credential.password);
  bob.challenge();
  CHECK(bob.refresh(0).code() == 441);
  CHECK(bob.session.lastResponseSigned());
  CHECK(bob.createPermission({kPeer}).code() == 441);
  CHECK(bob.channelBind(0x4000, kPeer).code() == 441);
  CHECK(bob.allocate().code() == 437);
  CHECK(h.server.allocationCount() == 1);
  CHECK(h.output.closed_relays.empty());
  CHECK(alice.refresh().success());
}

TEST_CASE(
    "Refresh whose REQUESTED-ADDRESS-FAMILY differs from the allocation's gets 443 (RFC 8656 "
    "§8.2)") {
  TurnHarness h;
  h.output.ipv6 = true;
  TestClient v4(h, kTuple);
  v4.mustAllocate();
  TestClient v6(h, kOtherTuple);
  client::TurnSession::AllocateOptions ipv6;
  ipv6.address_family = 0x02;
  v6.mustAllocate(ipv6);

  auto family = [](std::uint8_t f) {
    return [f](wire::MessageBuilder& b) { b.add(wire::attr::RequestedAddressFamily{f}); };
  };
  CHECK(v4.request(Method::kRefresh, family(0x02)).code() == 443);
  CHECK(v6.request(Method::kRefresh, family(0x01)).code() == 443);
  CHECK(v4.request(Method::kRefresh, family(0x01)).success());
  CHECK(v6.request(Method::kRefresh, family(0x02)).success());
  CHECK(h.server.allocationCount() == 2);
}

TEST_CASE(
    "Refresh with a malformed LIFETIME or REQUESTED-ADDRESS-FAMILY gets 400 and changes nothing") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  std::uint16_t type = 0;
  SUBCASE("LIFETIME") { type = static_cast<std::uint16_t>(AttributeType::kLifetime); }
  SUBCASE("REQUESTED-ADDRESS-FAMILY") {
    type = static_cast<std::uint16_t>(AttributeType::kRequestedAddressFamily);
  }
  const Reply r = c.request(Method::kRefresh, [type](wire::MessageBuilder& b) {
    b.addRaw(type, std::vector<std::uint8_t>{0, 0});
  });
  CHECK(r.code() == 400);
  CHECK(c.session.lastResponseSigned());
  // The allocation keeps its original 600 s.
  h.advance(std::chrono::seconds(599));
  CHECK(h.server.allocationCount() == 1);
  h.advance(std::chrono::seconds(1));
  CHECK(h.server.allocationCount() == 0);
}

TEST_CASE(
    "a Refresh with a stale nonce gets 438 and succeeds when retried (RFC 8489 §9.2.4, RFC 8656 "
    "§8.3)") {
  test::ServicesOptions services;
  services.nonce_lifetime = std::chrono::seconds(300);
  TurnHarness h({}, services);
  TestClient c(h, kTuple);
  c.mustAllocate(withLifetime(3600));
  h.advance(std::chrono::seconds(301));
  const Reply stale = c.send(c.session.refresh(1200));
  CHECK(stale.code() == 438);
  CHECK(c.last_outcome == client::TurnSession::Outcome::kRetry);
  const Reply retry = c.send(c.session.refresh(1200));
  REQUIRE(retry.success());
  CHECK(retry.get<wire::attr::Lifetime>()->seconds == 1200);
}

TEST_CASE("a call outlives its TURN REST credential: the allocation it made can still be refreshed") {
  TurnHarness h;
  const auto credential = auth::mintRestCredential(test::kTestSecret, "bob", h.unix_now, 100);
  TestClient c(h, kTuple, credential.username, credential.password);
  c.mustAllocate();
  h.advance(std::chrono::seconds(101));
  // Requests on the allocation the credential created pass; the key must still verify.
  CHECK(c.refresh().success());
  CHECK(c.createPermission({kPeer}).success());
  CHECK(h.authResults(metrics::AuthResult::kExpiredUser) == 0);
  // A new allocation, from another 5-tuple, with the expired credential: 401.
  TestClient other(h, test::udpTuple("198.51.100.7:6000"), credential.username, credential.password);
  CHECK(other.allocate().code() == 401);
  CHECK(h.authResults(metrics::AuthResult::kExpiredUser) >= 1);
  // So does a request with the expired credential on an allocation another credential made.
  const auto fresh = auth::mintRestCredential(test::kTestSecret, "bob", h.unix_now, 3600);
  TestClient owner(h, test::udpTuple("198.51.100.8:6000"), fresh.username, fresh.password);
  owner.mustAllocate();
  TestClient intruder(h, test::udpTuple("198.51.100.8:6000"), credential.username, credential.password);
  intruder.challenge();
  CHECK(intruder.refresh().code() == 401);
}

TEST_CASE("with strict expiry, a TURN REST credential's expiry ends its allocation") {
  core::ServerOptions options;
  options.strict_expiry = true;
  TurnHarness h(options);
  const auto credential = auth::mintRestCredential(test::kTestSecret, "bob", h.unix_now, 100);
  TestClient c(h, kTuple, credential.username, credential.password);
  // The lifetime stops at the expiry, below the default 600 s.
  const Reply allocated = c.allocate();
  REQUIRE(allocated.success());
  CHECK(allocated.get<wire::attr::Lifetime>()->seconds == 100);
  h.advance(std::chrono::seconds(50));
  const Reply refreshed = c.refresh(3600);
  REQUIRE(refreshed.success());
  CHECK(refreshed.get<wire::attr::Lifetime>()->seconds == 50);
  h.advance(std::chrono::seconds(51));
  CHECK(c.refresh().code() == 401);
  CHECK(h.authResults(metrics::AuthResult::kExpiredUser) == 1);
  CHECK(h.server.allocationCount() == 0);  // ended at the expiry by the tick
  CHECK(h.quota.total() == 0);
  // Static users have no expiry: the usual lifetimes.
  TestClient alice(h, test::udpTuple("198.51.100.9:6000"));
  CHECK(alice.allocate().get<wire::attr::Lifetime>()->seconds == 600);
}

// --- Expiry -------------------------------------------------------------------------------

TEST_CASE(
    "an allocation expires on the first tick at or after its lifetime, not before (RFC 8656 §7)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  const core::RelayId relay = c.relay();
  h.advance(std::chrono::seconds(599));
  CHECK(h.server.allocationCount() == 1);
  CHECK(h.output.closed_relays.empty());
  CHECK(h.quota.total() == 1);
  h.advance(std::chrono::seconds(1));
  CHECK(h.server.allocationCount() == 0);
  REQUIRE(h.output.closed_relays.size() == 1);
  CHECK(h.output.closed_relays[0] == relay);
  CHECK(h.quota.total() == 0);
  CHECK(h.ended(metrics::AllocationEnd::kExpired) == 1);
  CHECK(c.refresh().code() == 437);
}

TEST_CASE("a tick that comes late still ends the allocation once (RFC 8656 §7)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  h.advance(std::chrono::seconds(5000));
  CHECK(h.server.allocationCount() == 0);
  CHECK(h.output.closed_relays.size() == 1);
  h.advance(std::chrono::seconds(5000));
  CHECK(h.output.closed_relays.size() == 1);
}

TEST_CASE(
    "an allocation past its lifetime but not yet ticked answers 437 and relays nothing (RFC 8656 "
    "§7)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeer}).success());
  REQUIRE(c.channelBind(0x4000, kPeer).success());
  const core::RelayId relay = c.relay();
  const std::size_t sent_before = h.output.sent.size();
  h.now += std::chrono::seconds(600);  // no tick
  CHECK(c.refresh().code() == 437);
  const auto payload = test::payloadOf(4);
  c.sendIndication(kPeer, payload);
  c.channelData(0x4000, payload);
  CHECK(h.output.to_peers.empty());
  h.fromPeer(relay, kPeer, test::bytesOf(payload));
  CHECK(h.output.sent.size() == sent_before + 1);  // only the 437
  CHECK(h.dropped(metrics::DropReason::kNoAllocation) == 3);
}

TEST_CASE(
    "a refresh postpones expiry, each allocation expires on its own time (RFC 8656 §7, §8.2)") {
  TurnHarness h;
  TestClient a(h, kTuple);
  a.mustAllocate();  // ends at 600 unless refreshed
  TestClient b(h, kOtherTuple);
  b.mustAllocate(withLifetime(900));  // ends at 900
  TestClient c(h, kThirdTuple);
  c.mustAllocate();  // ends at 600
  h.advance(std::chrono::seconds(590));
  REQUIRE(a.refresh(700).success());  // now ends at 1290
  h.advance(std::chrono::seconds(10));
  CHECK(h.server.allocationCount() == 2);  // c has gone
  CHECK(c.refresh().code() == 437);
  h.advance(std::chrono::seconds(300));
  CHECK(h.server.allocationCount() == 1);  // b has gone at 900
  CHECK(b.refresh().code() == 437);
  CHECK(h.quota.total() == 1);
  h.advance(std::chrono::seconds(389));
  CHECK(h.server.allocationCount() == 1);
  h.advance(std::chrono::seconds(1));
  CHECK(h.server.allocationCount() == 0);
  CHECK(h.output.closed_relays.size() == 3);
  CHECK(h.ended(metrics::AllocationEnd::kExpired) == 3);
  CHECK(h.quota.total() == 0);
}

TEST_CASE("a refresh to a shorter lifetime brings the expiry forward (RFC 8656 §8.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate(withLifetime(3600));
  REQUIRE(c.refresh(700).success());
  h.advance(std::chrono::seconds(700));
  CHECK(h.server.allocationCount() == 0);
}

// --- Shutdown -----------------------------------------------------------------------------

TEST_CASE("shutdown ends every allocation, closing its relay and returning its quota") {
  TurnHarness h;
  std::vector<std::unique_ptr<TestClient>> clients;
  for (std::uint16_t i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<TestClient>(
        h, core::FiveTuple{core::Transport::kUdp,
                           {test::ipAddress("192.0.2.20"), static_cast<std::uint16_t>(41000 + i)},
                           kTuple.server}));
    clients.back()->mustAllocate(withLifetime(600 + 100u * i));
  }
  TestClient tcp(h, test::tcpTuple("192.0.2.21:42000"));
  tcp.mustAllocate();
  REQUIRE(h.quota.total() == 6);
  h.server.shutdown(h.now);
  CHECK(h.server.allocationCount() == 0);
  CHECK(h.output.closed_relays.size() == 6);
  CHECK(h.output.open_relays.empty());
  CHECK(h.quota.total() == 0);
  CHECK(h.ended(metrics::AllocationEnd::kShutdown) == 6);
  // Nothing is left for a tick to end twice.
  h.advance(std::chrono::seconds(4000));
  CHECK(h.output.closed_relays.size() == 6);
}

TEST_CASE("shutdown with no allocations does nothing") {
  TurnHarness h;
  h.server.shutdown(h.now);
  CHECK(h.output.closed_relays.empty());
}
