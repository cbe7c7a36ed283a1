// TurnServer's data path: Send indications from clients (RFC 8656 §11.2) and datagrams from
// peers, delivered as ChannelData (RFC 8656 §12.6) or Data indications (RFC 8656 §11.3),
// over UDP and over TCP, where ChannelData is padded to 4 bytes (RFC 8656 §12.5).
#include <doctest/doctest.h>

#include "relay/wire/channel_data.hpp"
#include "support/turn_harness.hpp"

using namespace tern;
using test::Reply;
using test::TestClient;
using test::TurnHarness;
using wire::AttributeType;
using wire::MessageClass;
using wire::Method;

namespace {

const core::FiveTuple kTuple = test::udpTuple("192.0.2.7:40000");
const core::FiveTuple kTcpTuple = test::tcpTuple("192.0.2.7:40000");
const wire::SocketAddress kPeerA = test::socketAddress("8.8.8.8:5000");
const wire::SocketAddress kPeerB = test::socketAddress("1.1.1.1:6000");
const wire::SocketAddress kPeerV6 = test::socketAddress("[2606:4700::1111]:8000");

constexpr std::size_t kPayloadSizes[] = {0, 1, 3, 4, 1200};

// A Send indication with only the attributes `add` writes.
std::vector<std::uint8_t> indication(Method method, const test::AddAttributes& add) {
  std::vector<std::uint8_t> buf(1500);
  const wire::TransactionId tid = {9, 8, 7, 6, 5, 4, 3, 2, 1, 0, 1, 2};
  wire::MessageBuilder b(buf, method, MessageClass::kIndication, tid);
  add(b);
  auto done = b.finish();
  REQUIRE(done.has_value());
  buf.resize(done->size());
  return buf;
}

// The bytes the server sent last, which must be for `c`.
std::vector<std::uint8_t> lastTo(const TurnHarness& h, const TestClient& c) {
  REQUIRE(!h.output.sent.empty());
  REQUIRE(h.output.sent.back().tuple == c.tuple);
  return h.output.sent.back().bytes;
}

std::vector<std::uint8_t> expectedChannelData(std::uint16_t channel,
                                              const std::vector<std::uint8_t>& payload,
                                              bool padded) {
  // Sized once and copied into: GCC 12 at -O3 warns falsely (-Warray-bounds) on insert().
  const std::size_t body = padded ? wire::padTo4(payload.size()) : payload.size();
  std::vector<std::uint8_t> out(wire::kChannelDataHeaderSize + body, 0);
  wire::writeChannelDataHeader(out.data(), channel, static_cast<std::uint16_t>(payload.size()));
  std::copy(payload.begin(), payload.end(), out.begin() + wire::kChannelDataHeaderSize);
  return out;
}

// Checks that `bytes` is a well-formed Data indication from `peer` carrying `payload`.
void checkDataIndication(const std::vector<std::uint8_t>& bytes, const wire::SocketAddress& peer,
                         const std::vector<std::uint8_t>& payload) {
  // MessageView::parse checks the length field against the bytes and every attribute TLV.
  auto view = wire::MessageView::parse(bytes);
  REQUIRE(view.has_value());
  CHECK(view->method() == static_cast<std::uint16_t>(Method::kData));
  CHECK(view->messageClass() == MessageClass::kIndication);
  CHECK(view->header().length + wire::kHeaderSize == bytes.size());
  CHECK(bytes.size() % 4 == 0);
  auto from = view->get<wire::attr::XorPeerAddress>();
  REQUIRE(from.has_value());
  CHECK(from->address == peer);
  auto data = view->get<wire::attr::Data>();
  REQUIRE(data.has_value());
  CHECK(std::vector<std::uint8_t>(data->value.begin(), data->value.end()) == payload);
  // Indications are not signed, and the server adds nothing a client would have to skip.
  CHECK_FALSE(view->has(AttributeType::kMessageIntegrity));
  CHECK_FALSE(view->has(AttributeType::kFingerprint));
}

}  // namespace

// --- Send indications ---------------------------------------------------------------------

TEST_CASE(
    "a Send indication to a permitted peer is relayed from the relay socket (RFC 8656 §11.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  const std::size_t answers = c.received().size();
  for (std::size_t size : kPayloadSizes) {
    const auto payload = test::payloadOf(size);
    c.sendIndication(kPeerA, payload);
    REQUIRE(!h.output.to_peers.empty());
    CHECK(h.output.to_peers.back().relay == c.relay());
    CHECK(h.output.to_peers.back().peer == kPeerA);
    CHECK(h.output.to_peers.back().bytes == payload);
  }
  CHECK(h.output.to_peers.size() == 5);
  CHECK(h.relayedPackets(metrics::Direction::kClientToPeer) == 5);
  CHECK(h.relayedBytes(metrics::Direction::kClientToPeer) == 0 + 1 + 3 + 4 + 1200);
  // RFC 8656 §11.2: indications are never answered.
  CHECK(c.received().size() == answers);
}

