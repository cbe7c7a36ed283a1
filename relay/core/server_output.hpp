// What the sans-I/O core asks of the I/O layer. The core calls these; relay/io implements
// them on libuv sockets, tests implement them by recording. Every call is synchronous and
// the bytes it is given are only valid during the call.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

#include "relay/core/allocation.hpp"
#include "relay/core/bandwidth.hpp"
#include "relay/core/five_tuple.hpp"
#include "relay/core/server_options.hpp"
#include "relay/core/socket_ids.hpp"
#include "relay/wire/bytes.hpp"

namespace tern::core {

class Allocation;
struct AllocationHandOver;

struct RelayRequest {
  wire::AddressFamily family = wire::AddressFamily::kIPv4;
  // RFC 6062 §5.1: a TCP allocation's relayed address is a listening TCP socket.
  bool tcp = false;
  bool dont_fragment = false;  // RFC 8656 §7.2: set DF on datagrams sent to peers
  // RFC 8656 §7.2 EVEN-PORT: an even port, and with the R bit also hold the next one for a
  // later Allocate that presents the RESERVATION-TOKEN returned in OpenedRelay.
  bool even_port = false;
  bool reserve_next = false;
  std::optional<std::uint64_t> reservation_token;  // use the port reserved under this token
};

enum class RelayError : std::uint8_t {
  kFamilyNotConfigured,  // no relay IP of that family: 440
  kNoPortAvailable,      // the worker's port range is used up: 508
  kUnknownReservation,   // RESERVATION-TOKEN unknown or expired: 508
  kOutOfSockets,         // the process may open no more sockets (descriptor limit): 508
};

struct OpenedRelay {
  RelayId id = 0;
  SocketAddress local;  // the address the socket is bound to (before any --external-ip mapping)
  std::optional<std::uint64_t> reservation_token;  // set when the next port was reserved
};

// The core's requests of the I/O layer, split along the seams of what a worker owns: the
// client-facing listeners and connections, the relay sockets, the RFC 6062 peer connections,
// the other workers, and the operator's log. relay/io gives each its own part; tests give one
// recording object for all five (ServerOutput's converting constructor).

// Answers and relayed data to clients, over whichever listener or connection `tuple` names.
class ClientOutput {
 public:
  virtual ~ClientOutput() = default;
  // Sends the concatenation of `parts` to the client of `tuple` as one datagram (UDP) or
  // written in order (TCP/TLS). False if it was dropped.
  virtual bool sendToClient(const FiveTuple& tuple, std::span<const wire::Bytes> parts) noexcept = 0;
  bool sendToClient(const FiveTuple& tuple, wire::Bytes bytes) noexcept {
    return sendToClient(tuple, std::span<const wire::Bytes>(&bytes, 1));
  }
};

// The allocations' relay sockets (RFC 8656 §7.2: the relayed transport addresses).
class RelayOutput {
 public:
  virtual ~RelayOutput() = default;
  // Opens a relay socket for a new allocation (control path: may allocate).
  virtual std::optional<OpenedRelay> openRelay(const RelayRequest& request, RelayError& error) noexcept = 0;
  virtual void closeRelay(RelayId id) noexcept = 0;
  // Sends `payload` from the relay socket `id` to `peer`. False if it was dropped.
  virtual bool sendToPeer(RelayId id, const SocketAddress& peer, wire::Bytes payload) noexcept = 0;
};

// RFC 6062 TCP allocations. The I/O layer owns the TCP sockets; the core keeps the state.
class PeerConnectionOutput {
 public:
  virtual ~PeerConnectionOutput() = default;
  // Starts a TCP connection from the relayed address of `relay` to `peer`; the outcome comes
  // back through TurnServer::onPeerConnected(id). False if it could not even start.
  virtual bool connectToPeer(RelayId relay, const SocketAddress& peer, ConnectionId id) noexcept = 0;
  // Joins the client data connection `client` to peer connection `id`: from now on bytes flow
  // as they are, both ways, without the core (RFC 6062 §5.4). False if either side is gone.
  virtual bool joinConnection(ConnectionId id, const FiveTuple& client) noexcept = 0;
  // Closes peer connection `id` and, if joined, its client data connection. No callback.
  virtual void closeConnection(ConnectionId id) noexcept = 0;
};

// The other workers of the process, for what arrived at the wrong one. Defaults: one worker.
class WorkerOutput {
 public:
  virtual ~WorkerOutput() = default;
  // A ConnectionBind for a connection another worker owns: move the client's connection to
  // worker `owner`, which processes `request` again as if it had arrived there. False if
  // there is no such worker (the id is made up).
  virtual bool transferConnection(const FiveTuple& /*client*/, std::uint8_t /*owner*/,
                                  wire::Bytes /*request*/) noexcept {
    return false;
  }
  // RFC 8016 across workers. A Refresh with the MOBILITY-TICKET of worker `owner` came from
  // a 5-tuple this worker serves: pass it to `owner`, whose TurnServer::onForwardedRefresh
  // answers it (or hands the allocation over). False if there is no such worker.
  virtual bool forwardToOwner(std::uint8_t /*owner*/, const FiveTuple& /*tuple*/, wire::Bytes /*request*/) noexcept {
    return false;
  }
  // The owner's side: the allocation leaves for worker `to` with its relay sockets (kept
  // open: datagrams wait in their buffers) and their ports; `to` receives it through
  // TurnServer::adoptAllocation. False, with `moved` left untouched, if it cannot go.
  virtual bool handOver(std::uint8_t /*to*/, AllocationHandOver& /*moved*/) noexcept { return false; }
};

// Operator-facing events (one log line each in relay/io, the usage record operators bill and
// audit from); never on the per-packet path. Defaults: nothing.
class ServerEvents {
 public:
  virtual ~ServerEvents() = default;
  virtual void onAllocationCreated(const Allocation&, std::uint32_t /*lifetime*/) noexcept {}
  // Before the allocation is destroyed: its usage() holds what it relayed.
  virtual void onAllocationEnded(const Allocation&, std::string_view /*reason*/,
                                 std::chrono::seconds /*age*/) noexcept {}
  // RFC 8016: the allocation now serves a new client address (and maybe a new worker).
  virtual void onAllocationMoved(const Allocation&, const SocketAddress& /*previous_client*/,
                                 bool /*cross_worker*/) noexcept {}
  // A reload's narrower peer policy ended this allocation's permissions, channels and RFC 6062
  // connections to peers it now refuses (counts of each; at least one is non-zero).
  virtual void onPeersRevoked(const Allocation&, std::size_t /*permissions*/, std::size_t /*channels*/,
                              std::size_t /*connections*/) noexcept {}
  virtual void onRequestRefused(const FiveTuple&, std::uint16_t /*method*/, std::uint16_t /*code*/,
                                std::string_view /*reason*/) noexcept {}
  // The source of `tuple` went over `limits` for answers to unauthenticated requests: they
  // are dropped (each counted) until its bucket is full again. Once per such episode.
  virtual void onSourceRateLimited(const FiveTuple&, const UnauthenticatedLimits& /*limits*/) noexcept {}
  // The allocation went over `limit` for authenticated requests: they are dropped (each
  // counted) until it slows down. Once per such episode.
  virtual void onAllocationRequestLimited(const Allocation&, const RequestRateLimit& /*limit*/) noexcept {}
};

// Issue 21 (DESIGN.md §6): a cache of the core's channel decisions outside it, the kernel
// fast path's maps. The core decides every permission, channel and end; the cache only
// mirrors them (with their expiry times) and relays what they allow without the core, so the
// core tells it of every change and takes back what it relayed. Control path only.
class ChannelCache {
 public:
  virtual ~ChannelCache() = default;
  // The allocation's channels, permissions, expiry, 5-tuple or relays may have changed (or it
  // is new here): the cache takes its state again. `eligible` is false when the core must
  // see each of its packets (a bandwidth limit applies): the cache then holds nothing of it.
  virtual void update(const Allocation& allocation, bool eligible, TimePoint now) noexcept = 0;
  // The allocation ends, or leaves this worker or process: its entries go, and what they
  // relayed since the cache last credited it comes back for its usage record.
  virtual AllocationUsage remove(const Allocation& allocation) noexcept = 0;
};

// Everything the core may ask of the I/O layer, one reference per part.
struct ServerOutput {
  ClientOutput& clients;
  RelayOutput& relays;
  PeerConnectionOutput& peer_connections;
  WorkerOutput& workers;
  ServerEvents& events;

