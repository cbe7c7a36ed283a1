// The ChannelBind method (RFC 8656 §12.2): binds a channel number to a peer transport address
// (and installs or refreshes the permission for the peer's IP).
#include "relay/core/handlers/handlers.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/channel_data.hpp"

namespace tern::core::handlers {

namespace ec = wire::error_code;

void channelBind(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept {
  Allocation* allocation = allocationFor(server, ctx, response);
  if (allocation == nullptr) return;
  // RFC 6062 §4: a TCP allocation's data flows over its own connections, never in channels.
  if (allocation->tcp()) {
    response.error(ec::kBadRequest, "ChannelBind on a TCP allocation (RFC 6062)");
    return;
  }
  const auto& request = ctx.request;

  const auto channel = request.get<wire::attr::ChannelNumber>();
  if (!channel) {
    response.error(ec::kBadRequest, "CHANNEL-NUMBER is missing or malformed");
    return;
  }
  // RFC 8656 §12.2: "The channel number is in the range 0x4000 through 0x4FFF (inclusive)";
  // RFC 5766 clients use up to 0x7FFF, which tern also accepts (see wire::kMaxChannel).
  if (!wire::isValidChannel(channel->number)) {
    response.error(ec::kBadRequest, "CHANNEL-NUMBER is outside 0x4000-0x7FFF");
    return;
  }
  const auto peer_attr = request.get<wire::attr::XorPeerAddress>();
  if (!peer_attr) {
    response.error(ec::kBadRequest, "XOR-PEER-ADDRESS is missing or malformed");
    return;
  }
  const SocketAddress peer{PeerPolicy::normalize(peer_attr->address.ip), peer_attr->address.port};
  if (allocation->relayFor(peer.ip) == nullptr) {
    response.error(ec::kPeerAddressFamilyMismatch);
    return;
  }
  if (const PeerVerdict verdict = server.services.peer_policy->checkPeer(peer);
      verdict != PeerVerdict::kAllowed) {
    response.error(ec::kForbidden, describe(verdict));
    return;
  }
  // RFC 8656 §12.2: "The channel number is not currently bound to a different transport
  // address (same transport address is OK)" and "The transport address is not currently
  // bound to a different channel number."
  if (const auto* bound = allocation->channelByNumber(channel->number, ctx.now);
      bound != nullptr && bound->peer != peer) {
    response.error(ec::kBadRequest, "Channel is bound to another peer");
    return;
  }
  if (const auto* bound = allocation->channelByPeer(peer, ctx.now);
      bound != nullptr && bound->number != channel->number) {
    response.error(ec::kBadRequest, "Peer is bound to another channel");
    return;
  }
  const bool new_permission = !allocation->hasPermission(peer.ip, ctx.now);
  if (new_permission &&
      allocation->activePermissions(ctx.now) >= server.options.max_permissions_per_allocation) {
    server.counters.rejected(metrics::Quota::kPermissions);
    response.error(ec::kInsufficientCapacity, "Insufficient Capacity: permission limit of this allocation");
    return;
  }
  if (!allocation->bindChannel(channel->number, peer, ctx.now, ctx.now + server.options.channel_lifetime,
                               server.options.max_channels_per_allocation,
                               server.services.peer_policy->isOwnAddress(peer.ip))) {
    server.counters.rejected(metrics::Quota::kChannels);
    response.error(ec::kInsufficientCapacity, "Insufficient Capacity: channel limit of this allocation");
    return;
  }
  // RFC 8656 §12.2: binding a channel also installs or refreshes the peer's permission.
  // The cap was checked above: false here is out of memory (relay/wire/checks.hpp).
  if (!allocation->installPermission(peer.ip, ctx.now, ctx.now + server.options.permission_lifetime,
                                     server.options.max_permissions_per_allocation)) {
    response.error(ec::kInsufficientCapacity, "Insufficient Capacity: out of memory");
    return;
  }
  response.success();
}

}  // namespace tern::core::handlers