TEST_CASE("a Send indication over TCP is relayed the same way (RFC 8656 §11.2)") {
  TurnHarness h;
  TestClient c(h, kTcpTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  const auto payload = test::payloadOf(7);
  c.sendIndication(kPeerA, payload);
  REQUIRE(h.output.to_peers.size() == 1);
  CHECK(h.output.to_peers[0].bytes == payload);
  CHECK(h.relayedPackets(metrics::Direction::kClientToPeer, core::Transport::kTcp) == 1);
}

TEST_CASE(
    "a Send indication to a peer without permission is dropped and counted, never answered (RFC "
    "8656 §11.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  const std::size_t answers = c.received().size();
  c.sendIndication(kPeerB, test::payloadOf(10));
  c.sendIndication(test::socketAddress("10.0.0.1:5000"), test::payloadOf(10));
  CHECK(h.output.to_peers.empty());
  CHECK(h.dropped(metrics::DropReason::kNoPermission) == 2);
  CHECK(h.relayedPackets(metrics::Direction::kClientToPeer) == 0);
  CHECK(c.received().size() == answers);
}

TEST_CASE(
    "a Send indication without XOR-PEER-ADDRESS or DATA is dropped, never answered (RFC 8656 "
    "§11.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  const std::size_t answers = c.received().size();
  const auto payload = test::payloadOf(4);
  test::AddAttributes add;
  SUBCASE("no XOR-PEER-ADDRESS") {
    add = [&](wire::MessageBuilder& b) { b.add(wire::attr::Data{test::bytesOf(payload)}); };
  }
  SUBCASE("no DATA") {
    add = [](wire::MessageBuilder& b) { b.add(wire::attr::XorPeerAddress{kPeerA}); };
  }
  SUBCASE("malformed XOR-PEER-ADDRESS") {
    add = [&](wire::MessageBuilder& b) {
      b.addRaw(static_cast<std::uint16_t>(AttributeType::kXorPeerAddress),
               std::vector<std::uint8_t>{0, 1, 0, 2});
      b.add(wire::attr::Data{test::bytesOf(payload)});
    };
  }
  SUBCASE("neither") {
    add = [](wire::MessageBuilder&) {};
  }
  const auto bytes = indication(Method::kSend, add);
  h.fromClient(kTuple, test::bytesOf(bytes));
  CHECK(h.output.to_peers.empty());
  CHECK(h.dropped(metrics::DropReason::kMalformed) == 1);
  CHECK(c.received().size() == answers);
}

TEST_CASE("a Send indication without an allocation is dropped and counted (RFC 8656 §11.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.sendIndication(kPeerA, test::payloadOf(4));
  CHECK(h.output.to_peers.empty());
  CHECK(h.output.sent.empty());
  CHECK(h.dropped(metrics::DropReason::kNoAllocation) == 1);
}

TEST_CASE("a Send indication to the relay's own address needs a relayed address open now (RFC 8656 §21)") {
  test::ServicesOptions services;
  services.allow_peers = {"198.51.100.0/24"};
  TurnHarness h({}, services);
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({test::socketAddress("198.51.100.7:1")}).success());
  c.sendIndication(test::socketAddress("198.51.100.7:3478"), test::payloadOf(4));
  c.sendIndication(test::socketAddress("198.51.100.7:50002"), test::payloadOf(4));  // nobody's yet
  CHECK(h.output.to_peers.empty());
  CHECK(h.dropped(metrics::DropReason::kPeerDenied) == 2);
  TestClient other(h, test::udpTuple("192.0.2.8:40000"));
  other.mustAllocate();  // relayed 198.51.100.7:50002
  c.sendIndication(test::socketAddress("198.51.100.7:50002"), test::payloadOf(4));
  REQUIRE(h.output.to_peers.size() == 1);
  CHECK(h.output.to_peers[0].peer == test::socketAddress("198.51.100.7:50002"));
}

TEST_CASE("a Send indication to an IPv4-mapped peer goes to the IPv4 address (RFC 4291 §2.5.5.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  c.sendIndication(test::socketAddress("[::ffff:8.8.8.8]:5000"), test::payloadOf(4));
  REQUIRE(h.output.to_peers.size() == 1);
  CHECK(h.output.to_peers[0].peer == kPeerA);
}

