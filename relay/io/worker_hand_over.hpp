// What passes between the workers of a process (core::WorkerOutput), all through the
// receiving worker's mailbox: an RFC 6062 data connection whose ConnectionBind names a peer
// connection another worker owns, and RFC 8016 mobility, where a client's new 5-tuple lands
// on a worker other than the one holding its allocation (the Refresh goes to the owner, and
// the allocation with its relay sockets comes back).
#pragma once

#include <memory>
#include <vector>

#include "relay/core/server_output.hpp"
#include "relay/io/event_loop.hpp"
#include "relay/io/worker_log.hpp"
#include "relay/io/worker_setup.hpp"

namespace tern::core {
class TurnServer;
}

namespace tern::io {

class ClientConnections;
class RelaySockets;

class WorkerHandOver final : public core::WorkerOutput {
 public:
  WorkerHandOver(const EventLoop& loop, const WorkerSetup& setup, WorkerLog& log,
                 core::TurnServer& server, ClientConnections& connections,
                 RelaySockets& relays) noexcept
      : loop_(loop),
        setup_(setup),
        log_(log),
        server_(server),
        connections_(connections),
        relays_(relays) {}

  // --- core::WorkerOutput, on the worker that received what another one owns
  bool transferConnection(const core::FiveTuple& client, std::uint8_t owner,
                          wire::Bytes request) noexcept override;
  bool forwardToOwner(std::uint8_t owner, const core::FiveTuple& tuple,
                      wire::Bytes request) noexcept override;
  // On the owner: the allocation and its UDP relay sockets leave for worker `to`.
  bool handOver(std::uint8_t to, core::AllocationHandOver& moved) noexcept override;

  // From the mailbox, on the receiving worker:
  void adoptConnection(DetachedConnection& detached) noexcept;
  void onForwardedRefresh(std::uint8_t from, const core::FiveTuple& tuple,
                          const std::vector<std::uint8_t>& request) noexcept;
  void adoptAllocation(MovedAllocation& moved) noexcept;

 private:
  // The running worker `index`, or null (no such worker, or `index` is this one when
  // `other_only`).
  Worker* worker(std::uint8_t index, bool other_only) const noexcept;

  const EventLoop& loop_;
  const WorkerSetup& setup_;
  WorkerLog& log_;
  core::TurnServer& server_;
  ClientConnections& connections_;
  RelaySockets& relays_;
};

}  // namespace tern::io
