// TurnServer's ChannelBind (RFC 8656 §12.2), channel lifetimes (RFC 8656 §12) and the
// ChannelData it relays from clients (RFC 8656 §12.5), driven with a fake clock.
#include <doctest/doctest.h>

#include "relay/wire/channel_data.hpp"
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

client::TurnSession::AllocateOptions withLifetime(std::uint32_t seconds) {
  client::TurnSession::AllocateOptions o;
  o.lifetime = seconds;
  return o;
}

// Sends ChannelData and returns how many datagrams reached peers because of it.
std::size_t relayedToPeers(TurnHarness& h, TestClient& c, std::uint16_t channel) {
  const std::size_t before = h.output.to_peers.size();
  c.channelData(channel, test::payloadOf(6));
  return h.output.to_peers.size() - before;
}

// What data from `peer` reaches the client as: ChannelData, a Data indication, or nothing.
enum class Arrival { kChannelData, kDataIndication, kNothing };
Arrival arrivalFrom(TurnHarness& h, TestClient& c, const wire::SocketAddress& peer) {
  const std::size_t before = h.output.sent.size();
  const auto payload = test::payloadOf(4);
  h.fromPeer(c.relay(), peer, test::bytesOf(payload));
  if (h.output.sent.size() == before) return Arrival::kNothing;
  const auto& bytes = h.output.sent.back().bytes;
  return wire::classify(bytes) == wire::PacketKind::kChannelData ? Arrival::kChannelData
                                                                 : Arrival::kDataIndication;
}

}  // namespace

TEST_CASE(
    "ChannelBind accepts 0x4000-0x7FFF and refuses numbers outside with 400 (RFC 8656 §12.2, RFC "
    "5766 §11)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  struct Case {
    std::uint16_t channel;
    std::uint16_t code;
  };
  // 0x5000-0x7FFF are RFC 5766's range, accepted on purpose (see relay/wire/channel_data.hpp).
  const Case cases[] = {{0x0000, 400}, {0x3FFF, 400}, {0x4000, 0},   {0x4FFF, 0},  {0x5000, 0},
                        {0x7FFF, 0},   {0x8000, 400}, {0xBFFF, 400}, {0xFFFF, 400}};
  std::uint16_t port = 5000;
  for (const Case& k : cases) {
    CAPTURE(k.channel);
    const wire::SocketAddress peer{kPeerA.ip, port++};
    const Reply r = c.channelBind(k.channel, peer);
    CHECK(r.code() == k.code);
    CHECK(c.session.lastResponseSigned());
    if (k.code == 0) CHECK(arrivalFrom(h, c, peer) == Arrival::kChannelData);
  }
}

TEST_CASE("ChannelBind without CHANNEL-NUMBER or XOR-PEER-ADDRESS gets 400 (RFC 8656 §12.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  test::AddAttributes add;
  SUBCASE("no XOR-PEER-ADDRESS") {
    add = [](wire::MessageBuilder& b) { b.add(wire::attr::ChannelNumber{0x4000}); };
  }
  SUBCASE("no CHANNEL-NUMBER") {
    add = [](wire::MessageBuilder& b) { b.add(wire::attr::XorPeerAddress{kPeerA}); };
  }
  SUBCASE("malformed CHANNEL-NUMBER") {
    add = [](wire::MessageBuilder& b) {
      b.addRaw(static_cast<std::uint16_t>(AttributeType::kChannelNumber),
               std::vector<std::uint8_t>{0x40, 0});
      b.add(wire::attr::XorPeerAddress{kPeerA});
    };
  }
  SUBCASE("malformed XOR-PEER-ADDRESS") {
    add = [](wire::MessageBuilder& b) {
      b.add(wire::attr::ChannelNumber{0x4000});
      b.addRaw(static_cast<std::uint16_t>(AttributeType::kXorPeerAddress),
               std::vector<std::uint8_t>{0, 1});
    };
  }
  const Reply r = c.request(Method::kChannelBind, add);
  CHECK(r.code() == 400);
  CHECK(c.session.lastResponseSigned());
  CHECK(arrivalFrom(h, c, kPeerA) == Arrival::kNothing);
}

TEST_CASE("ChannelBind without an allocation gets 437 (RFC 8656 §12.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.challenge();
  CHECK(c.channelBind(0x4000, kPeerA).code() == 437);
}