TEST_CASE("a Send indication the relay socket refuses is counted as a failed send") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  h.output.accept = false;
  c.sendIndication(kPeerA, test::payloadOf(4));
  CHECK(h.dropped(metrics::DropReason::kSendFailed) == 1);
  CHECK(h.relayedPackets(metrics::Direction::kClientToPeer) == 0);
}

TEST_CASE("indications other than Send and Binding are dropped as unexpected (RFC 8489 §6.3.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  const auto payload = test::payloadOf(4);
  const auto bytes = indication(Method::kData, [&](wire::MessageBuilder& b) {
    b.add(wire::attr::XorPeerAddress{kPeerA}).add(wire::attr::Data{test::bytesOf(payload)});
  });
  h.fromClient(kTuple, test::bytesOf(bytes));
  CHECK(h.output.to_peers.empty());
  CHECK(h.dropped(metrics::DropReason::kUnexpectedClass) == 1);
}

// --- Peer to client -----------------------------------------------------------------------

TEST_CASE(
    "data from a peer with a channel reaches the client as ChannelData, unpadded over UDP (RFC "
    "8656 §12.6)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.channelBind(0x4001, kPeerA).success());
  for (std::size_t size : kPayloadSizes) {
    CAPTURE(size);
    const auto payload = test::payloadOf(size, 0xC0);
    h.fromPeer(c.relay(), kPeerA, test::bytesOf(payload));
    CHECK(lastTo(h, c) == expectedChannelData(0x4001, payload, false));
  }
  CHECK(h.relayedPackets(metrics::Direction::kPeerToClient) == 5);
  CHECK(h.relayedBytes(metrics::Direction::kPeerToClient) == 1208);
}

TEST_CASE(
    "data from a peer with a channel reaches a TCP client as ChannelData padded to 4 (RFC 8656 "
    "§12.5)") {
  TurnHarness h;
  TestClient c(h, kTcpTuple);
  c.mustAllocate();
  REQUIRE(c.channelBind(0x7FFF, kPeerA).success());
  for (std::size_t size : kPayloadSizes) {
    CAPTURE(size);
    const auto payload = test::payloadOf(size, 0xC0);
    h.fromPeer(c.relay(), kPeerA, test::bytesOf(payload));
    const auto sent = lastTo(h, c);
    CHECK(sent == expectedChannelData(0x7FFF, payload, true));
    CHECK(sent.size() % 4 == 0);
    // The length field counts the data only, not the padding.
    auto view = wire::ChannelDataView::parse(sent);
    REQUIRE(view.has_value());
    CHECK(view->data.size() == size);
  }
  CHECK(h.relayedPackets(metrics::Direction::kPeerToClient, core::Transport::kTcp) == 5);
}

TEST_CASE(
    "data from a permitted peer without a channel reaches the client in a Data indication (RFC "
    "8656 §11.3)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  for (std::size_t size : kPayloadSizes) {
    CAPTURE(size);
    const auto payload = test::payloadOf(size, 0x55);
    h.fromPeer(c.relay(), kPeerA, test::bytesOf(payload));
    checkDataIndication(lastTo(h, c), kPeerA, payload);
  }
  CHECK(h.relayedPackets(metrics::Direction::kPeerToClient) == 5);
  CHECK(h.relayedBytes(metrics::Direction::kPeerToClient) == 1208);
}

TEST_CASE("Data indications over TCP are the same STUN messages (RFC 8656 §11.3)") {
  TurnHarness h;
  TestClient c(h, kTcpTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  for (std::size_t size : kPayloadSizes) {
    CAPTURE(size);
    const auto payload = test::payloadOf(size, 0x55);
    h.fromPeer(c.relay(), kPeerA, test::bytesOf(payload));
    checkDataIndication(lastTo(h, c), kPeerA, payload);
  }
}

TEST_CASE("Data indications from an IPv6 peer carry its address (RFC 8656 §11.3)") {
  TurnHarness h;
  h.output.ipv6 = true;
  TestClient c(h, kTuple);
  client::TurnSession::AllocateOptions ipv6;
  ipv6.address_family = 0x02;
  c.mustAllocate(ipv6);
  REQUIRE(c.createPermission({kPeerV6}).success());
  for (std::size_t size : kPayloadSizes) {
    CAPTURE(size);
    const auto payload = test::payloadOf(size);
    h.fromPeer(c.relay(), kPeerV6, test::bytesOf(payload));
    checkDataIndication(lastTo(h, c), kPeerV6, payload);
  }
  REQUIRE(c.channelBind(0x4000, kPeerV6).success());
  const auto payload = test::payloadOf(3);
  h.fromPeer(c.relay(), kPeerV6, test::bytesOf(payload));
  CHECK(lastTo(h, c) == expectedChannelData(0x4000, payload, false));
}

TEST_CASE("Data indications get distinct transaction ids") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  const auto payload = test::payloadOf(4);
  h.fromPeer(c.relay(), kPeerA, test::bytesOf(payload));
  const auto first = lastTo(h, c);
  h.fromPeer(c.relay(), kPeerA, test::bytesOf(payload));
  const auto second = lastTo(h, c);
  CHECK(wire::MessageView::parse(first)->transactionId() !=
        wire::MessageView::parse(second)->transactionId());
}

