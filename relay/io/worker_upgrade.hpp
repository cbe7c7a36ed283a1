// A worker's side of an upgrade (docs/upgrade.md). In the old process: freeze (stop reading
// what moves and stop expiring it, then list it with its descriptors), and afterwards either
// thaw (the new process failed: serve on as if nothing happened) or commit (the new process
// serves it now: forget it without a usage record, close this process's copies of the
// sockets). In the new process: restore the allocations and connections before any socket
// is read.
#pragma once

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
        peers_(peers) {}

  OutgoingBundle freeze();
  void thaw() noexcept;
  void commit() noexcept;
  void restore(std::vector<RestoredAllocation> restored, std::vector<RestoredConnection> connections) noexcept;
  // After restore(): the RFC 6062 connections of the TCP allocations restored there.
  void restorePeerConnections(std::vector<RestoredPeerConnection> connections) noexcept;
  // While frozen the core's tick and the idle timeout wait: nothing that moves may end in
  // two processes.
  bool frozen() const noexcept { return frozen_; }

 private:
  // UDP allocations move with their sockets, and TCP ones whose connection froze (plain TCP
  // with nothing queued; an RFC 6062 allocation only with every one of its connections). TLS
  // connections stay in the old process until they end (no TLS session can leave its
  // process), and so does every DTLS session.
  bool moves(const core::Allocation& a) const noexcept;
  // RFC 6062 allocations (worker_upgrade_tcp.cpp), after the client connections froze: each
  // whose control connection froze moves if all its connections can (none in a Connect, none
  // with writes queued); else it stays whole, its control connection with it.
  void freezeTcpAllocations(OutgoingBundle& bundle);
  bool freezeTcpAllocation(const core::Allocation& a, OutgoingBundle& bundle);
  void keepConnection(const core::FiveTuple& tuple, OutgoingBundle& bundle) noexcept;
  void thawTcpAllocations() noexcept;

  EventLoop& loop_;
  WorkerLog& log_;
  core::TurnServer& server_;
  ClientListeners& listeners_;
  RelaySockets& relays_;
  ClientConnections& connections_;
  PeerConnections& peers_;
  bool frozen_ = false;
  std::vector<core::RelayId> paused_;
  std::vector<core::FiveTuple> frozen_connections_;
  std::unordered_set<core::FiveTuple, core::FiveTupleHash> moving_connections_;
  std::unordered_set<core::FiveTuple, core::FiveTupleHash> moving_tcp_allocations_;
  std::vector<core::ConnectionId> frozen_peers_;
};

}  // namespace tern::io
