// RFC 6062 TCP allocations in a worker's upgrade (docs/upgrade.md); see worker_upgrade.hpp.
// Such an allocation moves whole or not at all: its relayed listening socket, its control
// connection, and every peer connection with the data connection piped to it, with the
// core's CONNECTION-ID entries. A Connect still in progress, or a connection with writes
// queued, keeps the allocation (and its control connection) in the old process.
#include "relay/io/log.hpp"
#include "relay/io/worker_upgrade.hpp"

namespace tern::io {

void WorkerUpgrade::freezeTcpAllocations(OutgoingBundle& bundle) {
  std::vector<const core::Allocation*> candidates;
  server_.forEachAllocation([&](const core::Allocation& a) {
    if (a.tcp() && a.tuple().transport == core::Transport::kTcp &&
        moving_connections_.contains(a.tuple())) {
      candidates.push_back(&a);
    }
  });
  for (const core::Allocation* a : candidates) {
    if (freezeTcpAllocation(*a, bundle)) {
      moving_tcp_allocations_.insert(a->tuple());
    } else {
      keepConnection(a->tuple(), bundle);
    }
  }
}

bool WorkerUpgrade::freezeTcpAllocation(const core::Allocation& a, OutgoingBundle& bundle) {
  const std::size_t first = bundle.peer_connections.size();
  bool all = true;
  for (core::ConnectionId id : a.connections()) {
    frozen_peers_.reserve(frozen_peers_.size() + 1);
    bundle.peer_connections.reserve(bundle.peer_connections.size() + 1);
    const auto snapshot = server_.snapshotConnection(id, loop_.now());
    const auto frozen = snapshot ? peers_.freezeForUpgrade(id) : std::nullopt;
    if (!frozen) {
      all = false;
      break;
    }
    frozen_peers_.push_back(id);
    OutgoingBundle::PeerConnection& out = bundle.peer_connections.emplace_back();
    out.snapshot = *snapshot;
    out.peer_fd = frozen->peer_fd;
    if (frozen->data_fd >= 0) {
      out.data = core::ConnectionSnapshot{frozen->data, {}};
      out.data_fd = frozen->data_fd;
    }
  }
  if (all) return true;
  // Undone: these connections serve on here with their allocation.
  for (std::size_t i = first; i < bundle.peer_connections.size(); ++i) {
    const core::ConnectionId id = bundle.peer_connections[i].snapshot.id;
    peers_.thawAfterUpgrade(id);
    std::erase(frozen_peers_, id);
  }
  bundle.peer_connections.resize(first);
  return false;
}

void WorkerUpgrade::keepConnection(const core::FiveTuple& tuple, OutgoingBundle& bundle) noexcept {
  for (std::size_t i = 0; i < bundle.connections.size(); ++i) {
    if (bundle.connections[i].tuple != tuple) continue;
    bundle.connections.erase(bundle.connections.begin() + static_cast<std::ptrdiff_t>(i));
    bundle.connection_fds.erase(bundle.connection_fds.begin() + static_cast<std::ptrdiff_t>(i));
    break;
  }
  std::erase(frozen_connections_, tuple);
  moving_connections_.erase(tuple);
  if (StreamConnection* c = connections_.find(tuple)) c->resumeReading();
}

void WorkerUpgrade::thawTcpAllocations() noexcept {
  for (core::ConnectionId id : frozen_peers_) peers_.thawAfterUpgrade(id);
  frozen_peers_.clear();
  moving_tcp_allocations_.clear();
}

void WorkerUpgrade::restorePeerConnections(
    std::vector<RestoredPeerConnection> connections) noexcept {
  if (connections.empty()) return;
  const auto now = loop_.now();
  std::size_t lost = 0;
  for (RestoredPeerConnection& c : connections) {
    // Refused (its allocation did not come, or a bind would be routed elsewhere): its sockets
    // close with `c`, and the client sees its data connection end.
    if (!server_.restoreConnection(c.snapshot, now)) {
      ++lost;
      continue;
    }
    std::optional<core::FiveTuple> data;
    if (c.data) {
      data = c.data->tuple;
      connections_.restore(std::move(*c.data), std::move(c.data_fd));
    }
    peers_.restore(c.snapshot.id, std::move(c.peer_fd), data);
  }
  log::info(
      "taken over rfc6062 connections",
      {{"worker", log_.worker()}, {"connections", connections.size() - lost}, {"lost", lost}});
}

}  // namespace tern::io
