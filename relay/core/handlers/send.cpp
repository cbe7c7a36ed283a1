// Send indications (RFC 8656 §11.2): relayed to the peer when allowed, otherwise dropped
// silently and counted; indications are never answered.
#include "relay/core/handlers/handlers.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/wire/attributes.hpp"

namespace tern::core::handlers {

void sendIndication(ServerContext& server, const FiveTuple& tuple, const wire::MessageView& indication,
                    TimePoint now) noexcept {
  Allocation* allocation = server.allocations.find(tuple);
  // A TCP allocation (RFC 6062) has no datagram socket to send from.
  if (allocation == nullptr || allocation->expired(now) || allocation->tcp()) {
    server.counters.drop(metrics::DropReason::kNoAllocation);
    return;
  }
  const auto peer_attr = indication.get<wire::attr::XorPeerAddress>();
  const auto data = indication.get<wire::attr::Data>();
  if (!peer_attr || !data) {
    // RFC 8656 §11.2: both attributes are required; the indication is discarded.
    server.counters.drop(metrics::DropReason::kMalformed);
    return;
  }
  const SocketAddress peer{PeerPolicy::normalize(peer_attr->address.ip), peer_attr->address.port};
  if (!allocation->hasPermission(peer.ip, now)) {
    server.counters.drop(metrics::DropReason::kNoPermission);
    return;
  }
  // The permission was checked per IP; the relay's own addresses also need a relay port.
  if (server.services.peer_policy->checkPeer(peer) != PeerVerdict::kAllowed) {
    server.counters.drop(metrics::DropReason::kPeerDenied);
    return;
  }
  if (!server.admitBandwidth(*allocation, metrics::Direction::kClientToPeer, data->value.size(), now)) return;
  // The permission implies a relayed address of the peer's family (RFC 8656 §10.2).
  const RelayEndpoint* relay = allocation->relayFor(peer.ip);
  if (relay == nullptr || !server.output.relays.sendToPeer(relay->id, peer, data->value)) {
    server.counters.drop(metrics::DropReason::kSendFailed);
    return;
  }
  server.countRelayed(*allocation, metrics::Direction::kClientToPeer, data->value.size());
}

}  // namespace tern::core::handlers
