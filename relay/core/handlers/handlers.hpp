// One handler per STUN/TURN method; each fills a response from a validated request.
#pragma once

#include "relay/core/five_tuple.hpp"
#include "relay/core/response_writer.hpp"
#include "relay/wire/message.hpp"

namespace tern::core::handlers {

struct RequestContext {
  const FiveTuple& tuple;
  const wire::MessageView& request;
  TimePoint now;
};

// RFC 8489 §3 and §6.3.1: Binding reports the request's source as XOR-MAPPED-ADDRESS.
void binding(const RequestContext& ctx, ResponseWriter& response) noexcept;

}  // namespace tern::core::handlers
