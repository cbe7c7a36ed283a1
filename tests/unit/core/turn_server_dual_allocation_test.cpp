// Dual allocation (RFC 8656 §7.2, §8, §10.2, §12.2): ADDITIONAL-ADDRESS-FAMILY gives an
// allocation an IPv6 relayed address beside its IPv4 one; peers of each family are reached
// from the relayed address of their family, and a Refresh can drop one family.
#include <doctest/doctest.h>

#include <vector>

#include "support/turn_harness.hpp"

using namespace tern;
using test::Reply;
using test::TestClient;
using test::TurnHarness;
using wire::AttributeType;
using wire::Method;

namespace {

const core::FiveTuple kTuple = test::udpTuple("192.0.2.7:40000");
const wire::SocketAddress kPeer4 = test::socketAddress("8.8.8.8:7000");
const wire::SocketAddress kPeer6 = test::socketAddress("[2001:4860:4860::8888]:7000");

test::AddAttributes dualAllocate() {
  return [](wire::MessageBuilder& b) {
    b.add(wire::attr::RequestedTransport{}).add(wire::attr::AdditionalAddressFamily{0x02});
  };
}

std::vector<wire::SocketAddress> relayedAddresses(const Reply& r) {
  std::vector<wire::SocketAddress> out;
  const auto view = r.view();
  view.forEachAttribute([&](const wire::RawAttribute& a) {
    if (a.type != static_cast<std::uint16_t>(AttributeType::kXorRelayedAddress)) return;
    auto decoded = wire::attr::XorRelayedAddress::decode(a.value, view.header());
    REQUIRE(decoded.has_value());
    out.push_back(decoded->address);
  });
  return out;
}

// The relay id the output opened for the relayed address of `family`.
core::RelayId relayOf(const TurnHarness& h, wire::AddressFamily family) {
  for (const auto& [id, local] : h.output.open_relays) {
    if (local.ip.family() == family) return id;
  }
  FAIL("no relay of that family is open");
  return 0;
}

}  // namespace

TEST_CASE("ADDITIONAL-ADDRESS-FAMILY IPv6 gives two relayed addresses, IPv4 first (RFC 8656 §7.2)") {
  TurnHarness h;
  h.output.ipv6 = true;
  TestClient c(h, kTuple);
  const Reply r = c.request(Method::kAllocate, dualAllocate());
  REQUIRE(r.success());
  CHECK(c.session.lastResponseSigned());
  const auto relayed = relayedAddresses(r);
  REQUIRE(relayed.size() == 2);
  CHECK(relayed[0].ip.isV4());
  CHECK_FALSE(relayed[1].ip.isV4());
  CHECK_FALSE(r.has(AttributeType::kAddressErrorCode));
  CHECK(h.output.open_relays.size() == 2);
  CHECK(h.quota.total() == 1);  // one allocation, whatever its number of addresses
}

TEST_CASE("a dual allocation relays to peers of both families, each from its own relayed address") {
  TurnHarness h;
  h.output.ipv6 = true;
  TestClient c(h, kTuple);
  REQUIRE(c.request(Method::kAllocate, dualAllocate()).success());
  REQUIRE(c.createPermission({kPeer4, kPeer6}).success());
  REQUIRE(c.channelBind(0x4001, kPeer6).success());
  const core::RelayId relay4 = relayOf(h, wire::AddressFamily::kIPv4);
  const core::RelayId relay6 = relayOf(h, wire::AddressFamily::kIPv6);

  c.channelData(0x4001, {1, 2, 3});
  REQUIRE(h.output.to_peers.size() == 1);
  CHECK(h.output.to_peers[0].relay == relay6);
  CHECK(h.output.to_peers[0].peer == kPeer6);

  c.sendIndication(kPeer4, {4, 5});
  REQUIRE(h.output.to_peers.size() == 2);
  CHECK(h.output.to_peers[1].relay == relay4);

  // Data from each peer reaches the client: the IPv6 one as ChannelData, the IPv4 one in a
  // Data indication.
  const std::vector<std::uint8_t> payload{9, 9};
  const std::size_t before = h.output.sent.size();
  h.fromPeer(relay6, kPeer6, test::bytesOf(payload));
  h.fromPeer(relay4, kPeer4, test::bytesOf(payload));
  REQUIRE(h.output.sent.size() == before + 2);
  CHECK(h.output.sent[before].bytes[0] == 0x40);
  CHECK(Reply(h.output.sent[before + 1].bytes).view().method() == static_cast<std::uint16_t>(Method::kData));
}

