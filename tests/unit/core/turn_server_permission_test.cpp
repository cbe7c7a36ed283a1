// TurnServer's CreatePermission (RFC 8656 §9, §10.2) and the peer policy in front of it
// (RFC 8656 §21), driven with a fake clock.
#include <doctest/doctest.h>

#include "support/turn_harness.hpp"

using namespace tern;
using test::Reply;
using test::TestClient;
using test::TurnHarness;
using wire::AttributeType;
using wire::Method;

namespace {

const core::FiveTuple kTuple = test::udpTuple("192.0.2.7:40000");
const wire::SocketAddress kPeerA = test::socketAddress("8.8.8.8:5000");
const wire::SocketAddress kPeerB = test::socketAddress("1.1.1.1:6000");
const wire::SocketAddress kPeerC = test::socketAddress("9.9.9.9:7000");
const wire::SocketAddress kPeerV6 = test::socketAddress("[2606:4700::1111]:8000");

// Whether data from `peer` reaches the client: the observable effect of a permission.
bool permitted(TurnHarness& h, TestClient& c, const wire::SocketAddress& peer) {
  const std::size_t before = h.output.sent.size();
  const auto payload = test::payloadOf(4);
  h.fromPeer(c.relay(), peer, test::bytesOf(payload));
  return h.output.sent.size() == before + 1;
}

core::ServerOptions withMaxPermissions(std::size_t n) {
  core::ServerOptions o;
  o.max_permissions_per_allocation = n;
  return o;
}

}  // namespace

TEST_CASE("CreatePermission with several XOR-PEER-ADDRESS installs them all (RFC 8656 §10.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  CHECK_FALSE(permitted(h, c, kPeerA));
  const Reply r = c.createPermission({kPeerA, kPeerB, kPeerC});
  REQUIRE(r.success());
  CHECK(c.session.lastResponseSigned());
  CHECK(r.view().method() == static_cast<std::uint16_t>(Method::kCreatePermission));
  CHECK(permitted(h, c, kPeerA));
  CHECK(permitted(h, c, kPeerB));
  CHECK(permitted(h, c, kPeerC));
  CHECK_FALSE(permitted(h, c, test::socketAddress("8.8.4.4:5000")));
}

TEST_CASE("a permission is per IP address: the port is ignored (RFC 8656 §9)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  CHECK(permitted(h, c, test::socketAddress("8.8.8.8:1")));
  CHECK(permitted(h, c, test::socketAddress("8.8.8.8:65535")));
  const auto payload = test::payloadOf(3);
  c.sendIndication(test::socketAddress("8.8.8.8:9999"), payload);
  REQUIRE(h.output.to_peers.size() == 1);
  CHECK(h.output.to_peers[0].peer == test::socketAddress("8.8.8.8:9999"));
}

TEST_CASE(
    "CreatePermission with one denied peer gets 403 and installs none (RFC 8656 §10.2, §21)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  std::string denied;
  SUBCASE("private") { denied = "10.0.0.1:5000"; }
  SUBCASE("loopback") { denied = "127.0.0.1:5000"; }
  SUBCASE("unspecified") { denied = "0.0.0.0:5000"; }
  SUBCASE("IPv4-mapped private") { denied = "[::ffff:10.0.0.1]:5000"; }
  SUBCASE("IPv4-mapped loopback") { denied = "[::ffff:127.0.0.1]:5000"; }
  SUBCASE("IPv4-compatible loopback") { denied = "[::127.0.0.1]:5000"; }
  SUBCASE("link-local") { denied = "169.254.169.254:80"; }
  SUBCASE("broadcast") { denied = "255.255.255.255:5000"; }
  CAPTURE(denied);
  const Reply r = c.createPermission({kPeerA, test::socketAddress(denied), kPeerB});
  CHECK(r.code() == 403);
  CHECK(c.session.lastResponseSigned());
  CHECK_FALSE(r.reason().empty());
  CHECK_FALSE(permitted(h, c, kPeerA));
  CHECK_FALSE(permitted(h, c, kPeerB));
  CHECK(h.dropped(metrics::DropReason::kNoPermission) == 2);
}

