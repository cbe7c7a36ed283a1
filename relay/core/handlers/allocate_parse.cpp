// The parse step of Allocate: RFC 8656 §7.2 "Receiving an Allocate Request", steps 3 to 9, in
// the order the RFC lists them, with RFC 6062 §5.1 (TCP allocations) at step 3.
#include "relay/core/handlers/allocate.hpp"
#include "relay/wire/attributes.hpp"

namespace tern::core::handlers {

namespace {

using wire::AttributeType;
namespace ec = wire::error_code;
// A step's verdict: nothing to move on, else the error to answer.
using Step = std::optional<AllocateError>;

constexpr AllocateError badRequest(std::string_view reason) noexcept {
  return {ec::kBadRequest, reason};
}

// RFC 8656 §7.2's ADDITIONAL-ADDRESS-FAMILY, under its RFC number or its draft one.
bool hasAdditionalFamily(const wire::MessageView& request) noexcept {
  return request.has(AttributeType::kAdditionalAddressFamily) ||
         request.has(AttributeType::kAdditionalAddressFamilyDraft);
}

std::optional<std::uint8_t> additionalFamily(const wire::MessageView& request) noexcept {
  if (request.has(AttributeType::kAdditionalAddressFamily)) {
    auto f = request.get<wire::attr::AdditionalAddressFamily>();
    return f ? std::optional(f->family) : std::nullopt;
  }
  auto f = request.get<wire::attr::AdditionalAddressFamilyDraft>();
  return f ? std::optional(f->family) : std::nullopt;
}

// Step 3: REQUESTED-TRANSPORT is mandatory (400), UDP or, with RFC 6062, TCP (else 442).
// RFC 6062 §5.1: a TCP allocation is made over TCP or TLS and has no use for the datagram
// attributes (400).
Step step3Transport(const wire::MessageView& request, Transport client,
                    AllocateRequest& out) noexcept {
  if (!request.has(AttributeType::kRequestedTransport))
    return badRequest("REQUESTED-TRANSPORT is missing");
  const auto transport = request.get<wire::attr::RequestedTransport>();
  if (!transport) return badRequest("Malformed REQUESTED-TRANSPORT");
  out.relay.tcp = transport->protocol == wire::attr::RequestedTransport::kTcp;
  if (transport->protocol != wire::attr::RequestedTransport::kUdp && !out.relay.tcp) {
    return AllocateError{ec::kUnsupportedTransportProtocol,
                         "Unsupported Transport Protocol: only UDP and TCP relaying"};
  }
  if (!out.relay.tcp) return std::nullopt;
  if (!isStream(client))
    return badRequest("A TCP allocation needs a TCP or TLS connection (RFC 6062)");
  if (request.has(AttributeType::kDontFragment) || request.has(AttributeType::kEvenPort) ||
      request.has(AttributeType::kReservationToken)) {
    return badRequest("DONT-FRAGMENT, EVEN-PORT and RESERVATION-TOKEN do not apply to TCP");
  }
  return std::nullopt;
}

// Step 4: DONT-FRAGMENT. The relay sets DF on the datagrams it sends to peers, so the
// attribute is honoured, never refused (420); only a malformed one is a bad request.
Step step4DontFragment(const wire::MessageView& request, AllocateRequest& out) noexcept {
  if (!request.has(AttributeType::kDontFragment)) return std::nullopt;
  if (!request.get<wire::attr::DontFragment>()) return badRequest("Malformed DONT-FRAGMENT");
  out.relay.dont_fragment = true;
  return std::nullopt;
}

// Step 5: RESERVATION-TOKEN excludes EVEN-PORT, REQUESTED- and ADDITIONAL-ADDRESS-FAMILY (a
// reserved port already has its family) (400). Whether it names a reserved port is known only
// when the relay step claims it (508).
Step step5ReservationToken(const wire::MessageView& request, AllocateRequest& out) noexcept {
  if (!request.has(AttributeType::kReservationToken)) return std::nullopt;
  if (request.has(AttributeType::kEvenPort))
    return badRequest("EVEN-PORT and RESERVATION-TOKEN together");
  if (request.has(AttributeType::kRequestedAddressFamily)) {
    return badRequest("RESERVATION-TOKEN and REQUESTED-ADDRESS-FAMILY together");
  }
  if (hasAdditionalFamily(request))
    return badRequest("RESERVATION-TOKEN and ADDITIONAL-ADDRESS-FAMILY together");
  const auto token = request.get<wire::attr::ReservationToken>();
  if (!token) return badRequest("Malformed RESERVATION-TOKEN");
  out.relay.reservation_token = token->token;
  return std::nullopt;
}

// Step 6: REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY exclude each other (400).
Step step6Families(const wire::MessageView& request) noexcept {
  if (request.has(AttributeType::kRequestedAddressFamily) && hasAdditionalFamily(request)) {
    return badRequest("REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY together");
  }
  return std::nullopt;
}

// EVEN-PORT (step 8) and LIFETIME (read once the allocation is made) are decoded before step
// 7, so that a malformed one is a 400 whatever family the request asks for, as a malformed
// attribute anywhere else in the request is.
Step decodeEvenPortAndLifetime(const wire::MessageView& request, AllocateRequest& out) noexcept {
  if (request.has(AttributeType::kEvenPort)) {
    const auto even = request.get<wire::attr::EvenPort>();
    if (!even) return badRequest("Malformed EVEN-PORT");
    out.relay.even_port = true;
    out.relay.reserve_next = even->reserve_next;
  }
  if (request.has(AttributeType::kLifetime)) {
    const auto lifetime = request.get<wire::attr::Lifetime>();
    if (!lifetime) return badRequest("Malformed LIFETIME");
    out.lifetime = lifetime->seconds;
  }
  return std::nullopt;
}

// Step 7: REQUESTED-ADDRESS-FAMILY picks the relayed address's family, IPv4 without it; an
// unknown family is 440. Whether the relay has an address of that family is known only when
// the relay step opens the socket (440 too).
Step step7RequestedFamily(const wire::MessageView& request, AllocateRequest& out) noexcept {
  if (!request.has(AttributeType::kRequestedAddressFamily)) return std::nullopt;
  const auto family = request.get<wire::attr::RequestedAddressFamily>();
  if (!family) return badRequest("Malformed REQUESTED-ADDRESS-FAMILY");
  if (family->family == static_cast<std::uint8_t>(wire::AddressFamily::kIPv6)) {
    out.relay.family = wire::AddressFamily::kIPv6;
  } else if (family->family != static_cast<std::uint8_t>(wire::AddressFamily::kIPv4)) {
    return AllocateError{ec::kAddressFamilyNotSupported,
                         "Address Family not Supported: unknown family"};
  }
  return std::nullopt;
}

// Step 8: EVEN-PORT with the R bit and ADDITIONAL-ADDRESS-FAMILY is 400 (which of the two
// relayed addresses would the reserved port pair with?). No even port free is the relay
// step's 508.
Step step8EvenPort(const wire::MessageView& request, const AllocateRequest& out) noexcept {
  if (out.relay.reserve_next && hasAdditionalFamily(request)) {
    return badRequest("EVEN-PORT with R=1 and ADDITIONAL-ADDRESS-FAMILY together");
  }
  return std::nullopt;
}

// Step 9: ADDITIONAL-ADDRESS-FAMILY may only ask for IPv6 (400), and a TCP allocation (RFC
// 6062) relays one listener, so dual allocation is a UDP feature (400).
Step step9AdditionalFamily(const wire::MessageView& request, AllocateRequest& out) noexcept {
  if (!hasAdditionalFamily(request)) return std::nullopt;
  const auto family = additionalFamily(request);
  if (!family || *family != static_cast<std::uint8_t>(wire::AddressFamily::kIPv6)) {
    return badRequest("ADDITIONAL-ADDRESS-FAMILY must be IPv6");
  }
  if (out.relay.tcp)
    return badRequest("ADDITIONAL-ADDRESS-FAMILY does not apply to TCP allocations");
  out.additional_ipv6 = true;
  return std::nullopt;
}

}  // namespace

Expected<AllocateRequest, AllocateError> parseAllocate(const wire::MessageView& request,
                                                       Transport client_transport) noexcept {
  AllocateRequest out;
  // Steps 10 (quota) and 11 (300 Try Alternate) are the server's, not the request's: the
  // quota step, and draining before this one.
  Step error = step3Transport(request, client_transport, out);
  if (!error) error = step4DontFragment(request, out);
  if (!error) error = step5ReservationToken(request, out);
  if (!error) error = step6Families(request);
  if (!error) error = decodeEvenPortAndLifetime(request, out);
  if (!error) error = step7RequestedFamily(request, out);
  if (!error) error = step8EvenPort(request, out);
  if (!error) error = step9AdditionalFamily(request, out);
  if (error) return Unexpected{*error};
  out.mobility = request.has(AttributeType::kMobilityTicket);
  return out;
}

}  // namespace tern::core::handlers
