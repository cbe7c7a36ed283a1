// libFuzzer target for the whole sans-I/O server (../shared/STYLE.md): the input is a series
// of datagrams from a handful of clients over UDP and TCP, with a fake clock that moves
// forward between them. Every answer must be a well-formed STUN response to a request that
// was sent, addressed to the client that sent it.
//
// Input format, repeated: [flags][length hi][length lo][length bytes of packet]
//   flags bits 0-1: client index (0-3), bit 2: TCP instead of UDP, bit 3: sign the request
//   (the harness adds USERNAME, REALM, a fresh NONCE and MESSAGE-INTEGRITY for a valid user,
//   so mutations reach the allocation state machine instead of stopping at a bad MAC),
//   bits 4-7: seconds to advance.
// The packet's last byte also steers the network around it: bit 0 sends peer data to the
// first relay, bit 1 makes RFC 6062 Connects succeed (else fail), bit 2 has a peer connect to
// the first relay, bit 3 closes the sender's TCP connection, bit 4 reports an ICMP error
// about that peer to the first relay (RFC 8656 §11.5), its type and code the packet's first
// two bytes, ICMPv6 with bit 5.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "auth/message_integrity.hpp"
#include "fuzz_check.hpp"
#include "support/core_services.hpp"
#include "metrics/worker_counters.hpp"
#include "relay/core/turn_server.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "relay/wire/channel_data.hpp"
#include "relay/wire/message.hpp"
#include "support/recording_output.hpp"

