// TurnServer's handling of STUN Binding and of bad input (RFC 8489 §6.3), driven without
// sockets or clocks.
#include <doctest/doctest.h>

#include "metrics/worker_counters.hpp"
#include "relay/core/turn_server.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "support/core_services.hpp"
#include "support/hex.hpp"
#include "support/recording_output.hpp"
#include "vectors/stun_vectors.hpp"

using namespace tern;
using wire::AttributeType;
using wire::MessageClass;
using wire::Method;

namespace {

tern::core::ServerOptions withSoftware(const char* software) {
  tern::core::ServerOptions o;
  o.software = software;
  return o;
}

const wire::TransactionId kTid = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
const core::FiveTuple kUdpTuple{core::Transport::kUdp, *wire::SocketAddress::parse("192.0.2.7:40000"),
                                *wire::SocketAddress::parse("198.51.100.1:3478")};
const core::TimePoint kNow{std::chrono::seconds(1000)};

struct Fixture {
  test::RecordingOutput output;
  metrics::WorkerCounters counters;
  core::TurnServer server{withSoftware("tern-test"), test::makeServices(), output, counters};

  void send(wire::Bytes packet, const core::FiveTuple& tuple = kUdpTuple) {
    server.onClientPacket(tuple, packet, kNow);
  }
  wire::MessageView onlyResponse() {
    REQUIRE(output.sent.size() == 1);
    auto view = wire::MessageView::parse(output.sent[0].bytes);
    REQUIRE(view.has_value());
    return *view;
  }
  std::uint64_t responses(std::uint16_t code) const {
    return counters.responses[metrics::idx(metrics::RequestMethod::kBinding)]
                             [metrics::responseCodeIndex(code)].get();
  }
};

std::vector<std::uint8_t> bindingRequest(bool fingerprint, std::uint16_t extra_type = 0,
                                         MessageClass cls = MessageClass::kRequest,
                                         Method method = Method::kBinding) {
  std::vector<std::uint8_t> buf(256);
  wire::MessageBuilder b(buf, method, cls, kTid);
  if (extra_type != 0) b.addRaw(extra_type, std::vector<std::uint8_t>{0xAA, 0xBB});
  if (fingerprint) b.addFingerprint();
  buf.resize(b.finish()->size());
  return buf;
}

}  // namespace

TEST_CASE("Binding success carries XOR-MAPPED-ADDRESS of the source (RFC 8489 §14.2)") {
  Fixture f;
  f.send(bindingRequest(false));
  auto r = f.onlyResponse();
  CHECK(r.messageClass() == MessageClass::kSuccessResponse);
  CHECK(r.method() == static_cast<std::uint16_t>(Method::kBinding));
  CHECK(r.transactionId() == kTid);
  CHECK(r.get<wire::attr::XorMappedAddress>()->address == kUdpTuple.client);
  // Over UDP the source may be a spoofed victim: nothing optional goes back (no SOFTWARE).
  CHECK_FALSE(r.has(AttributeType::kSoftware));
  CHECK_FALSE(r.hasFingerprint());
  CHECK(f.output.sent[0].tuple == kUdpTuple);
  CHECK(f.responses(200) == 1);
}

TEST_CASE("Binding over TCP from IPv6 maps the connection's source") {
  Fixture f;
  const core::FiveTuple tcp{core::Transport::kTcp, *wire::SocketAddress::parse("[2001:db8::5]:5000"),
                            *wire::SocketAddress::parse("[2001:db8::1]:3478")};
  f.send(bindingRequest(true), tcp);
  auto r = f.onlyResponse();
  CHECK(r.get<wire::attr::XorMappedAddress>()->address == tcp.client);
  // A TCP client completed a handshake from its address: it gets SOFTWARE (RFC 8489 §14.14).
  CHECK(r.get<wire::attr::Software>()->value == "tern-test");
  CHECK(f.output.sent[0].tuple == tcp);
  CHECK(f.counters.packets_received[metrics::idx(metrics::ClientTransport::kTcp)]
                                   [metrics::idx(metrics::PacketKind::kStun)].get() == 1);
}

TEST_CASE("response carries FINGERPRINT when the request did (RFC 8489 §7.3)") {
  Fixture f;
  f.send(bindingRequest(true));
  auto r = f.onlyResponse();
  REQUIRE(r.hasFingerprint());
  CHECK(r.fingerprintMatches());
}

TEST_CASE("SOFTWARE can be left out") {
  test::RecordingOutput output;
  metrics::WorkerCounters counters;
  core::TurnServer server{withSoftware(""), test::makeServices(), output, counters};
  auto req = bindingRequest(false);
  server.onClientPacket(kUdpTuple, req, kNow);
  REQUIRE(output.sent.size() == 1);
  CHECK_FALSE(wire::MessageView::parse(output.sent[0].bytes)->has(AttributeType::kSoftware));
}

