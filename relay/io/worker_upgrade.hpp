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
#include "relay/io/relay_sockets.hpp"
#include "relay/io/upgrade_bundle.hpp"
#include "relay/io/worker_log.hpp"

namespace tern::io {

class WorkerUpgrade {
 public:
  WorkerUpgrade(EventLoop& loop, WorkerLog& log, core::TurnServer& server, ClientListeners& listeners,
                RelaySockets& relays, ClientConnections& connections) noexcept
      : loop_(loop), log_(log), server_(server), listeners_(listeners), relays_(relays), connections_(connections) {}

  OutgoingBundle freeze();
  void thaw() noexcept;
  void commit() noexcept;
  void restore(std::vector<RestoredAllocation> restored, std::vector<RestoredConnection> connections) noexcept;
  // While frozen the core's tick and the idle timeout wait: nothing that moves may end in
  // two processes.
  bool frozen() const noexcept { return frozen_; }

 private:
  // UDP allocations move with their sockets, and TCP ones whose connection froze (plain TCP
  // with nothing queued; not an RFC 6062 allocation, whose peer connections stay). TLS
  // connections stay in the old process until they end (no TLS session can leave its
  // process), and so does every DTLS session (the new process passes its datagrams back).
  bool moves(const core::Allocation& a) const noexcept;
  // Established DTLS sessions stay here; the bundle names them and carries the socket pair
  // end over which the new process passes their datagrams back (dtls_forwarding.hpp).
  void offerDtlsSessions(OutgoingBundle& bundle) noexcept;

  EventLoop& loop_;
  WorkerLog& log_;
  core::TurnServer& server_;
  ClientListeners& listeners_;
  RelaySockets& relays_;
  ClientConnections& connections_;
  bool frozen_ = false;
  std::vector<core::RelayId> paused_;
  std::vector<core::FiveTuple> frozen_connections_;
  std::unordered_set<core::FiveTuple, core::FiveTupleHash> moving_connections_;
};

}  // namespace tern::io