TEST_CASE("an IPv4-mapped public peer is normalised and permitted as IPv4 (RFC 4291 §2.5.5.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({test::socketAddress("[::ffff:8.8.8.8]:5000")}).success());
  CHECK(permitted(h, c, kPeerA));
  // A dual-stack relay socket may report the peer in the mapped form too.
  CHECK(permitted(h, c, test::socketAddress("[::ffff:8.8.8.8]:5000")));
}

TEST_CASE(
    "--deny-peer refuses a public peer and --allow-peer admits a private one (RFC 8656 §21)") {
  test::ServicesOptions services;
  services.deny_peers = {"8.8.8.0/24"};
  services.allow_peers = {"10.1.0.0/16"};
  TurnHarness h({}, services);
  TestClient c(h, kTuple);
  c.mustAllocate();
  CHECK(c.createPermission({kPeerA}).code() == 403);
  CHECK(c.createPermission({test::socketAddress("10.2.0.1:5000")}).code() == 403);
  CHECK(c.createPermission({test::socketAddress("10.1.0.1:5000")}).success());
  CHECK(permitted(h, c, test::socketAddress("10.1.0.1:5000")));
}

TEST_CASE(
    "a permission for the relay's own address is allowed: relay-to-relay calls (RFC 8656 §9)") {
  test::ServicesOptions services;
  services.allow_peers = {"198.51.100.0/24"};
  TurnHarness h({}, services);
  TestClient c(h, kTuple);
  c.mustAllocate();
  CHECK(c.createPermission({test::socketAddress("198.51.100.7:3478")}).success());
}

TEST_CASE("a permission for a host address that is no relay IP gets 403, even inside --allow-peer") {
  test::ServicesOptions services;
  services.allow_peers = {"127.0.0.0/8"};
  services.own_addresses = {"198.51.100.7", "127.0.0.9"};  // a wildcard listener's host addresses
  TurnHarness h({}, services);
  TestClient c(h, kTuple);
  c.mustAllocate();
  CHECK(c.createPermission({test::socketAddress("127.0.0.9:5000")}).code() == 403);
  CHECK(c.createPermission({test::socketAddress("127.0.0.10:5000")}).success());
}

TEST_CASE("CreatePermission for a peer of the other address family gets 443 (RFC 8656 §10.2)") {
  TurnHarness h;
  h.output.ipv6 = true;
  TestClient v4(h, kTuple);
  v4.mustAllocate();
  CHECK(v4.createPermission({kPeerA, kPeerV6}).code() == 443);
  CHECK_FALSE(permitted(h, v4, kPeerA));

  TestClient v6(h, test::udpTuple("192.0.2.8:40001"));
  client::TurnSession::AllocateOptions ipv6;
  ipv6.address_family = 0x02;
  v6.mustAllocate(ipv6);
  CHECK(v6.createPermission({kPeerA}).code() == 443);
  // The IPv4-mapped form is IPv4 too.
  CHECK(v6.createPermission({test::socketAddress("[::ffff:8.8.8.8]:1")}).code() == 443);
  CHECK(v6.createPermission({kPeerV6}).success());
  CHECK(permitted(h, v6, kPeerV6));
}

TEST_CASE("CreatePermission without XOR-PEER-ADDRESS gets 400 (RFC 8656 §10.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  const Reply r = c.request(Method::kCreatePermission, [](wire::MessageBuilder&) {});
  CHECK(r.code() == 400);
  CHECK(c.session.lastResponseSigned());
}

