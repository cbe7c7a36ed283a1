// The Binding method (RFC 8489 §3, §6.3.1): tells a client its server-reflexive address.
#include "relay/core/handlers/handlers.hpp"

namespace tern::core::handlers {

void binding(const RequestContext& ctx, ResponseWriter& response) noexcept {
  // RFC 8489 §14.2: XOR-MAPPED-ADDRESS carries the source transport address of the request
  // as the server saw it, i.e. after any NAT on the way.
  response.success().add(wire::attr::XorMappedAddress{ctx.tuple.client});
}

}  // namespace tern::core::handlers