TEST_CASE("a channel bound to one peer cannot be bound to another (400, RFC 8656 §12.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.channelBind(0x4000, kPeerA).success());
  CHECK(c.channelBind(0x4000, kPeerB).code() == 400);
  // Another port of the same IP is another transport address.
  CHECK(c.channelBind(0x4000, wire::SocketAddress{kPeerA.ip, 5001}).code() == 400);
  CHECK(arrivalFrom(h, c, kPeerB) == Arrival::kNothing);
  CHECK(arrivalFrom(h, c, kPeerA) == Arrival::kChannelData);
}

TEST_CASE("a peer bound to one channel cannot be bound to another (400, RFC 8656 §12.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.channelBind(0x4000, kPeerA).success());
  CHECK(c.channelBind(0x4001, kPeerA).code() == 400);
  CHECK(c.channelBind(0x4001, test::socketAddress("[::ffff:8.8.8.8]:5000")).code() == 400);
  CHECK(relayedToPeers(h, c, 0x4001) == 0);
  CHECK(h.dropped(metrics::DropReason::kNoChannel) == 1);
}

TEST_CASE("binding the same channel to the same peer again refreshes it (RFC 8656 §12.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate(withLifetime(3600));
  REQUIRE(c.channelBind(0x4000, kPeerA).success());
  h.advance(std::chrono::seconds(500));
  REQUIRE(c.channelBind(0x4000, kPeerA).success());
  h.advance(std::chrono::seconds(599));  // 1099 s after the first bind, 599 s after the refresh
  CHECK(arrivalFrom(h, c, kPeerA) == Arrival::kNothing);  // the permission (300 s) has gone
  REQUIRE(c.createPermission({kPeerA}).success());
  CHECK(arrivalFrom(h, c, kPeerA) == Arrival::kChannelData);
  CHECK(relayedToPeers(h, c, 0x4000) == 1);
  h.advance(std::chrono::seconds(1));
  CHECK(arrivalFrom(h, c, kPeerA) == Arrival::kDataIndication);
}

TEST_CASE("ChannelBind to a denied peer gets 403 (RFC 8656 §12.2, §21)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  std::string denied;
  SUBCASE("private") { denied = "10.0.0.1:5000"; }
  SUBCASE("loopback") { denied = "127.0.0.1:3478"; }
  SUBCASE("IPv4-mapped loopback") { denied = "[::ffff:127.0.0.1]:5000"; }
  SUBCASE("unspecified") { denied = "0.0.0.0:5000"; }
  CAPTURE(denied);
  const Reply r = c.channelBind(0x4000, test::socketAddress(denied));
  CHECK(r.code() == 403);
  CHECK(c.session.lastResponseSigned());
  CHECK(relayedToPeers(h, c, 0x4000) == 0);
}

TEST_CASE("ChannelBind to the relay's own address reaches only relayed addresses open now (RFC 8656 §21)") {
  test::ServicesOptions services;
  services.allow_peers = {"198.51.100.0/24"};  // the relay IP's range, as a lab or LAN relay has
  TurnHarness h({}, services);
  TestClient c(h, kTuple);
  c.mustAllocate();  // relayed 198.51.100.7:50000
  TestClient other(h, test::udpTuple("192.0.2.8:40000"));
  other.mustAllocate();  // relayed 198.51.100.7:50002
  // The relay's listener, and another program's port inside the relay range.
  CHECK(c.channelBind(0x4000, test::socketAddress("198.51.100.7:3478")).code() == 403);
  CHECK(c.channelBind(0x4000, test::socketAddress("198.51.100.7:50077")).code() == 403);
  // Another client's relayed address on the same relay.
  CHECK(c.channelBind(0x4001, test::socketAddress("198.51.100.7:50002")).success());
  CHECK(relayedToPeers(h, c, 0x4001) == 1);
  CHECK(h.output.to_peers.back().peer == test::socketAddress("198.51.100.7:50002"));
  // Once that allocation ends, its port may belong to anyone: the channel stops relaying.
  REQUIRE(other.refresh(0).success());
  CHECK(relayedToPeers(h, c, 0x4001) == 0);
  CHECK(h.dropped(metrics::DropReason::kPeerDenied) == 1);
}