TEST_CASE("Refresh with LIFETIME 0 and REQUESTED-ADDRESS-FAMILY drops one family of a dual allocation (RFC 8656 §8)") {
  TurnHarness h;
  h.output.ipv6 = true;
  TestClient c(h, kTuple);
  REQUIRE(c.request(Method::kAllocate, dualAllocate()).success());
  const core::RelayId relay6 = relayOf(h, wire::AddressFamily::kIPv6);
  const Reply dropped = c.request(Method::kRefresh, [](wire::MessageBuilder& b) {
    b.add(wire::attr::Lifetime{0}).add(wire::attr::RequestedAddressFamily{0x02});
  });
  REQUIRE(dropped.success());
  CHECK(dropped.get<wire::attr::Lifetime>()->seconds == 0);
  REQUIRE(h.output.closed_relays.size() == 1);
  CHECK(h.output.closed_relays[0] == relay6);
  CHECK(h.server.allocationCount() == 1);
  // The IPv4 half lives on; IPv6 peers now get 443, and the dropped family cannot be named.
  CHECK(c.createPermission({kPeer4}).success());
  CHECK(c.createPermission({kPeer6}).code() == 443);
  CHECK(c.request(Method::kRefresh, [](wire::MessageBuilder& b) {
           b.add(wire::attr::RequestedAddressFamily{0x02});
         }).code() == 443);
  // A peer packet on the closed socket finds no allocation.
  h.fromPeer(relay6, kPeer6, test::bytesOf(std::vector<std::uint8_t>{1}));
  // Dropping the last family ends the allocation.
  CHECK(c.request(Method::kRefresh, [](wire::MessageBuilder& b) {
           b.add(wire::attr::Lifetime{0}).add(wire::attr::RequestedAddressFamily{0x01});
         }).success());
  CHECK(h.server.allocationCount() == 0);
  CHECK(h.output.open_relays.empty());
  CHECK(h.quota.total() == 0);
}

TEST_CASE("ending a dual allocation closes both relay sockets") {
  TurnHarness h;
  h.output.ipv6 = true;
  TestClient c(h, kTuple);
  REQUIRE(c.request(Method::kAllocate, dualAllocate()).success());
  REQUIRE(h.output.open_relays.size() == 2);
  CHECK(c.refresh(0).success());
  CHECK(h.output.open_relays.empty());
  CHECK(h.output.closed_relays.size() == 2);
}

TEST_CASE("no IPv6 port left: the IPv4 allocation stands with ADDRESS-ERROR-CODE 508 (RFC 8656 §7.2)") {
  TurnHarness h;
  h.output.ipv6 = true;
  h.output.ports_left = 1;
  TestClient c(h, kTuple);
  const Reply r = c.request(Method::kAllocate, dualAllocate());
  REQUIRE(r.success());
  CHECK(relayedAddresses(r).size() == 1);
  auto address_error = r.get<wire::attr::AddressErrorCode>();
  REQUIRE(address_error.has_value());
  CHECK(address_error->family == 0x02);
  CHECK(address_error->code == 508);
}

TEST_CASE("ADDITIONAL-ADDRESS-FAMILY in a TCP allocation gets 400 (RFC 6062 relays one listener)") {
  TurnHarness h;
  h.output.ipv6 = true;
  TestClient c(h, test::tcpTuple("192.0.2.7:40000"));
  const Reply r = c.request(Method::kAllocate, [](wire::MessageBuilder& b) {
    b.add(wire::attr::RequestedTransport{wire::attr::RequestedTransport::kTcp})
        .add(wire::attr::AdditionalAddressFamily{0x02});
  });
  CHECK(r.code() == 400);
  CHECK(h.output.open_relays.empty());
}
