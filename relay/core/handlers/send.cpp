// Send indications (RFC 8656 §11.2): relayed to the peer when allowed, otherwise dropped
// silently and counted; indications are never answered.
#include "relay/core/handlers/handlers.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/wire/attributes.hpp"

namespace tern::core::handlers {

void sendIndication(ServerContext& server, const FiveTuple& tuple, const wire::MessageView& indication,
                    TimePoint now) noexcept {
  Allocation* allocation = server.liveAllocation(tuple, now);
  if (allocation == nullptr) return;
  // A TCP allocation (RFC 6062) has no datagram socket to send from.
  if (allocation->tcp()) {
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
  // A Send may name any peer: the peer policy is checked on every one.
  const SocketAddress peer{PeerPolicy::normalize(peer_attr->address.ip), peer_attr->address.port};
  (void)server.relayToPeer(*allocation, peer, data->value, true, now);
}

}  // namespace tern::core::handlers