TEST_CASE("without --allow-peer for its range the relay's own address is no peer: own never widens") {
  TurnHarness h;  // 198.51.100.7 is documentation space, denied by default
  TestClient c(h, kTuple);
  c.mustAllocate();
  TestClient other(h, test::udpTuple("192.0.2.8:40000"));
  other.mustAllocate();
  CHECK(c.channelBind(0x4000, test::socketAddress("198.51.100.7:50002")).code() == 403);
}

TEST_CASE("ChannelBind for a peer of the other address family gets 443 (RFC 8656 §12.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  CHECK(c.channelBind(0x4000, test::socketAddress("[2606:4700::1111]:5000")).code() == 443);
}

TEST_CASE("ChannelBind installs the permission for the peer's IP (RFC 8656 §12.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.channelBind(0x4000, kPeerA).success());
  // The permission is per IP: a Send indication to another port of the peer goes through.
  c.sendIndication(test::socketAddress("8.8.8.8:7777"), test::payloadOf(3));
  REQUIRE(h.output.to_peers.size() == 1);
  CHECK(h.output.to_peers[0].peer == test::socketAddress("8.8.8.8:7777"));
  // Data from another port of the peer has no channel, so it comes in a Data indication.
  CHECK(arrivalFrom(h, c, test::socketAddress("8.8.8.8:7777")) == Arrival::kDataIndication);
  CHECK(arrivalFrom(h, c, kPeerA) == Arrival::kChannelData);
}

TEST_CASE("ChannelData from the client goes to the bound peer (RFC 8656 §12.5)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.channelBind(0x4000, kPeerA).success());
  REQUIRE(c.channelBind(0x4001, kPeerB).success());
  const auto payload = test::payloadOf(9);
  c.channelData(0x4001, payload);
  c.channelData(0x4000, payload, true);  // padding after the data is allowed (and not relayed)
  REQUIRE(h.output.to_peers.size() == 2);
  CHECK(h.output.to_peers[0].relay == c.relay());
  CHECK(h.output.to_peers[0].peer == kPeerB);
  CHECK(h.output.to_peers[0].bytes == payload);
  CHECK(h.output.to_peers[1].peer == kPeerA);
  CHECK(h.output.to_peers[1].bytes == payload);
  CHECK(h.relayedPackets(metrics::Direction::kClientToPeer) == 2);
  CHECK(h.relayedBytes(metrics::Direction::kClientToPeer) == 18);
  CHECK(c.received().size() == 4);  // only the answers: 401 and 200 to Allocate, 2 ChannelBinds
}

TEST_CASE(
    "ChannelData over TCP arrives padded and is relayed without the padding (RFC 8656 §12.5)") {
  TurnHarness h;
  TestClient c(h, test::tcpTuple("192.0.2.7:40000"));
  c.mustAllocate();
  REQUIRE(c.channelBind(0x4000, kPeerA).success());
  for (std::size_t size : {0u, 1u, 3u, 4u, 5u}) {
    const auto payload = test::payloadOf(size);
    c.channelData(0x4000, payload, true);
    REQUIRE(!h.output.to_peers.empty());
    CHECK(h.output.to_peers.back().bytes == payload);
  }
  CHECK(h.output.to_peers.size() == 5);
  CHECK(h.relayedPackets(metrics::Direction::kClientToPeer, core::Transport::kTcp) == 5);
}

TEST_CASE("ChannelData on an unbound channel is dropped and counted (RFC 8656 §12.5)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  CHECK(relayedToPeers(h, c, 0x4000) == 0);
  CHECK(relayedToPeers(h, c, 0x7FFF) == 0);
  CHECK(h.dropped(metrics::DropReason::kNoChannel) == 2);
  CHECK(c.received().size() == 3);  // never answered: these are Allocate's and CreatePermission's
}

TEST_CASE("ChannelData shorter than its length field is dropped as malformed (RFC 8656 §12.4)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.channelBind(0x4000, kPeerA).success());
  const std::vector<std::uint8_t> truncated = {0x40, 0x00, 0x00, 0x08, 1, 2, 3};
  h.fromClient(kTuple, test::bytesOf(truncated));
  CHECK(h.output.to_peers.empty());
  CHECK(h.dropped(metrics::DropReason::kMalformed) == 1);
}

