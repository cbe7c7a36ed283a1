// The Allocate method (RFC 8656 §7.2): reserves a relayed transport address for the 5-tuple.
// The parse step is in allocate_parse.cpp; the steps are declared in allocate.hpp.
#include "relay/core/handlers/allocate.hpp"

#include "relay/core/handlers/lifetime.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/checks.hpp"

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

// RFC 8656 §7.2: "If the 5-tuple is currently in use by an existing allocation, the server
// rejects the request with a 437 (Allocation Mismatch) error", unless it is a retransmission
// of the request that made it. True when answered. One whose lifetime has run out is ended
// here, before the worker's next tick would.
bool answerExisting(ServerContext& server, const RequestContext& ctx,
                    ResponseWriter& response) noexcept {
  if (Allocation* stale = server.allocations.find(ctx.tuple);
      stale != nullptr && stale->expired(ctx.now)) {
    server.endAllocation(*stale, metrics::AllocationEnd::kExpired, ctx.now);
  }
  Allocation* existing = server.allocations.find(ctx.tuple);
  if (existing == nullptr) return false;
  if (existing->allocateTransaction() == ctx.request.transactionId()) {
    const auto left =
        std::chrono::duration_cast<std::chrono::seconds>(existing->expires() - ctx.now);
    answerSuccess(*existing, static_cast<std::uint32_t>(std::max<std::int64_t>(0, left.count())),
                  ctx.tuple, response);
    addMobilityTicket(server, *existing, response.builder());
  } else {
    response.error(ec::kAllocationMismatch,
                   "Allocation Mismatch: this 5-tuple already has an allocation");
  }
  return true;
}

// Draining (SIGTERM, `tern drain`): allocations that exist carry on, new ones go elsewhere
// (RFC 8656 §7.2 step 11: 300 Try Alternate). Checked after authentication, so only a client
// with credentials learns of other relays.
void answerDraining(const ServerContext& server, const RequestContext& ctx,
                    ResponseWriter& response) noexcept {
  for (const auto& alternate : server.options.alternate_servers) {
    // RFC 8489 §14.15: the alternate has the family of the request's source address.
    if (alternate.ip.family() != ctx.tuple.client.ip.family()) continue;
    auto& b = response.error(ec::kTryAlternate, "Try Alternate: this relay is draining")
                  .add(wire::attr::AlternateServer{alternate});
    // RFC 8489 §14.16: over TLS and DTLS the client needs the name to verify the alternate's
    // certificate by.
    const bool secure =
        ctx.tuple.transport == Transport::kTls || ctx.tuple.transport == Transport::kDtls;
    if (secure && !server.options.alternate_domain.empty()) {
      b.add(wire::attr::AlternateDomain{server.options.alternate_domain});
    }
    return;
  }
  response.error(ec::kInsufficientCapacity,
                 "Insufficient Capacity: this relay is draining; use another one");
}

}  // namespace

Expected<AllocationQuota::Admission, AllocateError> takeQuota(ServerContext& server,
                                                              std::string_view username) noexcept {
  const AllocationQuota::Admission admission = server.services.quota->acquire(quotaKey(username));
  switch (admission.grant) {
    case AllocationQuota::Grant::kGranted: break;
    case AllocationQuota::Grant::kUserQuotaReached:
      server.counters.rejected(metrics::Quota::kUserAllocations);
      return Unexpected{
          AllocateError{ec::kAllocationQuotaReached, "Allocation Quota Reached for this user"}};
    case AllocationQuota::Grant::kTotalQuotaReached:
      server.counters.rejected(metrics::Quota::kTotalAllocations);
      return Unexpected{AllocateError{ec::kInsufficientCapacity,
                                      "Insufficient Capacity: server allocation limit"}};
  }
  return admission;
}

AllocateError relayError(RelayError error, bool reserve_next) noexcept {
  switch (error) {
    case RelayError::kFamilyNotConfigured:
      return {ec::kAddressFamilyNotSupported, "Address Family not Supported by this relay"};
    case RelayError::kUnknownReservation:
      // RFC 8656 §7.2: a token that names no reserved port is 508.
      return {ec::kInsufficientCapacity,
              "Insufficient Capacity: unknown or expired RESERVATION-TOKEN"};
    case RelayError::kOutOfSockets:
      return {ec::kInsufficientCapacity,
              "Insufficient Capacity: the relay can open no more sockets"};
    case RelayError::kNoPortAvailable:
      break;
  }
  return {ec::kInsufficientCapacity, reserve_next
                                         ? "Insufficient Capacity: no even/odd port pair free"
                                         : "Insufficient Capacity: no relay port free"};
}