TEST_CASE(
    "data from an IPv4-mapped peer address is matched and reported as IPv4 (RFC 4291 §2.5.5.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  const auto payload = test::payloadOf(4);
  h.fromPeer(c.relay(), test::socketAddress("[::ffff:8.8.8.8]:5000"), test::bytesOf(payload));
  checkDataIndication(lastTo(h, c), kPeerA, payload);
  REQUIRE(c.channelBind(0x4000, kPeerA).success());
  h.fromPeer(c.relay(), test::socketAddress("[::ffff:8.8.8.8]:5000"), test::bytesOf(payload));
  CHECK(lastTo(h, c) == expectedChannelData(0x4000, payload, false));
}

TEST_CASE("data from a peer without permission is dropped and counted (RFC 8656 §9)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  const std::size_t sent = h.output.sent.size();
  const auto payload = test::payloadOf(4);
  h.fromPeer(c.relay(), kPeerB, test::bytesOf(payload));
  h.fromPeer(c.relay(), test::socketAddress("8.8.4.4:5000"), test::bytesOf(payload));
  CHECK(h.output.sent.size() == sent);
  CHECK(h.dropped(metrics::DropReason::kNoPermission) == 2);
  CHECK(h.relayedPackets(metrics::Direction::kPeerToClient) == 0);
}

TEST_CASE("data for an unknown relay socket is dropped and counted") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  const std::size_t sent = h.output.sent.size();
  const auto payload = test::payloadOf(4);
  h.fromPeer(c.relay() + 100, kPeerA, test::bytesOf(payload));
  CHECK(h.output.sent.size() == sent);
  CHECK(h.dropped(metrics::DropReason::kNoAllocation) == 1);
}

TEST_CASE("data goes to the allocation of the relay socket it arrived on (RFC 8656 §11.3)") {
  TurnHarness h;
  TestClient a(h, kTuple);
  a.mustAllocate();
  TestClient b(h, test::udpTuple("192.0.2.8:40001"));
  b.mustAllocate();
  REQUIRE(a.createPermission({kPeerA}).success());
  REQUIRE(b.createPermission({kPeerA}).success());
  REQUIRE(b.channelBind(0x4000, kPeerA).success());
  const auto payload = test::payloadOf(4);
  h.fromPeer(a.relay(), kPeerA, test::bytesOf(payload));
  checkDataIndication(lastTo(h, a), kPeerA, payload);
  h.fromPeer(b.relay(), kPeerA, test::bytesOf(payload));
  CHECK(lastTo(h, b) == expectedChannelData(0x4000, payload, false));
}

TEST_CASE("a delivery the client socket refuses is counted as a failed send") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  h.output.accept = false;
  const auto payload = test::payloadOf(4);
  h.fromPeer(c.relay(), kPeerA, test::bytesOf(payload));
  CHECK(h.dropped(metrics::DropReason::kSendFailed) == 1);
  CHECK(h.relayedPackets(metrics::Direction::kPeerToClient) == 0);
}

TEST_CASE("a round trip: Send out, Data back, then ChannelData both ways (RFC 8656 §11, §12)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeerA}).success());
  const auto ping = test::payloadOf(32, 0x01);
  const auto pong = test::payloadOf(48, 0x80);
  c.sendIndication(kPeerA, ping);
  REQUIRE(h.output.to_peers.size() == 1);
  CHECK(h.output.to_peers[0].bytes == ping);
  h.fromPeer(h.output.to_peers[0].relay, h.output.to_peers[0].peer, test::bytesOf(pong));
  checkDataIndication(lastTo(h, c), kPeerA, pong);

  REQUIRE(c.channelBind(0x4000, kPeerA).success());
  c.channelData(0x4000, ping);
  REQUIRE(h.output.to_peers.size() == 2);
  CHECK(h.output.to_peers[1].bytes == ping);
  h.fromPeer(c.relay(), kPeerA, test::bytesOf(pong));
  const auto back = lastTo(h, c);
  auto view = wire::ChannelDataView::parse(back);
  REQUIRE(view.has_value());
  CHECK(view->channel == 0x4000);
  CHECK(std::vector<std::uint8_t>(view->data.begin(), view->data.end()) == pong);
}