TEST_CASE("unknown comprehension-required attribute earns 420 with UNKNOWN-ATTRIBUTES (RFC 8489 §6.3.1)") {
  Fixture f;
  f.send(bindingRequest(true, 0x0077));
  auto r = f.onlyResponse();
  CHECK(r.messageClass() == MessageClass::kErrorResponse);
  CHECK(r.get<wire::attr::ErrorCode>()->code == 420);
  // Over UDP the reason phrase, text for diagnostics only (RFC 8489 §14.8), stays home.
  CHECK(r.get<wire::attr::ErrorCode>()->reason.empty());
  auto unknown = r.get<wire::attr::UnknownAttributes>();
  REQUIRE(unknown.has_value());
  REQUIRE(unknown->types.size() == 1);
  CHECK(unknown->types[0] == 0x0077);
  CHECK(r.fingerprintMatches());
  CHECK(f.responses(420) == 1);
}

TEST_CASE("an ICE connectivity check (RFC 5769 §2.1: PRIORITY, ICE-CONTROLLED) is answered, not refused") {
  Fixture f;
  const auto request = test::fromHex(test::vectors::kRfc5769Request);
  f.send(request);
  auto r = f.onlyResponse();
  CHECK(r.messageClass() == MessageClass::kSuccessResponse);
  CHECK(r.hasFingerprint());
}

TEST_CASE("unknown comprehension-optional attribute is ignored (RFC 8489 §6.3.1)") {
  Fixture f;
  f.send(bindingRequest(false, 0x8077));
  CHECK(f.onlyResponse().messageClass() == MessageClass::kSuccessResponse);
}

TEST_CASE("request with a broken attribute TLV gets 400, not silence") {
  Fixture f;
  auto req = bindingRequest(false, 0x8077);
  req[20 + 3] = 0x40;  // the attribute now claims 64 bytes
  f.send(req);
  auto r = f.onlyResponse();
  CHECK(r.messageClass() == MessageClass::kErrorResponse);
  CHECK(r.get<wire::attr::ErrorCode>()->code == 400);
  CHECK(r.transactionId() == kTid);
  CHECK(f.responses(400) == 1);
}

TEST_CASE("a request for an unimplemented method gets 400 (RFC 8489 §6.3.1)") {
  Fixture f;
  f.send(bindingRequest(false, 0, MessageClass::kRequest, static_cast<Method>(0x0FF)));
  auto r = f.onlyResponse();
  CHECK(r.get<wire::attr::ErrorCode>()->code == 400);
  CHECK(r.method() == 0x0FF);
}

TEST_CASE("a bad FINGERPRINT means the message is dropped (RFC 8489 §7.3)") {
  Fixture f;
  auto req = bindingRequest(true);
  req.back() ^= 0x01;
  f.send(req);
  CHECK(f.output.sent.empty());
  CHECK(f.counters.dropped[metrics::idx(metrics::DropReason::kBadFingerprint)].get() == 1);
}

TEST_CASE("a Binding indication is a keepalive and gets no answer (RFC 8489 §6.3.2)") {
  Fixture f;
  f.send(bindingRequest(false, 0, MessageClass::kIndication));
  CHECK(f.output.sent.empty());
  CHECK(f.counters.dropped[metrics::idx(metrics::DropReason::kUnexpectedClass)].get() == 0);
}

TEST_CASE("responses sent to the server are dropped and counted") {
  Fixture f;
  f.send(bindingRequest(false, 0, MessageClass::kSuccessResponse));
  f.send(bindingRequest(false, 0, MessageClass::kErrorResponse));
  CHECK(f.output.sent.empty());
  CHECK(f.counters.dropped[metrics::idx(metrics::DropReason::kUnexpectedClass)].get() == 2);
}

TEST_CASE("non-STUN input is dropped without an answer") {
  Fixture f;
  auto req = bindingRequest(false);
  SUBCASE("bad magic cookie") { req[4] ^= 0xFF; }
  SUBCASE("length not a multiple of 4") { req[3] = 2; }
  SUBCASE("truncated header") { req.resize(12); }
  SUBCASE("RTP-like first byte") { req[0] = 0x80; }
  SUBCASE("empty datagram") { req.clear(); }
  f.send(req);
  CHECK(f.output.sent.empty());
  CHECK(f.counters.dropped[metrics::idx(metrics::DropReason::kMalformed)].get() == 1);
}

TEST_CASE("ChannelData without an allocation is dropped and counted (RFC 8656 §12.5)") {
  Fixture f;
  const std::vector<std::uint8_t> cd = {0x40, 0x00, 0x00, 0x02, 0xAB, 0xCD};
  f.send(cd);
  CHECK(f.output.sent.empty());
  CHECK(f.counters.dropped[metrics::idx(metrics::DropReason::kNoAllocation)].get() == 1);
}

TEST_CASE("a send the I/O layer refuses is counted") {
  Fixture f;
  f.output.accept = false;
  f.send(bindingRequest(false));
  CHECK(f.counters.dropped[metrics::idx(metrics::DropReason::kSendFailed)].get() == 1);
}

TEST_CASE("every malformed truncation of a request is handled without a crash") {
  Fixture f;
  auto req = bindingRequest(true, 0x8022);
  for (std::size_t n = 0; n < req.size(); ++n) {
    f.send(wire::Bytes{req.data(), n});
  }
  // Only headers with a length matching what arrived can be answered; none of these do.
  for (const auto& s : f.output.sent) {
    auto r = wire::MessageView::parse(s.bytes);
    REQUIRE(r.has_value());
    CHECK(r->messageClass() == MessageClass::kErrorResponse);
  }
}
