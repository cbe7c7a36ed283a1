// The steps of an Allocate (RFC 8656 §7.2), which handlers::allocate runs in this order after
// the 5-tuple check (437 or a retransmission's answer) and draining (300): parse, quota,
// relay, insert. Each step either moves on or gives the error to answer, so each is tested
// on its own (tests/unit/core/allocate_steps_test.cpp).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "relay/core/handlers/handlers.hpp"
#include "relay/wire/expected.hpp"

namespace tern::core::handlers {

// What an Allocate request asks for, once parsed.
struct AllocateRequest {
  // REQUESTED-TRANSPORT (tcp: RFC 6062), REQUESTED-ADDRESS-FAMILY (family), EVEN-PORT and its
  // R bit, RESERVATION-TOKEN and DONT-FRAGMENT: the first relay socket to open.
  RelayRequest relay;
  // ADDITIONAL-ADDRESS-FAMILY (IPv6, the only value allowed): a dual allocation, with an IPv6
  // relayed address next to the IPv4 one.
  bool additional_ipv6 = false;
  std::optional<std::uint32_t> lifetime;  // LIFETIME, when the client asked for one
  bool mobility = false;                  // RFC 8016 §3.1: an (empty) MOBILITY-TICKET
};

// An error response: the code and its reason phrase (a string literal).
struct AllocateError {
  std::uint16_t code = 0;
  std::string_view reason;
};

// Parse: RFC 8656 §7.2 steps 3 to 9, on the request and the client's transport alone (steps 1
// and 2, authentication and the 5-tuple, need the server and come before). Pure: no state
// read or changed, nothing counted.
Expected<AllocateRequest, AllocateError> parseAllocate(const wire::MessageView& request,
                                                       Transport client_transport) noexcept;

// Quota (§7.2 step 10): one allocation of the user's quota (486) and of the server's (508),
// taken before any resource is; a refusal is counted.
Expected<AllocationQuota::Admission, AllocateError> takeQuota(ServerContext& server,
                                                              std::string_view username) noexcept;

// Relay: opens the first relay socket. On failure the quota taken for `username` is returned
// and the error is relayError's.
Expected<OpenedRelay, AllocateError> openFirstRelay(ServerContext& server,
                                                    std::string_view username,
                                                    const RelayRequest& request) noexcept;
// The answer to a relay socket the I/O layer could not open: 440 when the relay has no address
// of the family (§7.2 step 7), 508 otherwise (steps 5 and 8: token unknown, no port free).
AllocateError relayError(RelayError error, bool reserve_next) noexcept;

// Insert: the allocation on ctx.tuple, with its relayed address, credentials, user bandwidth
// share and `lifetime`; opens the IPv6 relay of a dual allocation (whose failure is reported
// in the response, not fatal), counts and reports it.
// Null, with the relay socket closed and the quota returned, when memory runs out (508).
Allocation* insertAllocation(ServerContext& server, const RequestContext& ctx,
                             const AllocateRequest& params, const OpenedRelay& relay,
                             UserBandwidth* user_bandwidth, std::chrono::seconds lifetime) noexcept;

}  // namespace tern::core::handlers