TEST_CASE(
    "CreatePermission with a malformed XOR-PEER-ADDRESS gets 400 and installs none (RFC 8656 "
    "§10.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  const Reply r = c.request(Method::kCreatePermission, [](wire::MessageBuilder& b) {
    b.add(wire::attr::XorPeerAddress{kPeerA});
    b.addRaw(static_cast<std::uint16_t>(AttributeType::kXorPeerAddress),
             std::vector<std::uint8_t>{0, 1, 2});
  });
  CHECK(r.code() == 400);
  CHECK_FALSE(permitted(h, c, kPeerA));
}

TEST_CASE("CreatePermission without an allocation gets 437 (RFC 8656 §10.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.challenge();
  CHECK(c.createPermission({kPeerA}).code() == 437);
}

TEST_CASE("CreatePermission beyond max_permissions_per_allocation gets 508 and installs none") {
  TurnHarness h(withMaxPermissions(2));
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA, kPeerB}).success());
  CHECK(c.createPermission({kPeerC}).code() == 508);
  // All or none: the known peer is refreshed only if the new one fits too.
  CHECK(c.createPermission({kPeerA, kPeerC}).code() == 508);
  CHECK_FALSE(permitted(h, c, kPeerC));
  // Refreshing what is installed needs no new room.
  CHECK(c.createPermission({kPeerB, kPeerA}).success());
  // Expired permissions free their places.
  h.advance(std::chrono::seconds(300));
  CHECK(c.createPermission({kPeerC}).success());
  CHECK(permitted(h, c, kPeerC));
  CHECK_FALSE(permitted(h, c, kPeerA));
}

TEST_CASE("the same peer twice in one CreatePermission takes one place (RFC 8656 §9)") {
  TurnHarness h(withMaxPermissions(1));
  TestClient c(h, kTuple);
  c.mustAllocate();
  CHECK(c.createPermission(
             {kPeerA, test::socketAddress("8.8.8.8:1"), test::socketAddress("[::ffff:8.8.8.8]:2")})
            .success());
  CHECK(permitted(h, c, kPeerA));
}

TEST_CASE("a permission expires after 300 s, CreatePermission refreshes it (RFC 8656 §9)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate(client::TurnSession::AllocateOptions{});
  REQUIRE(c.createPermission({kPeerA, kPeerB}).success());
  h.advance(std::chrono::seconds(200));
  REQUIRE(c.createPermission({kPeerA}).success());  // kPeerA now lasts until 500
  h.advance(std::chrono::seconds(99));
  CHECK(permitted(h, c, kPeerB));  // 299 s
  h.advance(std::chrono::seconds(1));
  CHECK_FALSE(permitted(h, c, kPeerB));  // 300 s: gone
  CHECK(permitted(h, c, kPeerA));
  const auto payload = test::payloadOf(5);
  c.sendIndication(kPeerB, payload);
  CHECK(h.output.to_peers.empty());
  h.advance(std::chrono::seconds(199));
  CHECK(permitted(h, c, kPeerA));  // 499 s
  h.advance(std::chrono::seconds(1));
  CHECK_FALSE(permitted(h, c, kPeerA));
  c.sendIndication(kPeerA, payload);
  CHECK(h.output.to_peers.empty());
  CHECK(h.dropped(metrics::DropReason::kNoPermission) == 4);
}

TEST_CASE("permissions follow ServerOptions::permission_lifetime") {
  core::ServerOptions options;
  options.permission_lifetime = std::chrono::seconds(60);
  TurnHarness h(options);
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  h.advance(std::chrono::seconds(59));
  CHECK(permitted(h, c, kPeerA));
  h.advance(std::chrono::seconds(1));
  CHECK_FALSE(permitted(h, c, kPeerA));
}

TEST_CASE("permissions belong to one allocation (RFC 8656 §9)") {
  TurnHarness h;
  TestClient a(h, kTuple);
  a.mustAllocate();
  TestClient b(h, test::udpTuple("192.0.2.8:40001"));
  b.mustAllocate();
  REQUIRE(a.createPermission({kPeerA}).success());
  CHECK(permitted(h, a, kPeerA));
  CHECK_FALSE(permitted(h, b, kPeerA));
}
