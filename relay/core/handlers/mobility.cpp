// RFC 8016 (Mobility with TURN): MOBILITY-TICKET in Allocate and Refresh, and the move of an
// allocation to the client's new 5-tuple - on this worker, or handed over from the worker
// that owns it when the kernel's SO_REUSEPORT hash put the new 5-tuple elsewhere.
#include <array>
#include <cstring>
#include <exception>

#include "auth/crypto.hpp"
#include "auth/mobility_ticket.hpp"
#include "relay/core/handlers/handlers.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/checks.hpp"

namespace tern::core::handlers {

namespace {

namespace ec = wire::error_code;

std::uint64_t randomHandle() noexcept {
  std::array<std::uint8_t, 8> bytes{};
  try {
    auth::randomBytes(bytes);
  } catch (const std::exception&) {
    // Only a broken RNG gets here; a zero handle means "no ticket", so none is issued.
    return 0;
  }
  std::uint64_t v = 0;
  std::memcpy(&v, bytes.data(), bytes.size());
  return v;
}

// The owner's side of a move across workers: the allocation leaves the table and goes, with
// its relay sockets, to worker `to`, which answers the Refresh. Nothing is answered here.
void handOver(ServerContext& server, Allocation& allocation, const RequestContext& ctx, std::uint8_t to,
              ResponseWriter& response) noexcept {
  const FiveTuple old = allocation.tuple();
  const std::uint64_t handle = allocation.mobilityHandle();
  const auto transport = counterTransport(old.transport);
  const auto family = counterFamily(allocation.relayed().ip);
  AllocationHandOver moved;
  try {
    const wire::Bytes bytes = ctx.request.bytes();
    moved.request.assign(bytes.begin(), bytes.end());
  } catch (const std::bad_alloc&) {
    checks::outOfMemory("mobility hand-over request");
    response.error(ec::kServerError, "Server Error: out of memory");
    return;
  }
  moved.previous_client = old.client;
  // Its relay ids are this worker's no more: the new owner's tickets name its own. Its
  // kernel fast path entries go with it (the new owner makes its own).
  for (const RelayEndpoint& r : allocation.relays()) server.forgetRename(r.id);
  server.uncacheAllocation(allocation);
  moved.allocation = server.allocations.detach(allocation);
  moved.allocation->setTuple(ctx.tuple);
  if (!server.output.workers.handOver(to, moved)) {
    // The other worker is gone (stopping): the allocation stays where it was.
    moved.allocation->setTuple(old);
    server.allocations.insert(std::move(moved.allocation));
    response.error(ec::kServerError, "Server Error: the allocation could not move to the new 5-tuple's worker");
    return;
  }
  server.counters.allocationLeft(transport, family);
  try {
    server.handed_over.emplace_back(handle, ctx.now);
  } catch (const std::bad_alloc&) {
    checks::outOfMemory("mobility hand-over guard");
    // Only the rare retransmission race loses its guard.
  }
  response.defer();
}

bool handedOver(const ServerContext& server, std::uint64_t handle) noexcept {
  for (const auto& [h, when] : server.handed_over) {
    if (h == handle) return true;
  }
  return false;
}

// The allocation a ticket names, its handle checked: one of this worker's relay ids, or one
// of the process before an upgrade hand-over (issue 20), renamed. Both are tried, as an old
// process's (worker, relay) may equal one of this process's.
Allocation* ticketAllocation(ServerContext& server, const auth::MobilityTicket& ticket) noexcept {
  if (!server.renamed_relays.empty()) {
    const auto it =
        server.renamed_relays.find(ServerContext::renameKey(ticket.worker, ticket.relay));
    if (it != server.renamed_relays.end()) {
      Allocation* renamed = server.allocations.findByRelay(it->second);
      if (renamed != nullptr && renamed->mobilityHandle() == ticket.handle) return renamed;
    }
  }
  if (ticket.worker != server.options.worker_index) return nullptr;
  return server.allocations.findByRelay(ticket.relay);
}

// RFC 8016 §3.2: the ticket must name a live allocation of this worker, of the same user.
Allocation* ownedAllocation(ServerContext& server, const RequestContext& ctx, const auth::MobilityTicket& ticket,
                            ResponseWriter& response) noexcept {
  Allocation* allocation = ticketAllocation(server, ticket);
  if (allocation == nullptr || allocation->mobilityHandle() != ticket.handle || allocation->expired(ctx.now)) {
    if (server.forwarded_from && handedOver(server, ticket.handle)) {
      response.defer();
      return nullptr;
    }
    // A ticket replaced by a newer one, or of an allocation that ended.
    response.error(ec::kBadRequest, "Bad Request: the MOBILITY-TICKET names no allocation");
    return nullptr;
  }
  if (allocation->username() != ctx.username) {
    response.error(ec::kWrongCredentials, "Wrong Credentials: not the allocation's user");
    return nullptr;
  }
  return allocation;
}

}  // namespace

bool admitMobility(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept {
  // RFC 8016 §3.4: 405 when mobility "cannot be performed due to administrative or similar
  // restrictions": switched off here, or a TCP/TLS client, whose allocation ends with its
  // connection and so cannot outlive a change of address.
  if (!server.options.mobility || !server.services.tickets) {
    response.error(ec::kMobilityForbidden, "Mobility Forbidden: mobility is off on this server");
    return false;
  }
  if (isStream(ctx.tuple.transport)) {
    response.error(ec::kMobilityForbidden, "Mobility Forbidden: only UDP and DTLS allocations can move");
    return false;
  }
  return true;
}

void renewMobilityHandle(Allocation& allocation) noexcept { allocation.setMobilityHandle(randomHandle()); }

void addMobilityTicket(ServerContext& server, const Allocation& allocation, wire::MessageBuilder& b) noexcept {
  const std::uint64_t handle = allocation.mobilityHandle();
  if (!server.services.tickets || handle == 0) return;
  try {
    const auto sealed = server.services.tickets->seal({server.options.worker_index, allocation.relay(), handle});
    b.add(wire::attr::MobilityTicket{{reinterpret_cast<const std::uint8_t*>(sealed.data()), sealed.size()}});
  } catch (const std::exception&) {
    // Without a ticket in this response the client keeps the one it has.
  }
}

Allocation* claimByTicket(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept {
  if (!admitMobility(server, ctx, response)) return nullptr;
  const auto attribute = ctx.request.get<wire::attr::MobilityTicket>();
  const auto ticket = attribute ? server.services.tickets->open(attribute->value) : std::nullopt;
  if (!ticket) {
    // RFC 8016 §3.2: a ticket the server cannot validate is 400.
    response.error(ec::kBadRequest, "Bad Request: invalid MOBILITY-TICKET");
    return nullptr;
  }
  const std::uint8_t owner = server.ownerOf(ticket->worker);
  if (owner != server.options.worker_index) {
    // A request handed over once is never passed on again.
    if (server.forwarded_from) {
      response.error(ec::kBadRequest, "Bad Request: invalid MOBILITY-TICKET");
      return nullptr;
    }
    // A DTLS session lives on the worker that received it; the owner could not answer over
    // it if the move failed.
    if (ctx.tuple.transport != Transport::kUdp) {
      response.error(ec::kMobilityForbidden, "Mobility Forbidden: a DTLS allocation moves only within its worker");
      return nullptr;
    }
    if (server.output.workers.forwardToOwner(owner, ctx.tuple, ctx.request.bytes())) {
      response.defer();
    } else {
      response.error(ec::kBadRequest, "Bad Request: invalid MOBILITY-TICKET");
    }
    return nullptr;
  }
  Allocation* allocation = ownedAllocation(server, ctx, *ticket, response);
  if (allocation == nullptr) return nullptr;
  if (server.forwarded_from) {
    handOver(server, *allocation, ctx, *server.forwarded_from, response);
    return nullptr;
  }
  const SocketAddress previous = allocation->tuple().client;
  // The caller found no allocation on the new 5-tuple, so this cannot collide.
  if (!server.allocations.rekey(*allocation, ctx.tuple)) {
    response.error(ec::kAllocationMismatch, "Allocation Mismatch: the new 5-tuple has an allocation");
    return nullptr;
  }
  // The ticket just used is spent: the response carries one with a new handle.
  renewMobilityHandle(*allocation);
  server.counters.allocationMoved(counterTransport(ctx.tuple.transport), counterFamily(allocation->relayed().ip),
                                  false);
  server.output.events.onAllocationMoved(*allocation, previous, false);
  return allocation;
}

}  // namespace tern::core::handlers
