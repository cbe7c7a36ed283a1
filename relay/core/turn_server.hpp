// The sans-I/O TURN/STUN server of one worker: takes client packets with their 5-tuple, peer
// packets with their relay socket, and time points; answers and relays through ServerOutput
// and counts into the worker's counters. It never touches a socket or reads a clock, so unit
// tests and fuzzers drive it directly.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "auth/authenticator.hpp"
#include "metrics/worker_counters.hpp"
#include "relay/core/allocation_snapshot.hpp"
#include "relay/core/allocation_match.hpp"
#include "relay/core/allocation_table.hpp"
#include "relay/core/five_tuple.hpp"
#include "relay/core/response_writer.hpp"
#include "relay/core/server_context.hpp"
#include "relay/core/server_options.hpp"
#include "relay/core/server_output.hpp"
#include "relay/core/source_rate_limiter.hpp"
#include "relay/core/tcp_connections.hpp"
#include "relay/wire/builder.hpp"
#include "relay/wire/message.hpp"

namespace tern::core {

class TurnServer {
 public:
  TurnServer(ServerOptions options, ServerServices services, ServerOutput output,
             metrics::WorkerCounters& counters);
  ~TurnServer();

  // Every datagram or stream frame from a client.
  void onClientPacket(const FiveTuple& tuple, wire::Bytes packet, TimePoint now) noexcept;
  // Every datagram a relay socket receives from a peer (RFC 8656 §11.3, §12.6).
  void onPeerPacket(RelayId relay, const SocketAddress& peer, wire::Bytes payload, TimePoint now) noexcept;
  // RFC 8656 §11.5: an ICMP error about a datagram relay socket `relay` sent to `peer` (the
  // destination of that datagram, port 0 if unknown). `type` and `code` are ICMPv4 when `peer`
  // is IPv4, ICMPv6 otherwise; `error_data` is the 32 bits the I/O layer read with them (the
  // next-hop MTU for "fragmentation needed" and "packet too big"). The client hears of it in a
  // Data indication with an ICMP attribute if it has a permission for the peer's IP.
  void onPeerIcmp(RelayId relay, const SocketAddress& peer, std::uint8_t type, std::uint8_t code,
                  std::uint32_t error_data, TimePoint now) noexcept;
  // The worker's periodic tick: expires allocations (RFC 8656 §7: the time-to-expiry timer).
  void onTick(TimePoint now) noexcept;
  // Wall-clock time for TURN REST usernames, which carry a Unix expiry; set on every tick.
  void setUnixTime(std::int64_t unix_seconds) noexcept { unix_seconds_ = unix_seconds; }
  // Ends every allocation (closing its relay socket) before the worker stops.
  void shutdown(TimePoint now) noexcept;
  // A client's TCP or TLS connection closed: the allocation it carried ends with it.
  void onClientClosed(const FiveTuple& tuple, TimePoint now) noexcept;

  // RFC 6062 §5.2: the outcome of ServerOutput::connectToPeer; answers the Connect request.
  void onPeerConnected(ConnectionId id, bool connected, TimePoint now) noexcept;
  // RFC 6062 §5.3: a peer opened a TCP connection to the relayed address of `relay`. Returns
  // the CONNECTION-ID announced to the client in a ConnectionAttempt indication, or nothing
  // when the connection is refused (no permission for the peer): the I/O layer closes it.
  std::optional<ConnectionId> onPeerConnection(RelayId relay, const SocketAddress& peer, TimePoint now) noexcept;
  // The I/O layer closed peer connection `id` (either side hung up or failed).
  void onConnectionClosed(ConnectionId id) noexcept;

  // RFC 6062 data the I/O layer piped between a client data connection and peer connection
  // `id`, for the metrics, the allocation's usage record and its bandwidth limits. Returns how
  // long the connection that read them should stop reading (zero: read on): a TCP pipe is
  // slowed by its own flow control, never by dropping bytes.
  std::chrono::nanoseconds onConnectionRelayed(ConnectionId id, metrics::Direction direction, std::size_t bytes,
                                               TimePoint now) noexcept;
  // For a connection stopped that way: how long it must still wait (zero once the buckets
  // hold tokens again, the limit is lifted by a reload, or the connection is gone).
  std::chrono::nanoseconds connectionWait(ConnectionId id, metrics::Direction direction, TimePoint now) noexcept;