Expected<OpenedRelay, AllocateError> openFirstRelay(ServerContext& server,
                                                    std::string_view username,
                                                    const RelayRequest& request) noexcept {
  RelayError error{};
  auto relay = server.output.relays.openRelay(request, error);
  if (relay) return *relay;
  server.services.quota->release(quotaKey(username));
  return Unexpected{relayError(error, request.reserve_next)};
}

namespace {

// The allocation's state, installed in the table. Throws std::bad_alloc with the table as it was.
Allocation& makeAllocation(ServerContext& server, const RequestContext& ctx, const AllocateRequest& params,
                           const OpenedRelay& relay, const SocketAddress& relayed, UserBandwidth* user_bandwidth,
                           std::chrono::seconds lifetime) {
  auto allocation = std::make_unique<Allocation>(
      ctx.tuple, relay.id, relayed, std::string(ctx.username),
      std::vector<std::uint8_t>(ctx.key.begin(), ctx.key.end()), ctx.now);
  allocation->setIntegrity(ctx.integrity);
  allocation->setUserBandwidth(user_bandwidth);
  if (ctx.token_expiry_unix) {
    allocation->setToken(ctx.token_expiry_unix, std::vector<std::uint8_t>(ctx.key.begin(), ctx.key.end()), ctx.username);
  }
  allocation->setExpiry(ctx.now + lifetime);
  allocation->setAllocateTransaction(ctx.request.transactionId());
  if (params.relay.tcp) allocation->setTcp();
  return server.allocations.insert(std::move(allocation));
}

}  // namespace

Allocation* insertAllocation(ServerContext& server, const RequestContext& ctx,
                             const AllocateRequest& params, const OpenedRelay& relay,
                             UserBandwidth* user_bandwidth,
                             std::chrono::seconds lifetime) noexcept {
  const SocketAddress relayed = advertisedAddress(server.options.external_ips, relay.local);
  Allocation* made = nullptr;
  try {
    made = &makeAllocation(server, ctx, params, relay, relayed, user_bandwidth, lifetime);
  } catch (const std::bad_alloc&) {
    // relay/wire/checks.hpp: this Allocate is refused (508); what it took goes back.
    checks::outOfMemory("allocation");
    server.output.relays.closeRelay(relay.id);
    server.services.quota->release(quotaKey(ctx.username));
    return nullptr;
  }
  Allocation& a = *made;
  a.setAllocateExtras(relay.reservation_token, params.additional_ipv6
                                                   ? openAdditionalRelay(server, params.relay, a)
                                                   : std::uint16_t{0});
  server.counters.allocationCreated(counterTransport(ctx.tuple.transport), counterFamily(relayed.ip));
  server.output.events.onAllocationCreated(a, static_cast<std::uint32_t>(lifetime.count()));
  return &a;
}

// RFC 8656 §7.2 steps 1 (authentication: done before any handler) and 2 (the 5-tuple), then
// draining (step 11), then the steps of allocate.hpp.
void allocate(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept {
  if (answerExisting(server, ctx, response)) return;
  if (server.draining) {
    answerDraining(server, ctx, response);
    return;
  }
  const auto refuse = [&response](const AllocateError& e) { response.error(e.code, e.reason); };
  // RFC 8656 §7.2 leaves the server's policy to the server; 403 is its "administrative
  // restrictions" answer, and the credential itself is still valid, so not 401.
  if (server.services.revocations && server.services.revocations->revoked(ctx.username)) {
    return refuse({ec::kForbidden, "Forbidden: this user's credentials were revoked"});
  }
  const auto params = parseAllocate(ctx.request, ctx.tuple.transport);
  if (!params) return refuse(params.error());
  if (params->mobility && !admitMobility(server, ctx, response)) return;
  const auto admission = takeQuota(server, ctx.username);
  if (!admission) return refuse(admission.error());
  const auto relay = openFirstRelay(server, ctx.username, params->relay);
  if (!relay) return refuse(relay.error());
  const auto lifetime =
      credentialBound(server.options, ctx, grantedLifetime(server.options, params->lifetime));
  Allocation* inserted = insertAllocation(server, ctx, *params, *relay, admission->user, lifetime);
  if (inserted == nullptr) {
    return refuse({ec::kInsufficientCapacity, "Insufficient Capacity: out of memory"});
  }
  Allocation& a = *inserted;
  answerSuccess(a, static_cast<std::uint32_t>(lifetime.count()), ctx.tuple, response);
  if (params->mobility) {
    renewMobilityHandle(a);
    addMobilityTicket(server, a, response.builder());
  }
}

}  // namespace tern::core::handlers