  ServerOutput(ClientOutput& c, RelayOutput& r, PeerConnectionOutput& p, WorkerOutput& w, ServerEvents& e) noexcept
      : clients(c), relays(r), peer_connections(p), workers(w), events(e) {}
  // One object that implements every part (the tests' recorder, the fuzzer's checker).
  template <class All>
    requires std::derived_from<All, ClientOutput> && std::derived_from<All, RelayOutput> &&
             std::derived_from<All, PeerConnectionOutput> && std::derived_from<All, WorkerOutput> &&
             std::derived_from<All, ServerEvents>
  ServerOutput(All& all) noexcept  // NOLINT(google-explicit-constructor): a recorder is an output
      : ServerOutput(all, all, all, all, all) {}
};

// Admission of allocations across all workers (per-user and total limits), and the state a
// user's allocations share while any exists (their bandwidth budget). Implemented with shared
// state in relay/io; the core only asks.
class AllocationQuota {
 public:
  enum class Grant : std::uint8_t { kGranted, kUserQuotaReached, kTotalQuotaReached };
  struct Admission {
    Grant grant = Grant::kTotalQuotaReached;
    // With kGranted: the user's shared bandwidth buckets, valid until the matching release().
    UserBandwidth* user = nullptr;
  };
  virtual ~AllocationQuota() = default;
  virtual Admission acquire(std::string_view username) noexcept = 0;
  // An allocation restored in an upgrade hand-over: counted even past the limits (a lowered
  // limit never ends a call that was running); refused (kTotalQuotaReached) only when out of
  // memory. Matched by release() like acquire().
  virtual Admission forceAcquire(std::string_view username) noexcept = 0;
  virtual void release(std::string_view username) noexcept = 0;
};

// Users an operator revoked (`tern admin revoke`, the admin API), shared by all workers: their
// Allocates get 403 until the revocation ends. Implemented with shared state in relay/io; the
// core asks on Allocate only, never per packet.
class Revocations {
 public:
  virtual ~Revocations() = default;
  // Whether `username`, or for a TURN REST username its user part (quotaKey), is revoked now.
  virtual bool revoked(std::string_view username) const noexcept = 0;
};

}  // namespace tern::core
