// The CreatePermission method (RFC 8656 §10.2): installs or refreshes permissions for one or
// more peer IP addresses, all or none.
#include "relay/core/handlers/handlers.hpp"

#include <algorithm>

#include "relay/core/peer_policy.hpp"
#include "relay/wire/attributes.hpp"

namespace tern::core::handlers {

namespace ec = wire::error_code;

void createPermission(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept {
  Allocation* allocation = allocationFor(server, ctx, response);
  if (allocation == nullptr) return;

  // RFC 8656 §10.2: one or more XOR-PEER-ADDRESS; every one must be acceptable, or none is
  // installed. The list lives on the stack: at most as many as fit in one message.
  wire::FixedList<IpAddress, 64> peers;
  std::uint16_t code = 0;
  std::string_view reason;
  const auto peer_type = static_cast<std::uint16_t>(wire::AttributeType::kXorPeerAddress);
  ctx.request.forEachAttribute([&](const wire::RawAttribute& raw) {
    if (raw.type != peer_type || code != 0) return;
    auto peer = wire::attr::XorPeerAddress::decode(raw.value, ctx.request.header());
    if (!peer) {
      code = ec::kBadRequest;
      reason = "Malformed XOR-PEER-ADDRESS";
      return;
    }
    const IpAddress ip = PeerPolicy::normalize(peer->address.ip);
    // RFC 8656 §10.2: a peer of a family the allocation has no relayed address of is 443.
    if (allocation->relayFor(ip) == nullptr) {
      code = ec::kPeerAddressFamilyMismatch;
      reason = "Peer Address Family Mismatch";
      return;
    }
    const PeerVerdict verdict = server.services.peer_policy->checkPeerIp(ip);
    if (verdict != PeerVerdict::kAllowed) {
      code = ec::kForbidden;
      reason = describe(verdict);
      return;
    }
    // One permission per IP (RFC 8656 §9): a repeated address, in any port or form, takes
    // one place, or the cap check below would count it once per attribute.
    if (std::find(peers.begin(), peers.end(), ip) != peers.end()) return;
    if (!peers.push(ip)) {
      code = ec::kBadRequest;
      reason = "Too many XOR-PEER-ADDRESS attributes";
    }
  });
  if (code == 0 && peers.empty()) {
    code = ec::kBadRequest;
    reason = "XOR-PEER-ADDRESS is missing";
  }
  if (code != 0) {
    response.error(code, reason);
    return;
  }
  // All or none: check the cap before installing anything.
  std::size_t fresh = 0;
  for (const auto& ip : peers) fresh += allocation->hasPermission(ip, ctx.now) ? 0u : 1u;
  if (allocation->activePermissions(ctx.now) + fresh > server.options.max_permissions_per_allocation) {
    server.counters.rejected(metrics::Quota::kPermissions);
    response.error(ec::kInsufficientCapacity, "Insufficient Capacity: permission limit of this allocation");
    return;
  }
  const TimePoint expires = ctx.now + server.options.permission_lifetime;
  for (const auto& ip : peers) {
    // The cap was checked above: false here is out of memory (relay/wire/checks.hpp).
    if (!allocation->installPermission(ip, ctx.now, expires, server.options.max_permissions_per_allocation)) {
      response.error(ec::kInsufficientCapacity, "Insufficient Capacity: out of memory");
      return;
    }
  }
  response.success();
}

}  // namespace tern::core::handlers
