// The Allocate method (RFC 8656 §7.2): reserves a relayed transport address for the 5-tuple.
#include "relay/core/handlers/handlers.hpp"
#include "relay/core/handlers/lifetime.hpp"
#include "relay/wire/attributes.hpp"

namespace tern::core::handlers {

namespace {

using wire::AttributeType;
namespace ec = wire::error_code;

// RFC 8656 §7.2 (retransmission): the same request again gets the same answer, including
// the RESERVATION-TOKEN a client whose first answer was lost would otherwise never learn.
void answerSuccess(const Allocation& a, std::uint32_t lifetime, const FiveTuple& tuple,
                   ResponseWriter& response) noexcept {
  auto& b = response.success();
  // RFC 8656 §7.2: a dual allocation answers with both relayed addresses, IPv4 first.
  for (const RelayEndpoint& r : a.relays()) b.add(wire::attr::XorRelayedAddress{r.relayed});
  b.add(wire::attr::Lifetime{lifetime}).add(wire::attr::XorMappedAddress{tuple.client});
  if (a.reservationToken()) b.add(wire::attr::ReservationToken{*a.reservationToken()});
  if (const std::uint16_t code = a.additionalFamilyError()) {
    // RFC 8656 §7.2: the IPv4 allocation stands; the IPv6 half is refused with its reason.
    b.add(wire::attr::AddressErrorCode{static_cast<std::uint8_t>(wire::AddressFamily::kIPv6), code,
                                       code == ec::kAddressFamilyNotSupported
                                           ? "Address Family not Supported: no IPv6 relay address"
                                           : "Insufficient Capacity: no IPv6 relay port free"});
  }
}

// RFC 8656 §7.2 dual allocation: the IPv6 relayed address ADDITIONAL-ADDRESS-FAMILY asks for,
// opened after the IPv4 one succeeded. Returns the ADDRESS-ERROR-CODE when it cannot be had
// (the IPv4 allocation stands either way), else 0.
std::uint16_t openAdditionalRelay(ServerContext& server, RelayRequest request, Allocation& a) noexcept {
  request.family = wire::AddressFamily::kIPv6;
  request.even_port = false;  // RFC 8656 §7.2: EVEN-PORT concerns the first relayed address
  request.reserve_next = false;
  RelayError error{};
  auto relay = server.output.relays.openRelay(request, error);
  if (!relay) {
    return error == RelayError::kFamilyNotConfigured ? ec::kAddressFamilyNotSupported : ec::kInsufficientCapacity;
  }
  server.allocations.addRelay(a, RelayEndpoint{relay->id, advertisedAddress(server.options.external_ips, relay->local)});
  return 0;
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

}  // namespace

void allocate(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept {
  const auto& request = ctx.request;
  // RFC 8656 §7.2: only a 5-tuple "currently in use by an existing allocation" is 437; one
  // whose lifetime has run out is ended here, before the worker's next tick would.
  if (Allocation* stale = server.allocations.find(ctx.tuple);
      stale != nullptr && stale->expired(ctx.now)) {
    server.endAllocation(*stale, metrics::AllocationEnd::kExpired, ctx.now);
  }
  if (Allocation* existing = server.allocations.find(ctx.tuple)) {
    if (existing->allocateTransaction() == request.transactionId()) {
      const auto left = std::chrono::duration_cast<std::chrono::seconds>(existing->expires() - ctx.now);
      answerSuccess(*existing, static_cast<std::uint32_t>(std::max<std::int64_t>(0, left.count())),
                    ctx.tuple, response);
      addMobilityTicket(server, *existing, response.builder());
    } else {
      // RFC 8656 §7.2: "If the 5-tuple is currently in use by an existing allocation, the
      // server rejects the request with a 437 (Allocation Mismatch) error."
      response.error(ec::kAllocationMismatch, "Allocation Mismatch: this 5-tuple already has an allocation");
    }
    return;
  }

  // Draining (SIGTERM, `tern drain`): allocations that exist carry on, new ones go elsewhere.
  // Checked after authentication, so only a client with credentials learns of other relays.
  if (server.draining) {
    for (const auto& alternate : server.options.alternate_servers) {
      // RFC 8489 §14.15: the alternate has the family of the request's source address.
      if (alternate.ip.family() == ctx.tuple.client.ip.family()) {
        auto& b = response.error(ec::kTryAlternate, "Try Alternate: this relay is draining")
                      .add(wire::attr::AlternateServer{alternate});
        // RFC 8489 §14.16: over TLS and DTLS the client needs the name to verify the
        // alternate's certificate by.
        const bool secure = ctx.tuple.transport == Transport::kTls || ctx.tuple.transport == Transport::kDtls;
        if (secure && !server.options.alternate_domain.empty()) {
          b.add(wire::attr::AlternateDomain{server.options.alternate_domain});
        }
        return;
      }
    }
    response.error(ec::kInsufficientCapacity, "Insufficient Capacity: this relay is draining; use another one");
    return;
  }

  // RFC 8656 §7.2: REQUESTED-TRANSPORT is mandatory: UDP, or TCP (RFC 6062).
  if (!request.has(AttributeType::kRequestedTransport)) {
    response.error(ec::kBadRequest, "REQUESTED-TRANSPORT is missing");
    return;
  }
  const auto transport = request.get<wire::attr::RequestedTransport>();
  if (!transport) {
    response.error(ec::kBadRequest, "Malformed REQUESTED-TRANSPORT");
    return;
  }
  const bool tcp = transport->protocol == wire::attr::RequestedTransport::kTcp;
  if (transport->protocol != wire::attr::RequestedTransport::kUdp && !tcp) {
    response.error(ec::kUnsupportedTransportProtocol, "Unsupported Transport Protocol: only UDP and TCP relaying");
    return;
  }
  RelayRequest relay_request;
  relay_request.tcp = tcp;
  const bool even_port = request.has(AttributeType::kEvenPort);
  const bool token = request.has(AttributeType::kReservationToken);
  if (tcp) {
    // RFC 6062 §5.1: a TCP allocation is made over TCP or TLS, and has no use for the
    // datagram attributes.
    if (!isStream(ctx.tuple.transport)) {
      response.error(ec::kBadRequest, "A TCP allocation needs a TCP or TLS connection (RFC 6062)");
      return;
    }
    if (request.has(AttributeType::kDontFragment) || even_port || token) {
      response.error(ec::kBadRequest, "DONT-FRAGMENT, EVEN-PORT and RESERVATION-TOKEN do not apply to TCP");
      return;
    }
  }
  // RFC 8656 §7.2: EVEN-PORT and RESERVATION-TOKEN ask for RTP/RTCP port pairs; they
  // exclude each other, and a reserved port already has its family.
  if (even_port && token) {
    response.error(ec::kBadRequest, "EVEN-PORT and RESERVATION-TOKEN together");
    return;
  }
  // RFC 8656 §7.2 item 5: nor does it go with REQUESTED- or ADDITIONAL-ADDRESS-FAMILY.
  if (token && request.has(AttributeType::kRequestedAddressFamily)) {
    response.error(ec::kBadRequest, "RESERVATION-TOKEN and REQUESTED-ADDRESS-FAMILY together");
    return;
  }
  if (token && hasAdditionalFamily(request)) {
    response.error(ec::kBadRequest, "RESERVATION-TOKEN and ADDITIONAL-ADDRESS-FAMILY together");
    return;
  }
  if (even_port) {
    auto e = request.get<wire::attr::EvenPort>();
    if (!e) {
      response.error(ec::kBadRequest, "Malformed EVEN-PORT");
      return;
    }
    // RFC 8656 §7.2 item 8: EVEN-PORT with the R bit and ADDITIONAL-ADDRESS-FAMILY is 400.
    if (e->reserve_next && hasAdditionalFamily(request)) {
      response.error(ec::kBadRequest, "EVEN-PORT with R=1 and ADDITIONAL-ADDRESS-FAMILY together");
      return;
    }
    relay_request.even_port = true;
    relay_request.reserve_next = e->reserve_next;
  }
  if (token) {
    auto t = request.get<wire::attr::ReservationToken>();
    if (!t) {
      response.error(ec::kBadRequest, "Malformed RESERVATION-TOKEN");
      return;
    }
    relay_request.reservation_token = t->token;
  }
  if (request.has(AttributeType::kLifetime) && !request.get<wire::attr::Lifetime>()) {
    response.error(ec::kBadRequest, "Malformed LIFETIME");
    return;
  }
  if (request.has(AttributeType::kDontFragment) && !request.get<wire::attr::DontFragment>()) {
    response.error(ec::kBadRequest, "Malformed DONT-FRAGMENT");
    return;
  }

  // RFC 8656 §7.2: the address family of the relayed address.
  relay_request.dont_fragment = request.has(AttributeType::kDontFragment);
  const bool requested_family = request.has(AttributeType::kRequestedAddressFamily);
  const bool additional_family = hasAdditionalFamily(request);
  if (requested_family && additional_family) {
    response.error(ec::kBadRequest, "REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY together");
    return;
  }
  if (requested_family) {
    auto family = request.get<wire::attr::RequestedAddressFamily>();
    if (!family) {
      response.error(ec::kBadRequest, "Malformed REQUESTED-ADDRESS-FAMILY");
      return;
    }
    if (family->family == static_cast<std::uint8_t>(wire::AddressFamily::kIPv6)) {
      relay_request.family = wire::AddressFamily::kIPv6;
    } else if (family->family != static_cast<std::uint8_t>(wire::AddressFamily::kIPv4)) {
      response.error(ec::kAddressFamilyNotSupported, "Address Family not Supported: unknown family");
      return;
    }
  }
  if (additional_family) {
    auto family = additionalFamily(request);
    // RFC 8656 §7.2: ADDITIONAL-ADDRESS-FAMILY may only ask for IPv6.
    if (!family || *family != static_cast<std::uint8_t>(wire::AddressFamily::kIPv6)) {
      response.error(ec::kBadRequest, "ADDITIONAL-ADDRESS-FAMILY must be IPv6");
      return;
    }
    // RFC 6062 allocations relay one TCP listener; dual allocation is a UDP feature.
    if (tcp) {
      response.error(ec::kBadRequest, "ADDITIONAL-ADDRESS-FAMILY does not apply to TCP allocations");
      return;
    }
  }

  // RFC 8016 §3.1: an (empty) MOBILITY-TICKET asks for mobility.
  const bool mobile = request.has(AttributeType::kMobilityTicket);
  if (mobile && !admitMobility(server, ctx, response)) return;

  // Quotas before any resource is taken (RFC 8656 §7.2: 486 per user, 508 for the server).
  const AllocationQuota::Admission admission = server.services.quota->acquire(quotaKey(ctx.username));
  switch (admission.grant) {
    case AllocationQuota::Grant::kGranted: break;
    case AllocationQuota::Grant::kUserQuotaReached:
      server.counters.rejected(metrics::Quota::kUserAllocations);
      response.error(ec::kAllocationQuotaReached, "Allocation Quota Reached for this user");
      return;
    case AllocationQuota::Grant::kTotalQuotaReached:
      server.counters.rejected(metrics::Quota::kTotalAllocations);
      response.error(ec::kInsufficientCapacity, "Insufficient Capacity: server allocation limit");
      return;
  }
  RelayError relay_error{};
  auto relay = server.output.relays.openRelay(relay_request, relay_error);
  if (!relay) {
    server.services.quota->release(quotaKey(ctx.username));
    switch (relay_error) {
      case RelayError::kFamilyNotConfigured:
        response.error(ec::kAddressFamilyNotSupported, "Address Family not Supported by this relay");
        break;
      case RelayError::kUnknownReservation:
        // RFC 8656 §7.2: a token that names no reserved port is 508.
        response.error(ec::kInsufficientCapacity, "Insufficient Capacity: unknown or expired RESERVATION-TOKEN");
        break;
      case RelayError::kOutOfSockets:
        response.error(ec::kInsufficientCapacity, "Insufficient Capacity: the relay can open no more sockets");
        break;
      case RelayError::kNoPortAvailable:
        response.error(ec::kInsufficientCapacity,
                       relay_request.reserve_next ? "Insufficient Capacity: no even/odd port pair free"
                                                  : "Insufficient Capacity: no relay port free");
        break;
    }
    return;
  }

  auto requested = request.get<wire::attr::Lifetime>();
  const auto lifetime = credentialBound(
      server.options, ctx, grantedLifetime(server.options, requested ? std::optional(requested->seconds) : std::nullopt));
  const SocketAddress relayed = advertisedAddress(server.options.external_ips, relay->local);
  auto allocation = std::make_unique<Allocation>(ctx.tuple, relay->id, relayed, std::string(ctx.username),
                                                 std::vector<std::uint8_t>(ctx.key.begin(), ctx.key.end()),
                                                 ctx.now);
  allocation->setIntegrity(ctx.integrity);
  allocation->setUserBandwidth(admission.user);
  if (ctx.token_expiry_unix) {
    allocation->setToken(ctx.token_expiry_unix, std::vector<std::uint8_t>(ctx.key.begin(), ctx.key.end()), ctx.username);
  }
  allocation->setExpiry(ctx.now + lifetime);
  allocation->setAllocateTransaction(request.transactionId());
  if (tcp) allocation->setTcp();
  Allocation& a = server.allocations.insert(std::move(allocation));
  a.setAllocateExtras(relay->reservation_token,
                      additional_family ? openAdditionalRelay(server, relay_request, a) : std::uint16_t{0});
  server.counters.allocationCreated(counterTransport(ctx.tuple.transport), counterFamily(relayed.ip));
  server.output.events.onAllocationCreated(a, static_cast<std::uint32_t>(lifetime.count()));

  answerSuccess(a, static_cast<std::uint32_t>(lifetime.count()), ctx.tuple, response);
  if (mobile) {
    renewMobilityHandle(a);
    addMobilityTicket(server, a, response.builder());
  }
}

}  // namespace tern::core::handlers
