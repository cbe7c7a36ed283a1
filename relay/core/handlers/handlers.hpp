// One handler per STUN/TURN method (RFC 8489, RFC 8656 §7-§12). Handlers see the server only
// through ServerContext; each fills exactly one response (or, for indications, none).
#pragma once

#include <string_view>
#include <vector>

#include "relay/core/five_tuple.hpp"
#include "relay/core/response_writer.hpp"
#include "relay/core/server_context.hpp"
#include "relay/core/server_options.hpp"
#include "relay/wire/message.hpp"

namespace tern::core {
namespace handlers {

struct RequestContext {
  const FiveTuple& tuple;
  const wire::MessageView& request;
  TimePoint now;
  // Set for authenticated requests (every TURN request; not Binding).
  std::string_view username;
  wire::Bytes key;
  std::int64_t now_unix = 0;  // wall clock, for a TURN REST username's expiry
  wire::AttributeType integrity = wire::AttributeType::kMessageIntegrity;
  // RFC 7635: the Unix second the request's ACCESS-TOKEN expires, when one authenticated it.
  std::optional<std::int64_t> token_expiry_unix;
};

// RFC 8489 §3: Binding reports the request's source as XOR-MAPPED-ADDRESS.
void binding(const RequestContext& ctx, ResponseWriter& response) noexcept;
// RFC 8656 §7.2.
void allocate(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;
// RFC 8656 §8.
void refresh(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;
// RFC 8656 §10.2.
void createPermission(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;
// RFC 8656 §12.2.
void channelBind(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;
// RFC 6062 §5.2: answered later, when the connection to the peer completes or fails.
void connect(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;
// RFC 6062 §5.4.
void connectionBind(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;
// RFC 8656 §11.2: a Send indication; never answered.
void sendIndication(ServerContext& server, const FiveTuple& tuple, const wire::MessageView& indication,
                    TimePoint now) noexcept;

// RFC 8016 §3.1: may this request ask for a MOBILITY-TICKET? Answers 405 and returns false
// when mobility is off or the client uses TCP/TLS.
bool admitMobility(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;
// A new random handle for the allocation's tickets: earlier tickets stop working. Every move
// renews it (a spent ticket cannot move the allocation again); ordinary refreshes do not, so
// the answer to a retransmission carries the same ticket as the first answer.
void renewMobilityHandle(Allocation& allocation) noexcept;
// Adds the MOBILITY-TICKET of `allocation` (if it has mobility) to a success response.
void addMobilityTicket(ServerContext& server, const Allocation& allocation, wire::MessageBuilder& b) noexcept;
// RFC 8016 §3.2: a Refresh from a 5-tuple without an allocation, carrying a MOBILITY-TICKET.
// Returns the allocation, moved to ctx.tuple, or null after answering an error or deferring
// the answer (a move across workers: the worker that ends up with the allocation answers).
Allocation* claimByTicket(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;

// The allocation of an authenticated request's 5-tuple, or null after answering 437 / 441.
Allocation* allocationFor(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;

}  // namespace handlers
}  // namespace tern::core
