// What the operator sees and steers in the core: draining with 300 Try Alternate, reloads,
// usage records, and the live gauges and counters behind tern's metrics.
#include <doctest/doctest.h>

#include "support/turn_harness.hpp"

using namespace tern;
using test::Reply;
using test::TestClient;
using test::TurnHarness;

namespace {

const core::FiveTuple kTuple = test::udpTuple("192.0.2.7:40000");
const core::FiveTuple kSecond = test::udpTuple("192.0.2.8:40000");
const wire::SocketAddress kPeer = test::socketAddress("8.8.8.8:5000");
const wire::SocketAddress kAlternateV4 = test::socketAddress("203.0.113.9:3478");
const wire::SocketAddress kAlternateV6 = test::socketAddress("[2001:db8::9]:3478");

std::vector<std::uint8_t> bytes(std::size_t n, std::uint8_t seed) { return test::payloadOf(n, seed); }

}  // namespace

TEST_CASE("draining redirects new allocations to an alternate of the client's family (RFC 8489 §10)") {
  core::ServerOptions options;
  options.alternate_servers = {kAlternateV6, kAlternateV4};
  TurnHarness h(options);
  TestClient existing(h, kTuple);
  existing.mustAllocate();
  h.server.setDraining(true);

  TestClient late(h, kSecond);
  const Reply redirected = late.allocate();
  CHECK(redirected.code() == 300);
  const auto alternate = redirected.get<wire::attr::AlternateServer>();
  REQUIRE(alternate.has_value());
  CHECK(alternate->address == kAlternateV4);  // the IPv6 one does not match an IPv4 client
  CHECK(h.server.allocationCount() == 1);
  CHECK(h.quota.total() == 1);

  // The call that exists carries on: refreshes, permissions, data.
  CHECK(existing.refresh().success());
  CHECK(existing.createPermission({kPeer}).success());
  existing.sendIndication(kPeer, bytes(40, 1));
  CHECK(h.output.to_peers.size() == 1);

  // Draining called off: allocations are accepted again.
  h.server.setDraining(false);
  CHECK(late.allocate().success());
}

TEST_CASE("over TLS and DTLS the redirect also names the alternate's ALTERNATE-DOMAIN (RFC 8489 §14.16)") {
  core::ServerOptions options;
  options.alternate_servers = {kAlternateV4};
  options.alternate_domain = "turn2.example.org";
  TurnHarness h(options);
  h.server.setDraining(true);
  for (const core::Transport transport : {core::Transport::kTls, core::Transport::kDtls, core::Transport::kUdp}) {
    const core::FiveTuple tuple{transport, test::socketAddress("192.0.2.50:4000"), test::socketAddress("198.51.100.1:5349")};
    TestClient c(h, tuple);
    const Reply redirected = c.allocate();
    REQUIRE(redirected.code() == 300);
    CHECK(redirected.get<wire::attr::AlternateServer>()->address == kAlternateV4);
    const auto domain = redirected.get<wire::attr::AlternateDomain>();
    CHECK(domain.has_value() == (transport != core::Transport::kUdp));
    if (domain) CHECK(domain->value == "turn2.example.org");
  }
}

TEST_CASE("draining without an alternate server answers 508 with the reason") {
  TurnHarness h;
  h.server.setDraining(true);
  TestClient c(h, kTuple);
  const Reply refused = c.allocate();
  CHECK(refused.code() == 508);
  CHECK(refused.reason().find("draining") != std::string::npos);
  CHECK(h.server.allocationCount() == 0);
}

TEST_CASE("a reload changes limits for new requests, keeps allocations and the drain state") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeer}).success());
  h.server.setDraining(true);

  core::ServerOptions tighter;
  tighter.max_permissions_per_allocation = 1;
  tighter.alternate_servers = {kAlternateV4};
  h.server.reconfigure(tighter, h.services, h.now);
  CHECK(h.server.allocationCount() == 1);
  // The second peer is past the new cap.
  CHECK(c.createPermission({test::socketAddress("1.1.1.1:6000")}).code() == 508);
  CHECK(h.counters.quota_rejections[metrics::idx(metrics::Quota::kPermissions)].get() == 1);
  // Still draining, now with somewhere to send clients.
  TestClient late(h, kSecond);
  CHECK(late.allocate().code() == 300);
}

TEST_CASE("an ended allocation's usage record counts what it relayed each way") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.channelBind(0x4000, kPeer).success());
  c.sendIndication(kPeer, bytes(100, 1));
  c.channelData(0x4000, bytes(60, 2));
  c.channelData(0x4000, bytes(40, 3));
  h.fromPeer(c.relay(), kPeer, test::bytesOf(bytes(500, 4)));
  // Dropped packets do not count: a channel nobody bound.
  c.channelData(0x4001, bytes(70, 5));
  REQUIRE(c.refresh(0).success());

  REQUIRE(h.output.ended.size() == 1);
  const auto& record = h.output.ended.front();
  CHECK(record.username == test::kTestUser);
  CHECK(record.reason == "deleted");
  CHECK(record.usage.packets_to_peer == 3);
  CHECK(record.usage.bytes_to_peer == 200);
  CHECK(record.usage.packets_to_client == 1);
  CHECK(record.usage.bytes_to_client == 500);
}

TEST_CASE("live gauges: allocations by family, permissions and channels recounted each tick") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  const auto& active = h.counters.allocations_active[metrics::idx(metrics::ClientTransport::kUdp)];
  CHECK(active[metrics::idx(metrics::Family::kIPv4)].get() == 1);
  CHECK(h.counters.activeAllocations() == 1);

  REQUIRE(c.createPermission({kPeer, test::socketAddress("1.1.1.1:6000")}).success());
  REQUIRE(c.channelBind(0x4000, kPeer).success());
  h.advance(std::chrono::seconds(1));
  CHECK(h.counters.permissions_active.get() == 2);
  CHECK(h.counters.channels_active.get() == 1);

  // RFC 8656 §9: permissions lapse after 300 s; the channel binding lasts 600 s but keeps
  // its peer's permission alive only until refreshed, so both gauges follow the clock.
  REQUIRE(c.refresh(3600).success());
  h.advance(std::chrono::seconds(300));
  CHECK(h.counters.permissions_active.get() == 0);
  CHECK(h.counters.channels_active.get() == 1);
  h.advance(std::chrono::seconds(300));
  CHECK(h.counters.channels_active.get() == 0);

  REQUIRE(c.refresh(0).success());
  CHECK(h.counters.activeAllocations() == 0);
  CHECK(h.counters.allocation_duration.bucket(metrics::kAllocationDurationBounds.size()) == 0);
  CHECK(h.counters.allocation_duration.sum() == doctest::Approx(601));
}

TEST_CASE("quota rejections are counted by quota") {
  test::ServicesOptions services;
  services.max_per_user = 1;
  TurnHarness h({}, services);
  TestClient first(h, kTuple);
  first.mustAllocate();
  TestClient second(h, kSecond);
  CHECK(second.allocate().code() == 486);
  CHECK(h.counters.quota_rejections[metrics::idx(metrics::Quota::kUserAllocations)].get() == 1);
}
