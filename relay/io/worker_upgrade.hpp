// A worker's side of an upgrade (docs/upgrade.md). In the old process: freeze (stop reading
// what moves and stop expiring it, then list it with its descriptors), and afterwards either
// thaw (the new process failed: serve on as if nothing happened) or commit (the new process
// serves it now: forget it without a usage record, close this process's copies of the
// sockets). In the new process: restore the allocations before any socket is read.
#pragma once

#include <vector>

#include "relay/core/turn_server.hpp"
#include "relay/io/client_listeners.hpp"
#include "relay/io/event_loop.hpp"
#include "relay/io/relay_sockets.hpp"
#include "relay/io/upgrade_bundle.hpp"
#include "relay/io/worker_log.hpp"

namespace tern::io {

// UDP allocations move with their sockets. TCP and TLS clients' connections stay in the old
// process until they end (no TLS session can leave its process; see docs/upgrade.md), and a
// DTLS session cannot leave it either.
inline bool movesOnUpgrade(const core::Allocation& a) noexcept {
  return a.tuple().transport == core::Transport::kUdp;
}

class WorkerUpgrade {
 public:
  WorkerUpgrade(EventLoop& loop, WorkerLog& log, core::TurnServer& server, ClientListeners& listeners,
                RelaySockets& relays) noexcept
      : loop_(loop), log_(log), server_(server), listeners_(listeners), relays_(relays) {}

  OutgoingBundle freeze();
  void thaw() noexcept;
  void commit() noexcept;
  void restore(std::vector<RestoredAllocation> restored) noexcept;
  // While frozen the core's tick waits: nothing that moves may expire in two processes.
  bool frozen() const noexcept { return frozen_; }

 private:
  EventLoop& loop_;
  WorkerLog& log_;
  core::TurnServer& server_;
  ClientListeners& listeners_;
  RelaySockets& relays_;
  bool frozen_ = false;
  std::vector<core::RelayId> paused_;
};

}  // namespace tern::io