namespace {

tern::core::ServerOptions withSoftware(const char* software) {
  tern::core::ServerOptions o;
  o.software = software;
  // Low enough that the first few relayed packets empty the buckets, so both the relaying
  // and the dropping paths run (8 KB and 16 KB of burst).
  o.allocation_bandwidth = tern::core::BandwidthLimit(64'000);
  o.user_bandwidth = tern::core::BandwidthLimit(128'000);
  // A server per input: a small source table keeps that cheap, and a small burst lets an
  // input reach the drops.
  o.unauthenticated_sources = 64;
  o.unauthenticated = {10, 20};
  return o;
}

using namespace tern;

class CheckingOutput : public test::RecordingOutput {
 public:
  bool sendToClient(const core::FiveTuple& tuple, std::span<const wire::Bytes> parts) noexcept override {
    std::vector<std::uint8_t> all;
    for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
    const wire::Bytes bytes = all;
    // Data indications and ChannelData go to an allocation's client, which may not be the
    // sender of this packet; only responses are checked against the request.
    if (wire::classify(bytes) != wire::PacketKind::kStun) return true;
    auto view = wire::MessageView::parse(bytes);
    TERN_FUZZ_CHECK(view.has_value());
    if (view->messageClass() == wire::MessageClass::kIndication) {
      // RFC 8656 §11.3, §11.5: a Data indication names the peer and carries DATA or ICMP.
      if (view->method() == static_cast<std::uint16_t>(wire::Method::kData)) {
        TERN_FUZZ_CHECK(view->get<wire::attr::XorPeerAddress>().has_value());
        TERN_FUZZ_CHECK(view->has(wire::AttributeType::kData) !=
                        view->has(wire::AttributeType::kIcmp));
      }
      return true;
    }
    // A Connect may be answered later (RFC 6062 §5.2), when its connection completes or
    // fails, so its response need not match the packet being processed.
    if (view->method() == static_cast<std::uint16_t>(wire::Method::kConnect)) {
      TERN_FUZZ_CHECK(view->messageClass() == wire::MessageClass::kSuccessResponse ||
                      view->messageClass() == wire::MessageClass::kErrorResponse);
      if (view->hasFingerprint()) TERN_FUZZ_CHECK(view->fingerprintMatches());
      return true;
    }
    TERN_FUZZ_CHECK(tuple == expected_tuple);
    auto response = wire::MessageView::parse(bytes);
    TERN_FUZZ_CHECK(response.has_value());
    const auto cls = response->messageClass();
    TERN_FUZZ_CHECK(cls == wire::MessageClass::kSuccessResponse ||
                    cls == wire::MessageClass::kErrorResponse);
    TERN_FUZZ_CHECK(response->transactionId() == expected_transaction);
    if (response->hasFingerprint()) TERN_FUZZ_CHECK(response->fingerprintMatches());
    ++responses;
    return true;
  }
  core::FiveTuple expected_tuple;
  wire::TransactionId expected_transaction{};
  int responses = 0;
};

core::FiveTuple clientTuple(std::uint8_t flags) {
  const bool tcp = (flags & 0x04) != 0;
  const auto client = static_cast<std::uint8_t>(flags & 0x03);
  return {tcp ? core::Transport::kTcp : core::Transport::kUdp,
          {wire::IpAddress::v4({192, 0, 2, static_cast<std::uint8_t>(10 + client)}),
           static_cast<std::uint16_t>(40000 + client)},
          {wire::IpAddress::v4({198, 51, 100, 1}), 3478}};
}

// Rebuilds a parsed request with valid long-term credentials (see the input format).
std::vector<std::uint8_t> signedCopy(wire::Bytes packet, const core::ServerServices& services,
                                     const core::FiveTuple& tuple, core::TimePoint now) {
  auto view = wire::MessageView::parse(packet);
  if (!view || view->messageClass() != wire::MessageClass::kRequest) return {packet.begin(), packet.end()};
  static const auto key = auth::longTermKey(auth::PasswordAlgorithmId::kMd5, test::kTestUser,
                                            test::kTestRealm, test::kTestPassword);
  std::vector<std::uint8_t> out(packet.size() + 256);
  wire::MessageBuilder b(out, static_cast<wire::Method>(view->method()), wire::MessageClass::kRequest,
                         view->transactionId());
  view->forEachAttribute([&](const wire::RawAttribute& a) {
    using T = wire::AttributeType;
    const auto type = static_cast<T>(a.type);
    if (type == T::kUsername || type == T::kRealm || type == T::kNonce) return;
    b.addRaw(a.type, a.value);
  });
  const std::string nonce = services.authenticator->nonces().issue(tuple.client, now);
  b.add(wire::attr::Username{test::kTestUser})
      .add(wire::attr::Realm{test::kTestRealm})
      .add(wire::attr::Nonce{nonce});
  auth::addIntegrity(b, wire::AttributeType::kMessageIntegrity, key);
  auto done = b.finish();
  if (!done) return {packet.begin(), packet.end()};
  out.resize(done->size());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  CheckingOutput output;
  metrics::WorkerCounters counters;
  // Built once: key derivation and policy tables are not what is being fuzzed.
  static const core::ServerServices services = [] {
    test::ServicesOptions o;
    o.allow_peers = {"0.0.0.0/0", "::/0"};
    return test::makeServices(o);
  }();
  core::TurnServer server(withSoftware("fuzz"), services, output, counters);
  core::TimePoint now{std::chrono::hours(1)};
  std::size_t pos = 0;
  std::size_t settled = 0;  // Connects already answered through onPeerConnected
  while (size - pos >= 3) {
    const std::uint8_t flags = data[pos];
    const std::size_t length = std::min<std::size_t>((std::size_t{data[pos + 1]} << 8) | data[pos + 2],
                                                     size - pos - 3);
    const wire::Bytes packet{data + pos + 3, length};
    pos += 3 + length;
    now += std::chrono::seconds(flags >> 4);

    // The server answers only requests, and only once each.
    output.expected_tuple = clientTuple(flags);
    const int before = output.responses;
    auto header = wire::parseHeader(packet);
    if (header) output.expected_transaction = header->transaction_id;
    // A heap copy of exactly the packet, so AddressSanitizer catches any read past its end.
    std::vector<std::uint8_t> copy = (flags & 0x08) != 0
                                         ? signedCopy(packet, services, output.expected_tuple, now)
                                         : std::vector<std::uint8_t>(packet.begin(), packet.end());
    server.onClientPacket(output.expected_tuple, copy, now);
    // Peer traffic to every open relay, from a peer the policy allows, so relaying is covered.
    if (!output.open_relays.empty() && length > 0 && (data[pos - 1] & 1) != 0) {
      const auto relay = output.open_relays.begin()->first;
      server.onPeerPacket(relay, {wire::IpAddress::v4({8, 8, 8, 8}), 3478}, copy, now);
    }
    const std::uint8_t network = length > 0 ? data[pos - 1] : 0;
    if ((network & 0x10) != 0 && length >= 2 && !output.open_relays.empty()) {
      const wire::IpAddress ip = (network & 0x20) != 0 ? *wire::IpAddress::parse("2001:4860::8888")
                                                       : wire::IpAddress::v4({8, 8, 8, 8});
      const wire::SocketAddress peer{ip, 3478};
      server.onPeerIcmp(output.open_relays.begin()->first, peer, packet[0], packet[1], 1280, now);
    }
    const int after_packet = output.responses;
    // RFC 6062: settle every Connect the packet started; maybe a peer connects; maybe the
    // client's connection closes.
    for (std::size_t i = settled; i < output.connects.size(); ++i) {
      server.onPeerConnected(output.connects[i].id, (network & 2) != 0, now);
    }
    settled = output.connects.size();
    if ((network & 4) != 0 && !output.open_relays.empty()) {
      if (auto id = server.onPeerConnection(output.open_relays.begin()->first,
                                            {wire::IpAddress::v4({8, 8, 4, 4}), 443}, now)) {
        // Bytes piped on it (RFC 6062): the pause asked for is never negative, and asking
        // again at the same moment gives the same answer.
        const auto direction = (network & 0x40) != 0 ? metrics::Direction::kPeerToClient : metrics::Direction::kClientToPeer;
        const auto pause = server.onConnectionRelayed(*id, direction, length, now);
        TERN_FUZZ_CHECK(pause.count() >= 0);
        TERN_FUZZ_CHECK(server.connectionWait(*id, direction, now) == pause);
        if ((network & 8) != 0) server.onConnectionClosed(*id);
      }
    }
    if ((network & 8) != 0 && output.expected_tuple.transport == core::Transport::kTcp) {
      server.onClientClosed(output.expected_tuple, now);
    }
    server.onTick(now);
    TERN_FUZZ_CHECK(after_packet - before <= 1);
    if (output.responses > before) {
      TERN_FUZZ_CHECK(header.has_value() && header->isRequest());
    }
  }
  return 0;
}