TEST_CASE(
    "ChannelData whose peer permission expired while the channel lives is dropped (RFC 8656 "
    "§12.5)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.channelBind(0x4000, kPeerA).success());
  h.advance(std::chrono::seconds(299));
  CHECK(relayedToPeers(h, c, 0x4000) == 1);
  h.advance(std::chrono::seconds(1));  // the permission's 300 s are over, the channel's 600 s not
  CHECK(relayedToPeers(h, c, 0x4000) == 0);
  CHECK(h.dropped(metrics::DropReason::kNoPermission) == 1);
  CHECK(arrivalFrom(h, c, kPeerA) == Arrival::kNothing);
  // A new permission revives the channel.
  REQUIRE(c.createPermission({kPeerA}).success());
  CHECK(relayedToPeers(h, c, 0x4000) == 1);
  CHECK(arrivalFrom(h, c, kPeerA) == Arrival::kChannelData);
}

TEST_CASE("a channel binding expires after 600 s (RFC 8656 §12)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate(withLifetime(3600));
  REQUIRE(c.channelBind(0x4000, kPeerA).success());
  // Keep the permission alive on its own, so only the channel's lifetime is tested.
  h.advance(std::chrono::seconds(250));
  REQUIRE(c.createPermission({kPeerA}).success());
  h.advance(std::chrono::seconds(250));
  REQUIRE(c.createPermission({kPeerA}).success());
  h.advance(std::chrono::seconds(99));
  CHECK(relayedToPeers(h, c, 0x4000) == 1);  // 599 s
  CHECK(arrivalFrom(h, c, kPeerA) == Arrival::kChannelData);
  h.advance(std::chrono::seconds(1));
  CHECK(relayedToPeers(h, c, 0x4000) == 0);  // 600 s
  CHECK(h.dropped(metrics::DropReason::kNoChannel) == 1);
  CHECK(arrivalFrom(h, c, kPeerA) == Arrival::kDataIndication);
  // Once unbound, the number may go to another peer and the peer to another number.
  CHECK(c.channelBind(0x4000, kPeerB).success());
  CHECK(c.channelBind(0x4001, kPeerA).success());
  CHECK(arrivalFrom(h, c, kPeerA) == Arrival::kChannelData);
}

TEST_CASE("channel bindings follow ServerOptions::channel_lifetime") {
  core::ServerOptions options;
  options.channel_lifetime = std::chrono::seconds(100);
  TurnHarness h(options);
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.channelBind(0x4000, kPeerA).success());
  h.advance(std::chrono::seconds(99));
  CHECK(relayedToPeers(h, c, 0x4000) == 1);
  h.advance(std::chrono::seconds(1));
  CHECK(relayedToPeers(h, c, 0x4000) == 0);
}

TEST_CASE("ChannelBind beyond max_channels_per_allocation gets 508 (RFC 8656 §12.2)") {
  core::ServerOptions options;
  options.max_channels_per_allocation = 2;
  TurnHarness h(options);
  TestClient c(h, kTuple);
  c.mustAllocate(withLifetime(3600));
  REQUIRE(c.channelBind(0x4000, kPeerA).success());
  REQUIRE(c.channelBind(0x4001, kPeerB).success());
  const Reply r = c.channelBind(0x4002, kPeerC);
  CHECK(r.code() == 508);
  CHECK(c.session.lastResponseSigned());
  // The refused bind installed no permission either.
  CHECK(arrivalFrom(h, c, kPeerC) == Arrival::kNothing);
  // Refreshing a bound channel needs no new room.
  CHECK(c.channelBind(0x4001, kPeerB).success());
  // An expired binding frees its place.
  h.advance(std::chrono::seconds(600));
  CHECK(c.channelBind(0x4002, kPeerC).success());
  CHECK(arrivalFrom(h, c, kPeerC) == Arrival::kChannelData);
}

TEST_CASE(
    "ChannelBind that needs a new permission beyond max_permissions_per_allocation gets 508") {
  core::ServerOptions options;
  options.max_permissions_per_allocation = 1;
  TurnHarness h(options);
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerB}).success());
  CHECK(c.channelBind(0x4000, kPeerA).code() == 508);
  CHECK(relayedToPeers(h, c, 0x4000) == 0);
  // A peer that already has its permission needs no new place.
  CHECK(c.channelBind(0x4000, kPeerB).success());
}
