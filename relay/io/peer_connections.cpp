// RFC 6062 peer connections and their pipes; see peer_connections.hpp.
#include "relay/io/peer_connections.hpp"

#include <algorithm>

#include "relay/core/turn_server.hpp"
#include "relay/io/client_connections.hpp"
#include "relay/io/log.hpp"
#include "relay/io/relay_sockets.hpp"
#include "relay/wire/checks.hpp"

namespace tern::io {

namespace {

metrics::Direction pipeDirection(bool peer_side) noexcept {
  return peer_side ? metrics::Direction::kPeerToClient : metrics::Direction::kClientToPeer;
}

}  // namespace

PeerConnections::PeerConnections(EventLoop& loop, IoBatch& batch, DeferredDelete& deferred,
                                 WorkerLog& log, core::TurnServer& server,
                                 ClientConnections& clients, RelaySockets& relays)
    : loop_(loop),
      batch_(batch),
      deferred_(deferred),
      log_(log),
      server_(server),
      clients_(clients),
      relays_(relays),
      resume_timer_(loop, [this] { resumePipes(); }) {}

bool PeerConnections::connectToPeer(core::RelayId relay, const wire::SocketAddress& peer,
                                    core::ConnectionId id) noexcept {
  const TcpListener* listener = relays_.tcpListener(relay);
  if (listener == nullptr) return false;
  try {
    SocketOptions options;
    options.reuse_port = true;
    options.listen = false;
    auto socket = openBoundSocket(SocketKind::kTcp, listener->localAddress(), options);
    auto connection = std::make_unique<StreamConnection>(loop_.get(), std::move(socket), peer,
                                                         *this, loop_.now());
    connection->setConnectionId(id);
    connections_[id] = std::move(connection);
    return true;
  } catch (const std::exception& e) {
    log::debug("peer connect failed", {{"peer", peer.toString()}, {"error", e.what()}});
    return false;
  }
}

bool PeerConnections::joinConnection(core::ConnectionId id,
                                     const core::FiveTuple& client) noexcept {
  auto peer = connections_.find(id);
  StreamConnection* data = clients_.find(client);
  if (peer == connections_.end() || data == nullptr) return false;
  if (std::find(frozen_.begin(), frozen_.end(), id) != frozen_.end()) {
    // A ConnectionBind that reached this process during an upgrade: the peer connection is
    // the new process's, waiting there for a bind (docs/upgrade.md, "RFC 6062").
    data->close("its peer connection moves to the new process");
    return false;
  }
  data->setConnectionId(id);
  data->pipe(*peer->second);
  return true;
}

void PeerConnections::closeConnection(core::ConnectionId id) noexcept {
  auto it = connections_.find(id);
  if (it != connections_.end()) it->second->finish("closed by the relay");
}

void PeerConnections::onConnection(TcpListener& listener) noexcept {
  std::unique_ptr<StreamConnection> connection;
  try {
    connection = std::make_unique<StreamConnection>(StreamConnection::PeerTag{}, loop_.get(),
                                                    listener.stream(), *this, loop_.now());
  } catch (const std::exception& e) {
    std::uint64_t suppressed = 0;
    if (log_.mayLog(suppressed)) {
      log::warn("peer accept failed",
                {{"worker", log_.worker()}, {"error", e.what()}, {"suppressed", suppressed}});
    }
    return;
  }
  const auto id = server_.onPeerConnection(listener.id(), connection->tuple().client, loop_.now());
  if (!id) {
    // RFC 6062 §5.3: no permission for this peer.
    connection->close("peer has no permission");
    return;
  }
  connection->setConnectionId(*id);
  connections_[*id] = std::move(connection);
}

void PeerConnections::onClosed(StreamConnection& connection) noexcept {
  auto it = connections_.find(connection.connectionId());
  if (it == connections_.end() || it->second.get() != &connection) return;
  // The connection may be inside its own callback: it is deleted once that has returned.
  deferred_.add(std::move(it->second));
  connections_.erase(it);
  server_.onConnectionClosed(connection.connectionId());
}

void PeerConnections::onConnected(StreamConnection& connection, bool ok) noexcept {
  server_.onPeerConnected(connection.connectionId(), ok, loop_.now());
}

void PeerConnections::onPiped(StreamConnection& from, std::size_t bytes) noexcept {
  // Both sides of a pipe carry the peer connection's CONNECTION-ID.
  const auto now = loop_.now();
  const auto wait =
      server_.onConnectionRelayed(from.connectionId(), pipeDirection(from.peerSide()), bytes, now);
  // A paused TLS side still pipes the records it had decrypted: one entry per pause.
  if (wait.count() > 0 && !from.paused()) pause(from, now + wait);
}

void PeerConnections::pause(StreamConnection& side, core::TimePoint resume) noexcept {
  try {
    paused_.push_back({side.connectionId(), side.peerSide(), resume});
  } catch (const std::bad_alloc&) {
    checks::outOfMemory("paused pipe entry");
    return;  // better over the limit for a moment than stopped for good
  }
  side.pauseReading();
  armResumeTimer(resume);
}

void PeerConnections::armResumeTimer(core::TimePoint at) noexcept {
  if (resume_due_ && *resume_due_ <= at) return;
  const auto now = loop_.now();
  const auto delay = at > now ? std::chrono::ceil<std::chrono::milliseconds>(at - now).count() : 0;
  if (resume_timer_.start(static_cast<std::uint64_t>(delay))) resume_due_ = at;
}

StreamConnection* PeerConnections::side(core::ConnectionId id, bool peer_side) noexcept {
  auto it = connections_.find(id);
  if (it == connections_.end()) return nullptr;
  return peer_side ? it->second.get() : it->second->partner();
}

void PeerConnections::resumePipes() noexcept {
  resume_due_.reset();
  const auto now = loop_.now();
  std::optional<core::TimePoint> next;
  std::erase_if(paused_, [&](PausedPipe& p) {
    StreamConnection* paused_side = side(p.id, p.peer_side);
    if (paused_side == nullptr || paused_side->closed()) return true;
    const auto wait = server_.connectionWait(p.id, pipeDirection(p.peer_side), now);
    if (wait.count() > 0) {
      p.resume = now + wait;
      next = next ? std::min(*next, p.resume) : p.resume;
      return false;
    }
    paused_side->resumeReading();  // reading starts in a later loop iteration, not in this call
    return true;
  });
  if (next) armResumeTimer(*next);
}

void PeerConnections::finishAll() noexcept {
  auto connections = std::move(connections_);
  connections_.clear();
  for (auto& [id, connection] : connections) connection->finish("server stopping");
  paused_.clear();
  resume_timer_.close();
}

}  // namespace tern::io