  // RFC 8016 across workers. On the worker that owns the allocation: a Refresh with its
  // MOBILITY-TICKET that worker `from` received from `tuple` (ServerOutput::forwardToOwner).
  void onForwardedRefresh(std::uint8_t from, const FiveTuple& tuple, wire::Bytes request, TimePoint now) noexcept;
  // On the worker that received it: the allocation, handed over (ServerOutput::handOver)
  // with its relay sockets renumbered here (kLostRelay for one that could not be taken
  // over). Installs it under its new 5-tuple and answers the Refresh.
  void adoptAllocation(AllocationHandOver moved, TimePoint now) noexcept;

  // A configuration reload: new settings and services for new requests; allocations keep
  // their state, except that permissions, channels and RFC 6062 connections to peers the new
  // peer policy refuses end at once. The worker index stays.
  void reconfigure(ServerOptions options, ServerServices services, TimePoint now) noexcept;
  // Draining refuses or redirects new allocations (see ServerOptions::alternate_servers).
  void setDraining(bool draining) noexcept { context_.draining = draining; }

  // Issue 20, upgrade hand-over to a new process (server_hand_over.cpp). In the old process:
  // snapshots of every allocation `moves(const Allocation&)` accepts; nothing changes here.
  // May throw std::bad_alloc (the hand-over is then abandoned and this process serves on).
  template <class F>
  std::vector<AllocationSnapshot> snapshotAllocations(TimePoint now, F&& moves) const {
    std::vector<AllocationSnapshot> out;
    allocations_.forEach([&](const Allocation& a) {
      if (moves(a)) out.push_back(snapshotOf(a, now));
    });
    return out;
  }
  // Once the new process took them: removes every allocation `moves` accepts (which must not
  // throw). Closes its relays through RelayOutput::closeRelay (the I/O layer closes only its
  // copy of each descriptor: the new process holds the socket) and its RFC 6062 peer
  // connections (this process's copies), and releases its quota; but writes no usage record and
  // reports no end (ServerEvents): the allocation lives on in the new process, which reports
  // its end with the usage of both. The active-allocations gauge goes down. Returns how many.
  template <class F>
  std::size_t forgetHandedOver(F&& moves, TimePoint now) noexcept {
    std::size_t forgotten = 0;
    std::vector<const Allocation*> batch;
    // Gathered first (the table cannot change while it is walked); out of memory, a partial
    // batch is forgotten and the walk starts again.
    while (true) {
      batch.clear();
      bool complete = true;
      try {
        allocations_.forEach([&](const Allocation& a) {
          if (moves(a)) batch.push_back(&a);
        });
      } catch (const std::bad_alloc&) {
        complete = false;
      }
      for (const Allocation* a : batch) forgetOne(*a, now);
      forgotten += batch.size();
      if (complete || batch.empty()) return forgotten;
    }
  }
  // forgetHandedOver for one allocation (the caller walks them itself).
  void forgetHandedOverOne(const Allocation& allocation, TimePoint now) noexcept { forgetOne(allocation, now); }
  // In the new process, before the worker reads any socket: installs the allocation of
  // `snapshot` whose relay sockets the I/O layer adopted here as `relays` (relays[i] is the
  // new id of snapshot.relays[i]). The quota counts it even past a lowered limit, its user's
  // shared bandwidth buckets are acquired, the active gauge goes up (not the created counter),
  // and MOBILITY-TICKETs the old process sealed still open it here. False when it could not
  // be installed: a relay lost (kLostRelay), a 5-tuple that already has an allocation, or out
  // of memory; the allocation then ends at once WITH its usage record (reason "deleted";
  // none only when out of memory) and its adopted relays are closed.
  bool restoreAllocation(const AllocationSnapshot& snapshot, std::span<const RelayId> relays,
                         TimePoint now) noexcept;
  // Issue 20's pre-copy (docs/upgrade.md): the old process sends each allocation early while
  // it serves on, then, frozen, what changed meanwhile. In the old process: the allocation
  // whose first relay is `relay`, and its snapshot as snapshotAllocations makes it.
  const Allocation* allocationByRelay(RelayId relay) noexcept { return allocations_.findByRelay(relay); }
  AllocationSnapshot snapshot(const Allocation& allocation, TimePoint now) const {
    return snapshotOf(allocation, now);
  }
  // In the new process, before it reads anything: the allocation restored from the old
  // worker's relay `snapshot.relays[0].id` takes the newer state of `snapshot` (same relays,
  // same user; the 5-tuple may have moved with RFC 8016). Null if no such allocation was
  // restored, its relays differ, or the new 5-tuple is taken; it then keeps the older state.
  const Allocation* updateRestored(const AllocationSnapshot& snapshot, TimePoint now) noexcept;
  // In the new process: the allocation restored from old worker `worker`'s relay `relay`
  // ended in the old process before it froze (which wrote its usage record): it goes as
  // forgetHandedOver lets one go, without a record. False if there is none.
  bool dropRestored(std::uint8_t worker, RelayId relay, TimePoint now) noexcept;

