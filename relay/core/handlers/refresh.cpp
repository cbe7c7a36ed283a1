// The Refresh method (RFC 8656 §8): extends or (LIFETIME 0) deletes an allocation.
#include "relay/core/handlers/handlers.hpp"
#include "relay/core/handlers/lifetime.hpp"
#include "relay/wire/attributes.hpp"

namespace tern::core::handlers {

void refresh(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept {
  const auto& request = ctx.request;
  // RFC 8016 §3.2: a Refresh from a new 5-tuple with a MOBILITY-TICKET claims the allocation
  // the ticket names.
  const bool ticket = request.has(wire::AttributeType::kMobilityTicket);
  Allocation* allocation = ticket && server.allocations.find(ctx.tuple) == nullptr
                               ? claimByTicket(server, ctx, response)
                               : allocationFor(server, ctx, response);
  if (allocation == nullptr) return;
  if (request.has(wire::AttributeType::kLifetime) && !request.get<wire::attr::Lifetime>()) {
    response.error(wire::error_code::kBadRequest, "Malformed LIFETIME");
    return;
  }
  // RFC 8656 §8.2: a REQUESTED-ADDRESS-FAMILY the allocation has no relayed address of is
  // 443.
  std::optional<wire::AddressFamily> only_family;
  if (request.has(wire::AttributeType::kRequestedAddressFamily)) {
    auto family = request.get<wire::attr::RequestedAddressFamily>();
    if (!family) {
      response.error(wire::error_code::kBadRequest, "Malformed REQUESTED-ADDRESS-FAMILY");
      return;
    }
    const RelayEndpoint* match = allocation->relayOf(static_cast<wire::AddressFamily>(family->family));
    if (match == nullptr) {
      response.error(wire::error_code::kPeerAddressFamilyMismatch,
                     "Peer Address Family Mismatch: the allocation has no relayed address of that family");
      return;
    }
    only_family = match->relayed.ip.family();
  }
  const auto requested = request.get<wire::attr::Lifetime>();
  // RFC 8656 §8.2: LIFETIME 0 with REQUESTED-ADDRESS-FAMILY on a dual allocation deletes the
  // relayed address of that family only; the other lives on with its permissions and channels.
  if (requested && requested->seconds == 0 && only_family && allocation->relays().size() > 1) {
    server.output.relays.closeRelay(allocation->relayOf(*only_family)->id);
    server.forgetRename(allocation->relayOf(*only_family)->id);
    server.allocations.removeRelay(*allocation, *only_family);
    response.success().add(wire::attr::Lifetime{0});
    return;
  }
  // RFC 8656 §8.2: a requested lifetime of zero deletes the allocation at once.
  if (requested && requested->seconds == 0) {
    server.endAllocation(*allocation, metrics::AllocationEnd::kDeleted, ctx.now);
    response.success().add(wire::attr::Lifetime{0});
    return;
  }
  auto lifetime = credentialBound(
      server.options, ctx, grantedLifetime(server.options, requested ? std::optional(requested->seconds) : std::nullopt));
  if (ctx.token_expiry_unix) {
    // RFC 7635 §9.2: a Refresh with a new token moves the allocation onto it and its mac_key.
    allocation->setToken(ctx.token_expiry_unix, std::vector<std::uint8_t>(ctx.key.begin(), ctx.key.end()),
                         ctx.username);
  } else if (const auto& expiry = allocation->tokenExpiry()) {
    // Without one, the allocation still ends with the token that made it.
    lifetime = std::clamp(std::chrono::seconds(*expiry - ctx.now_unix), std::chrono::seconds(1), lifetime);
  }
  allocation->setExpiry(ctx.now + lifetime);
  server.allocations.scheduleExpiry(*allocation);
  auto& b = response.success().add(wire::attr::Lifetime{static_cast<std::uint32_t>(lifetime.count())});
  // RFC 8016 §3.2: the success response carries the ticket for the next move.
  if (ticket) addMobilityTicket(server, *allocation, b);
}

}  // namespace tern::core::handlers
