// A worker's side of an upgrade (docs/upgrade.md). In the old process: a pre-copy while the
// worker serves on (its listeners and, a slice at a time, its UDP allocations with duplicates
// of their relay sockets), then freeze (stop reading, and list what is new, changed or gone
// since the pre-copy, and the TCP client connections), and afterwards either thaw (the new
// process failed: serve on as if nothing happened) or commit (the new process serves it now:
// forget it without a usage record, close this process's copies of the sockets). The worker
// calls freeze, commit and thaw with its thread parked (Worker::freezeForUpgrade), so nothing
// is read between them. In the new process: restore the pre-copy, then apply the rest, before
// any socket is read.
#pragma once

#include <array>
#include <optional>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "relay/core/allocation_table.hpp"
#include "relay/core/turn_server.hpp"
#include "relay/io/client_connections.hpp"
#include "relay/io/client_listeners.hpp"
#include "relay/io/event_loop.hpp"
#include "relay/io/peer_connections.hpp"
#include "relay/io/relay_sockets.hpp"
#include "relay/io/upgrade_bundle.hpp"
#include "relay/io/worker_log.hpp"

namespace tern::io {

class WorkerUpgrade {
 public:
  WorkerUpgrade(EventLoop& loop, WorkerLog& log, core::TurnServer& server,
                ClientListeners& listeners, RelaySockets& relays, ClientConnections& connections,
                PeerConnections& peers) noexcept
      : loop_(loop),
        log_(log),
        server_(server),
        listeners_(listeners),
        relays_(relays),
        connections_(connections),
        peers_(peers),
        release_timer_(loop, [this] { releaseSlice(kReleaseSlice); }) {}

  // The pre-copy: the listeners (duplicated), and the UDP allocations to send in slices.
  OutgoingBundle precopyBegin();
  // The next slice of at most `limit` allocations with duplicates of their relay sockets;
  // nothing once all are sent. May throw std::bad_alloc (the upgrade is abandoned).
  std::optional<OutgoingBundle> precopySlice(std::size_t limit);
  OutgoingBundle freeze();
  void thaw() noexcept;
  void commit() noexcept;
  // The new process: the pre-copy, then (applyRest) what the old process listed when it froze.
  void restoreEarly(std::vector<RestoredAllocation> restored) noexcept;
  void applyRest(WorkerSockets rest) noexcept;
  // While frozen, and while what moved is let go after a commit, the core's tick and the
  // idle timeout wait: nothing that moved may end in two processes.
  bool frozen() const noexcept { return frozen_ || !releasing_.empty(); }
  // The worker stops: what moved and is not let go yet goes at once (before the core ends
  // the rest with their usage records), and the timer closes.
  void close() noexcept;
  // The old process's unclaimed EVEN-PORT reservations: their tokens are honoured here now.
  void restoreReservations(const std::vector<HandedReservation>& reservations) noexcept;
  // After the rest's allocations: the RFC 6062 connections of the TCP allocations among them.
  void restorePeerConnections(std::vector<RestoredPeerConnection> connections) noexcept;

 private:
  static constexpr std::size_t kReleaseSlice = 128;  // ~5 ms of a core, then a pause
  static constexpr std::uint64_t kReleasePauseMs = 10;
  // UDP allocations move with their sockets, and TCP ones whose connection froze (plain TCP
  // with nothing queued; an RFC 6062 allocation only with every one of its connections). TLS
  // connections stay in the old process until they end (no TLS session can leave its
  // process), and so does every DTLS session (the new process passes its datagrams back).
  bool moves(const core::Allocation& a) const noexcept;
  // What the pre-copy sent of an allocation, to tell at the freeze whether it changed.
  struct Sent {
    std::uint32_t changes = 0;
    core::AllocationUsage usage;
    std::array<core::RelayId, 2> relays{core::kLostRelay, core::kLostRelay};
    core::TimePoint created{};  // relay ids are reused: this tells a newer allocation apart
  };
  static Sent sentOf(const core::Allocation& a) noexcept;
  // Lets go of up to `limit` of the allocations that moved (their sockets stopped being read
  // at the commit) and arms the timer for the rest.
  void releaseSlice(std::size_t limit) noexcept;
  // Installs allocations and connections; how many allocations were lost.
  // Idle ones (`poll_now` false) are read a slice at a time once the loop runs.
  std::size_t restore(std::vector<RestoredAllocation> restored,
                      std::vector<RestoredConnection> connections, bool poll_now) noexcept;
  // Adds `a` to `bundle` whole: its snapshot and its relay sockets (duplicated if `dup`).
  void addWhole(OutgoingBundle& bundle, const core::Allocation& a, bool dup);
  // RFC 6062 allocations (worker_upgrade_tcp.cpp), after the client connections froze: each
  // whose control connection froze moves if all its connections can (none in a Connect, none
  // with writes queued); else it stays whole, its control connection with it.
  void freezeTcpAllocations(OutgoingBundle& bundle);
  bool freezeTcpAllocation(const core::Allocation& a, OutgoingBundle& bundle);
  void keepConnection(const core::FiveTuple& tuple, OutgoingBundle& bundle) noexcept;
  void thawTcpAllocations() noexcept;
  // Established DTLS sessions stay here; the bundle names them and carries the socket pair
  // end over which the new process passes their datagrams back (dtls_forwarding.hpp).
  void offerDtlsSessions(OutgoingBundle& bundle) noexcept;

  EventLoop& loop_;
  WorkerLog& log_;
  core::TurnServer& server_;
  ClientListeners& listeners_;
  RelaySockets& relays_;
  ClientConnections& connections_;
  PeerConnections& peers_;
  bool frozen_ = false;
  std::vector<core::RelayId> precopy_queue_;           // first relay ids not yet sent
  std::unordered_map<core::RelayId, Sent> precopied_;  // by first relay id
  // After a commit: first relay ids of moved UDP allocations not yet let go. Closing 5,000
  // sockets takes a core ~150 ms, which the new process needs right then to start reading;
  // they are let go a slice at a time instead (docs/upgrade.md).
  std::vector<core::RelayId> releasing_;
  std::size_t released_ = 0;
  OneShotTimer release_timer_;
  std::vector<core::FiveTuple> frozen_connections_;
  std::unordered_set<core::FiveTuple, core::FiveTupleHash> moving_connections_;
  std::vector<HandedReservation> reservations_;  // out of the registry while frozen
  std::unordered_set<core::FiveTuple, core::FiveTupleHash> moving_tcp_allocations_;
  std::vector<core::ConnectionId> frozen_peers_;
};

}  // namespace tern::io