  // RFC 6062 connections of a TCP allocation that moves (server_tcp_hand_over.cpp). In the
  // old process: the state of connection `id`, or nothing for one whose Connect is still in
  // progress (too transient to move: its allocation stays) or that is unknown.
  std::optional<TcpConnectionSnapshot> snapshotConnection(ConnectionId id, TimePoint now) const;
  // In the new process, after restoreAllocation of its allocation: installs the connection
  // under its id, a waiting one with the rest of its 30 s. False (the I/O layer then closes
  // its sockets) when the allocation is not here, the id is taken, out of memory, or it
  // waits for a ConnectionBind whose id names another worker (the worker count changed: the
  // bind would be routed there).
  bool restoreConnection(const TcpConnectionSnapshot& snapshot, TimePoint now) noexcept;

  // Issue 21, the kernel fast path (server_channel_cache.cpp). From now on `cache` mirrors
  // this worker's channels (null: no cache); it is told of every allocation at once.
  void setChannelCache(ChannelCache* cache, TimePoint now) noexcept;
  // Every allocation's state to the cache again: a held worker of an upgrade going live, an
  // upgrade that failed after the freeze, a reload.
  void recacheAll(TimePoint now) noexcept;
  // Every allocation's entries out of the cache, what they relayed credited to its usage: an
  // upgrade's freeze (the new process relays from its commit on; the snapshot is complete).
  void uncacheAll() noexcept;
  // What the cache relayed for `allocation` since it last said, for its usage record.
  void creditUsage(const Allocation& allocation, const AllocationUsage& relayed) noexcept;

  // Ends every allocation `match` names (an operator's call, a revocation), each counted and
  // reported with `why`; returns how many. A match with no criterion names none.
  std::size_t endAllocations(const AllocationMatch& match, metrics::AllocationEnd why, TimePoint now);

  std::size_t allocationCount() const noexcept { return allocations_.size(); }
  std::size_t connectionCount() const noexcept { return connections_.size(); }
  // Entries in the allocations' expiry queue: one per allocation (tests).
  std::size_t scheduledExpiries() const noexcept { return allocations_.scheduledExpiries(); }
  // Calls `f(const Allocation&)` for every allocation of this worker (its inventory).
  template <class F>
  void forEachAllocation(F&& f) const {
    allocations_.forEach(f);
  }

