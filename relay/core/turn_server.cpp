// Dispatch of client packets (RFC 8489 §6.3, RFC 8656 §12.5): demux, validate, route requests
// to their method handlers, answer errors the RFCs ask for, drop and count the rest.
#include "relay/core/turn_server.hpp"

#include "relay/core/handlers/handlers.hpp"
#include "relay/wire/channel_data.hpp"

namespace tern::core {

namespace {

metrics::ClientTransport counterTransport(Transport t) noexcept {
  switch (t) {
    case Transport::kUdp: return metrics::ClientTransport::kUdp;
    case Transport::kTcp: return metrics::ClientTransport::kTcp;
    case Transport::kTls: return metrics::ClientTransport::kTls;
    case Transport::kDtls: return metrics::ClientTransport::kDtls;
  }
  return metrics::ClientTransport::kUdp;
}

}  // namespace

TurnServer::TurnServer(ServerOptions options, ServerOutput& output,
                       metrics::WorkerCounters& counters)
    : options_(std::move(options)), output_(output), counters_(counters) {}

void TurnServer::onClientPacket(const FiveTuple& tuple, wire::Bytes packet, TimePoint now) noexcept {
  const auto transport = counterTransport(tuple.transport);
  switch (wire::classify(packet)) {
    case wire::PacketKind::kStun:
      counters_.received(transport, metrics::PacketKind::kStun);
      onStun(tuple, packet, now);
      return;
    case wire::PacketKind::kChannelData:
      // No allocation can exist yet for this flow, so there is no channel to relay on.
      counters_.received(transport, metrics::PacketKind::kChannelData);
      counters_.drop(metrics::DropReason::kNoAllocation);
      return;
    default:
      counters_.received(transport, metrics::PacketKind::kOther);
      counters_.drop(metrics::DropReason::kMalformed);
      return;
  }
}

ResponseWriter TurnServer::responseTo(const wire::Header& request, bool fingerprint) noexcept {
  return ResponseWriter(response_buffer_, request, fingerprint, options_.software);
}

void TurnServer::onStun(const FiveTuple& tuple, wire::Bytes packet, TimePoint now) noexcept {
  // RFC 8489 §6.3: a message whose header is not STUN is silently discarded.
  auto header = wire::parseHeader(packet);
  if (!header) {
    counters_.drop(metrics::DropReason::kMalformed);
    return;
  }
  auto message = wire::MessageView::parse(packet);
  if (!message) {
    // The header is sound but the attributes are not: a request still has a transaction id
    // to answer, so it gets 400 rather than silence and a client retransmitting for 39.5 s.
    if (header->isRequest()) {
      auto response = responseTo(*header, false);
      response.error(wire::error_code::kBadRequest, wire::describe(message.error()));
      send(tuple, response, header->method());
    } else {
      counters_.drop(metrics::DropReason::kMalformed);
    }
    return;
  }
  // RFC 8489 §7.3: a FINGERPRINT that does not match means the message is not STUN.
  if (message->hasFingerprint() && !message->fingerprintMatches()) {
    counters_.drop(metrics::DropReason::kBadFingerprint);
    return;
  }
  switch (message->messageClass()) {
    case wire::MessageClass::kRequest: onRequest(tuple, *message, now); return;
    case wire::MessageClass::kIndication:
      // RFC 8489 §6.3.2: a Binding indication is a keepalive and needs no answer.
      if (message->method() != static_cast<std::uint16_t>(wire::Method::kBinding)) {
        counters_.drop(metrics::DropReason::kUnexpectedClass);
      }
      return;
    default:
      // A server sends no requests, so responses addressed to it are discarded.
      counters_.drop(metrics::DropReason::kUnexpectedClass);
      return;
  }
}

void TurnServer::onRequest(const FiveTuple& tuple, const wire::MessageView& request,
                           TimePoint now) noexcept {
  auto response = responseTo(request.header(), request.hasFingerprint());
  // RFC 8489 §6.3.1: unknown comprehension-required attributes earn 420 listing them.
  if (auto unknown = request.unknownComprehensionRequired(); !unknown.empty()) {
    response.error(wire::error_code::kUnknownAttribute)
        .add(wire::attr::UnknownAttributes{unknown});
    send(tuple, response, request.method());
    return;
  }
  const handlers::RequestContext ctx{tuple, request, now};
  switch (static_cast<wire::Method>(request.method())) {
    case wire::Method::kBinding: handlers::binding(ctx, response); break;
    default:
      // RFC 8489 §6.3.1: a request for a method the server does not implement is an error.
      response.error(wire::error_code::kBadRequest, "Unsupported method");
      break;
  }
  send(tuple, response, request.method());
}

void TurnServer::send(const FiveTuple& tuple, ResponseWriter& response,
                      std::uint16_t method) noexcept {
  auto bytes = response.finish();
  if (!bytes) {
    // Only a bug can overflow the response buffer; count it rather than crash.
    counters_.drop(metrics::DropReason::kSendFailed);
    return;
  }
  counters_.responded(method, response.code());
  if (!output_.sendToClient(tuple, *bytes)) counters_.drop(metrics::DropReason::kSendFailed);
}

}  // namespace tern::core
