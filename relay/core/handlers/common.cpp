// What every request on an existing allocation checks first (RFC 8656 §5, §8-§12).
#include "relay/core/handlers/handlers.hpp"

namespace tern::core::handlers {

Allocation* allocationFor(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept {
  Allocation* allocation = server.allocations.find(ctx.tuple);
  if (allocation == nullptr || allocation->expired(ctx.now)) {
    // RFC 8656 §8.2 and siblings: no allocation on this 5-tuple is 437.
    response.error(wire::error_code::kAllocationMismatch, "Allocation Mismatch: no allocation on this 5-tuple");
    return nullptr;
  }
  // RFC 8656 §5: later requests must use the credentials that created the allocation. For an
  // allocation an ACCESS-TOKEN made (RFC 7635), those are any valid token (a bearer
  // credential; the authorization server may seal the next one under another kid) or, without
  // one, the current token's kid and mac_key.
  const bool same_credentials = allocation->tokenExpiry()
                                    ? ctx.token_expiry_unix.has_value() || allocation->tokenKid() == ctx.username
                                    : allocation->username() == ctx.username && !ctx.token_expiry_unix;
  if (!same_credentials) {
    response.error(wire::error_code::kWrongCredentials, "Wrong Credentials: not the allocation's user");
    return nullptr;
  }
  return allocation;
}

}  // namespace tern::core::handlers