 private:
  AllocationSnapshot snapshotOf(const Allocation& allocation, TimePoint now) const;
  // forgetHandedOver's step for one allocation.
  void forgetOne(const Allocation& allocation, TimePoint now) noexcept;
  // The allocation restored here from old worker `worker`'s relay `relay`; null if none.
  Allocation* restoredFrom(std::uint8_t worker, RelayId relay) noexcept;
  void onStun(const FiveTuple& tuple, wire::Bytes packet, TimePoint now) noexcept;
  void onRequest(const FiveTuple& tuple, const wire::MessageView& request, TimePoint now) noexcept;
  void onTurnRequest(const FiveTuple& tuple, const wire::MessageView& request, TimePoint now,
                     ResponseWriter& response) noexcept;
  // RFC 6062 §5.4 checks that come before authentication; false when the request is handled
  // (answered, or moved to the worker that owns its connection).
  bool admitConnectionBind(const FiveTuple& tuple, const wire::MessageView& request,
                           ResponseWriter& response, TimePoint now) noexcept;
  // Takes one token from the source's bucket for an answer to a request that proved nothing
  // (no valid credentials: a 401, a 400, a Binding response). False, with the response
  // dropped and counted, when the source is over options_.unauthenticated. True otherwise,
  // with the response made minimal over UDP, where the source may be a spoofed victim.
  bool admitUnauthenticated(const FiveTuple& tuple, ResponseWriter& response, TimePoint now) noexcept;
  // Takes one token from the bucket of the allocation on `tuple` (--max-requests-per-
  // allocation) for an authenticated request. False, with the response dropped and counted,
  // when the allocation is over its limit.
  bool admitAllocationRequest(const FiveTuple& tuple, ResponseWriter& response,
                              TimePoint now) noexcept;
  // Answers a deferred Connect request.
  void answerConnect(const TcpConnection& connection, const Allocation& allocation, bool connected) noexcept;
  void onChannelData(const FiveTuple& tuple, wire::Bytes packet, TimePoint now) noexcept;
  // After a reload: ends what the peer policy now refuses (see reconfigure).
  void enforcePeerPolicy(TimePoint now) noexcept;
  // The peer side (peer_side.cpp). The live allocation behind `relay` if it has a permission
  // for `peer`'s IP (RFC 8656 §9), else null with the drop counted. Shared by data and ICMP
  // errors from peers.
  Allocation* permittedAllocation(RelayId relay, const SocketAddress& peer, TimePoint now) noexcept;
  // Starts a Data indication from `peer` in header_buffer_: header and XOR-PEER-ADDRESS.
  wire::MessageBuilder dataIndication(const SocketAddress& peer) noexcept;
  // A peer's payload to the client on `tuple`, as ChannelData on `channel` (RFC 8656 §12.6)
  // or in a Data indication (§11.3). Nothing when sent, else the reason it was not (the
  // caller counts it).
  std::optional<metrics::DropReason> sendChannelData(const FiveTuple& tuple, std::uint16_t channel,
                                                     wire::Bytes payload) noexcept;
  std::optional<metrics::DropReason> sendDataIndication(const FiveTuple& tuple,
                                                        const SocketAddress& peer,
                                                        wire::Bytes payload) noexcept;
  void send(const FiveTuple& tuple, ResponseWriter& response, std::uint16_t method) noexcept;
  ResponseWriter responseTo(const wire::Header& request, bool fingerprint) noexcept;
  wire::TransactionId nextIndicationId() noexcept;
  // The wall clock the authenticator checks a REST username's expiry against.
  // The Authenticator's verdict, with an OAuth allocation's session key where RFC 7635 wants it.
  auth::AuthResult authenticateRequest(const FiveTuple& tuple, const wire::MessageView& request, TimePoint now) noexcept;
  std::int64_t expiryClock(const FiveTuple& tuple, const wire::MessageView& request) noexcept;

  ServerOptions options_;
  ServerServices services_;
  ServerOutput output_;
  metrics::WorkerCounters& counters_;
  AllocationTable allocations_;
  TcpConnectionTable connections_;
  ServerContext context_;
  std::int64_t unix_seconds_ = 0;
  std::uint64_t indication_id_state_ = 0;
  // Per-source buckets for answers to unauthenticated requests; its memory is taken once.
  SourceRateLimiter unauthenticated_sources_;
  // Responses and Data indication headers are built here, one at a time: the packet path
  // never allocates. A header is at most 20 bytes, XOR-PEER-ADDRESS (IPv6) 24 and then DATA's
  // attribute header 4 or ICMP 12: 56.
  std::array<std::uint8_t, 1280> response_buffer_{};
  std::array<std::uint8_t, 64> header_buffer_{};
};

}  // namespace tern::core
