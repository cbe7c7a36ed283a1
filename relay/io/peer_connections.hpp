// RFC 6062 peer connections of a worker's TCP allocations (core::PeerConnectionOutput):
// accepted on an allocation's relayed address or dialled from it, then piped byte for byte to
// the client's data connection after ConnectionBind. Bandwidth limits on a pipe: bytes in a
// TCP stream cannot be dropped, so a side over its limit stops reading (TCP flow control slows
// its sender) until its buckets have refilled; one timer, armed for the earliest such moment,
// serves every paused side.
#pragma once

#include <memory>
#include <optional>
#include <unordered_map>
#include <vector>

#include "relay/core/server_output.hpp"
#include "relay/io/event_loop.hpp"
#include "relay/io/io_batch.hpp"
#include "relay/io/stream_connection.hpp"
#include "relay/io/tcp_listener.hpp"
#include "relay/io/worker_log.hpp"

namespace tern::core {
class TurnServer;
}

namespace tern::io {

class ClientConnections;
class RelaySockets;

class PeerConnections final : public core::PeerConnectionOutput,
                              public ConnectionAcceptor,
                              public StreamHandler {
 public:
  PeerConnections(EventLoop& loop, IoBatch& batch, DeferredDelete& deferred, WorkerLog& log,
                  core::TurnServer& server, ClientConnections& clients, RelaySockets& relays);

  // --- core::PeerConnectionOutput
  bool connectToPeer(core::RelayId relay, const wire::SocketAddress& peer,
                     core::ConnectionId id) noexcept override;
  bool joinConnection(core::ConnectionId id, const core::FiveTuple& client) noexcept override;
  void closeConnection(core::ConnectionId id) noexcept override;

  // --- ConnectionAcceptor: a peer connected to a TCP allocation's relayed address.
  void onConnection(TcpListener& listener) noexcept override;
  // --- StreamHandler (peer side; the client side of a pipe reports through ClientConnections)
  IoBatch* ioBatch() noexcept override { return &batch_; }
  void onFrame(StreamConnection&, wire::Bytes) noexcept override {}  // peer sides are never framed
  void onClosed(StreamConnection& connection) noexcept override;
  void onConnected(StreamConnection& connection, bool ok) noexcept override;
  // Bytes went through a pipe from `from` (either side) to its partner: counted and charged
  // by the core, which may stop `from` reading for a while.
  void onPiped(StreamConnection& from, std::size_t bytes) noexcept override;

  // The worker is stopping: every peer connection ends, no pipe resumes.
  void finishAll() noexcept;

  // An upgrade (docs/upgrade.md; peer_connections_upgrade.cpp). In the old process: freezes
  // peer connection `id` and the data connection piped to it, if both can move; nothing, and
  // no change, if either cannot. thawAfterUpgrade undoes it (the upgrade failed).
  struct Frozen {
    int peer_fd = -1;
    int data_fd = -1;  // -1: not bound
    core::FiveTuple data;
  };
  std::optional<Frozen> freezeForUpgrade(core::ConnectionId id) noexcept;
  void thawAfterUpgrade(core::ConnectionId id) noexcept;
  // The new process holds them (they have closed here): no id is frozen any more.
  void forgetFrozen() noexcept { frozen_.clear(); }
  // In the new process, once the core restored connection `id` and ClientConnections its
  // data connection `data` (if bound): takes over its peer socket and pipes the two. When it
  // cannot, the connection ends (and the core forgets it).
  void restore(core::ConnectionId id, FileDescriptor peer_fd,
               const std::optional<core::FiveTuple>& data) noexcept;

  // Every peer connection by CONNECTION-ID: the worker's inventory.
  template <class F>
  void forEach(F&& f) const {
    for (const auto& [id, connection] : connections_) f(id, *connection);
  }

 private:
  struct PausedPipe {
    core::ConnectionId id;  // the peer connection's, which both sides carry
    bool peer_side;         // which side stopped reading
    core::TimePoint resume;
  };

  void pause(StreamConnection& side, core::TimePoint resume) noexcept;
  void armResumeTimer(core::TimePoint at) noexcept;
  // The core decides again: other allocations of the user may have emptied the shared bucket
  // meanwhile, or a reload changed the limit.
  void resumePipes() noexcept;
  StreamConnection* side(core::ConnectionId id, bool peer_side) noexcept;

  EventLoop& loop_;
  IoBatch& batch_;
  DeferredDelete& deferred_;
  WorkerLog& log_;
  core::TurnServer& server_;
  ClientConnections& clients_;
  RelaySockets& relays_;
  // The client data connections they are piped to stay in ClientConnections.
  std::unordered_map<core::ConnectionId, std::unique_ptr<StreamConnection>> connections_;
  std::vector<PausedPipe> paused_;
  // Frozen for an upgrade: the new process may hold them now, so none may be joined here.
  std::vector<core::ConnectionId> frozen_;
  OneShotTimer resume_timer_;
  std::optional<core::TimePoint> resume_due_;  // when resume_timer_ fires, if armed
};

}  // namespace tern::io
