// The client's reading of Data indications (RFC 8656 §11.4, §11.6): application data, or an
// ICMP error about a datagram sent to the peer; malformed ones are discarded.
#include <doctest/doctest.h>

#include <vector>

#include "relay/client/turn_session.hpp"
#include "relay/wire/builder.hpp"

using namespace tern;
using client::TurnSession;

namespace {

const wire::SocketAddress kPeer = *wire::SocketAddress::parse("192.0.2.9:5000");

// A message of `method` and `cls` with the attributes `add` writes.
template <class Add>
std::vector<std::uint8_t> message(wire::Method method, wire::MessageClass cls, Add add) {
  std::vector<std::uint8_t> buf(256);
  wire::MessageBuilder b(buf, method, cls,
                         wire::TransactionId{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12});
  add(b);
  buf.resize(b.finish().value().size());
  return buf;
}

template <class Add>
std::vector<std::uint8_t> dataIndication(Add add) {
  return message(wire::Method::kData, wire::MessageClass::kIndication, add);
}

std::optional<TurnSession::PeerMessage> read(const std::vector<std::uint8_t>& bytes) {
  auto view = wire::MessageView::parse(bytes);
  REQUIRE(view.has_value());
  return TurnSession::readDataIndication(*view);
}

}  // namespace

TEST_CASE("a Data indication with DATA gives the peer and its bytes (RFC 8656 §11.4)") {
  const std::vector<std::uint8_t> payload{1, 2, 3};
  const auto bytes = dataIndication([&](wire::MessageBuilder& b) {
    b.add(wire::attr::XorPeerAddress{kPeer})
        .add(wire::attr::Data{{payload.data(), payload.size()}});
  });
  const auto m = read(bytes);
  REQUIRE(m.has_value());
  CHECK(m->peer == kPeer);
  REQUIRE(m->data.has_value());
  CHECK(std::vector<std::uint8_t>(m->data->begin(), m->data->end()) == payload);
  CHECK_FALSE(m->icmp.has_value());
}

TEST_CASE("a Data indication with ICMP gives the peer and the error (RFC 8656 §11.6)") {
  const auto bytes = dataIndication([&](wire::MessageBuilder& b) {
    b.add(wire::attr::XorPeerAddress{kPeer}).add(wire::attr::Icmp{3, 3, 0});
  });
  const auto m = read(bytes);
  REQUIRE(m.has_value());
  CHECK(m->peer == kPeer);
  CHECK_FALSE(m->data.has_value());
  REQUIRE(m->icmp.has_value());
  CHECK(m->icmp->type == 3);
  CHECK(m->icmp->code == 3);
}

TEST_CASE("Data indications a client must discard (RFC 8656 §11.4, §11.6)") {
  SUBCASE("no XOR-PEER-ADDRESS") {
    CHECK_FALSE(read(dataIndication([](wire::MessageBuilder& b) {
      b.add(wire::attr::Icmp{3, 3, 0});
    })));
  }
  SUBCASE("neither DATA nor ICMP") {
    CHECK_FALSE(read(
        dataIndication([](wire::MessageBuilder& b) { b.add(wire::attr::XorPeerAddress{kPeer}); })));
  }
  SUBCASE("not a Data indication") {
    const auto send =
        message(wire::Method::kSend, wire::MessageClass::kIndication, [](wire::MessageBuilder& b) {
          b.add(wire::attr::XorPeerAddress{kPeer}).add(wire::attr::Icmp{3, 3, 0});
        });
    CHECK_FALSE(read(send));
  }
}
