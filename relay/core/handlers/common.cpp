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
  // RFC 8656 §5: later requests must use the credentials that created the allocation.
  if (allocation->username() != ctx.username) {
    response.error(wire::error_code::kWrongCredentials, "Wrong Credentials: not the allocation's user");
    return nullptr;
  }
  return allocation;
}

}  // namespace tern::core::handlers
