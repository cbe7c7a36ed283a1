// RFC 6062 peer connections in an upgrade (docs/upgrade.md); see peer_connections.hpp. Only
// the descriptors cross: a peer connection not yet bound has read nothing (its bytes wait in
// the kernel, RFC 6062 §5.3), and a pipe writes what it reads at once, so a side with an empty
// write queue holds no bytes of its own.
#include "relay/core/turn_server.hpp"
#include "relay/io/client_connections.hpp"
#include "relay/io/log.hpp"
#include "relay/io/peer_connections.hpp"

namespace tern::io {

std::optional<PeerConnections::Frozen> PeerConnections::freezeForUpgrade(
    core::ConnectionId id) noexcept {
  auto it = connections_.find(id);
  if (it == connections_.end()) return std::nullopt;
  StreamConnection& peer = *it->second;
  StreamConnection* data = peer.partner();
  if (!peer.freezeStreamForUpgrade()) return std::nullopt;
  if (data != nullptr && !data->freezeStreamForUpgrade()) {
    peer.resumeReading();
    return std::nullopt;
  }
  try {
    frozen_.push_back(id);
  } catch (const std::bad_alloc&) {
    thawAfterUpgrade(id);  // it stays, with its allocation
    return std::nullopt;
  }
  Frozen frozen;
  frozen.peer_fd = peer.fd();
  if (data != nullptr) {
    frozen.data_fd = data->fd();
    frozen.data = data->tuple();
  }
  return frozen;
}

void PeerConnections::thawAfterUpgrade(core::ConnectionId id) noexcept {
  std::erase(frozen_, id);
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  StreamConnection& peer = *it->second;
  // A connection not yet bound never reads; freezing it stopped nothing.
  if (StreamConnection* data = peer.partner()) {
    peer.resumeReading();
    data->resumeReading();
  }
}

void PeerConnections::restore(core::ConnectionId id, FileDescriptor peer_fd,
                              const std::optional<core::FiveTuple>& data) noexcept {
  try {
    auto connection = std::make_unique<StreamConnection>(StreamConnection::PeerTag{}, loop_.get(),
                                                         std::move(peer_fd), *this, loop_.now());
    connection->setConnectionId(id);
    connections_[id] = std::move(connection);
  } catch (const std::exception& e) {
    log::warn("peer connection hand-over failed", {{"worker", log_.worker()}, {"error", e.what()}});
    server_.onConnectionClosed(id);
    return;
  }
  // Its data connection went into ClientConnections just before; it may have failed there.
  if (data && !joinConnection(id, *data)) closeConnection(id);
}

}  // namespace tern::io
