// The worker's TCP and TLS client connections; see client_connections.hpp.
#include "relay/io/client_connections.hpp"

#include <vector>

#include "relay/core/turn_server.hpp"
#include "relay/io/client_listeners.hpp"
#include "relay/io/log.hpp"
#include "relay/io/peer_connections.hpp"
#include "relay/wire/checks.hpp"

namespace tern::io {

ClientConnections::ClientConnections(EventLoop& loop, IoBatch& batch, DeferredDelete& deferred,
                                     const WorkerSetup& setup, metrics::WorkerCounters& counters,
                                     WorkerLog& log, ClientIngress& ingress, PeerConnections& pipes,
                                     core::TurnServer& server, std::chrono::seconds idle_timeout)
    : loop_(loop),
      batch_(batch),
      deferred_(deferred),
      setup_(setup),
      counters_(counters),
      log_(log),
      ingress_(ingress),
      pipes_(pipes),
      server_(server),
      tls_(setup.tls),
      idle_timeout_(idle_timeout) {}

void ClientConnections::onConnection(TcpListener& listener) noexcept {
  try {
    auto connection = std::make_unique<StreamConnection>(loop_.get(), listener.stream(), *this,
                                                         loop_.now(), tls_, listener.requireTls());
    if (fromProxy(connection->tuple().client.ip)) {
      // The limits count the client the header names (onProxyHeader), not the proxy.
      connection->expectProxyHeader(loop_.now());
      connections_[{connection->tuple().client, connection->tuple().server}] =
          std::move(connection);
      updateGauge();
      return;
    }
    const auto admission = setup_.connection_limits->acquire(connection->tuple().client.ip);
    if (admission.verdict != ConnectionLimits::Verdict::kAccepted) {
      refuse(*connection, admission);
      return;  // it is not in connections_, so onClosed() ignored it; its handle closes itself
    }
    Key key{connection->tuple().client, connection->tuple().server};
    try {
      connections_[key] = std::move(connection);
    } catch (...) {
      setup_.connection_limits->release(key.client.ip);
      throw;
    }
    updateGauge();
  } catch (const std::exception& e) {
    // Accept can fail when the client has already gone (ECONNABORTED) or fds run out.
    std::uint64_t suppressed = 0;
    if (log_.mayLog(suppressed)) {
      log::warn("tcp accept failed",
                {{"worker", log_.worker()}, {"error", e.what()}, {"suppressed", suppressed}});
    }
  }
}

// Over --max-tcp-connections-per-ip or --max-tcp-connections: reset at once, before a byte is
// read (no TLS session, no buffer), counted, and logged once per source until its count
// falls under the limit again (and within the worker's line budget).
void ClientConnections::refuse(StreamConnection& connection,
                               const ConnectionLimits::Admission& admission) noexcept {
  const bool per_source = admission.verdict == ConnectionLimits::Verdict::kSourceLimit;
  counters_.tcpConnectionRefused(per_source ? metrics::ConnectionLimit::kPerIp
                                            : metrics::ConnectionLimit::kTotal);
  std::uint64_t suppressed = 0;
  if (admission.first_refusal && log::enabled(log::LogLevel::kWarn) && log_.mayLog(suppressed)) {
    log::write(log::LogLevel::kWarn,
               "tcp connection refused: over a connection limit; more from this source "
               "are refused silently until it closes some",
               {{"client", connection.tuple().client.ip.toString()},
                {"limit", per_source ? "max-tcp-connections-per-ip" : "max-tcp-connections"},
                {"worker", log_.worker()},
                {"suppressed", suppressed}});
  }
  connection.reset(per_source ? "over --max-tcp-connections-per-ip" : "over --max-tcp-connections");
}

void ClientConnections::onFrame(StreamConnection& connection, wire::Bytes frame) noexcept {
  ingress_.onClientPacket(connection.tuple(), frame);
}

void ClientConnections::onClosed(StreamConnection& connection) noexcept {
  auto it = connections_.find({connection.tuple().client, connection.tuple().server});
  if (it == connections_.end() || it->second.get() != &connection) return;
  // The connection may be inside its own callback: it is deleted once that has returned.
  deferred_.add(std::move(it->second));
  connections_.erase(it);
  // A proxy's connection holds a place only once its header named the client.
  if (!connection.awaitingProxyHeader())
    setup_.connection_limits->release(connection.tuple().client.ip);
  updateGauge();
  server_.onClientClosed(connection.tuple(), loop_.now());
}

void ClientConnections::onPiped(StreamConnection& from, std::size_t bytes) noexcept {
  pipes_.onPiped(from, bytes);
}

StreamConnection* ClientConnections::find(const core::FiveTuple& tuple) noexcept {
  auto it = connections_.find({tuple.client, tuple.server});
  return it == connections_.end() ? nullptr : it->second.get();
}

void ClientConnections::adopt(DetachedConnection& detached) noexcept {
  try {
    auto connection = std::make_unique<StreamConnection>(loop_.get(), detached, *this, loop_.now());
    StreamConnection* raw = connection.get();
    connections_[{raw->tuple().client, raw->tuple().server}] = std::move(connection);
    // The worker it came from released its place when it let it go.
    setup_.connection_limits->adopt(raw->tuple().client.ip);
    updateGauge();
    raw->inject(detached.unread);
  } catch (const std::exception& e) {
    log::warn("connection hand-over failed", {{"worker", log_.worker()}, {"error", e.what()}});
  }
}

std::unique_ptr<DetachedConnection> ClientConnections::detach(
    const core::FiveTuple& tuple) noexcept {
  StreamConnection* connection = find(tuple);
  if (connection == nullptr) return nullptr;
  std::unique_ptr<DetachedConnection> detached = connection->detach();
  if (!detached) connection->close("connection could not be moved to its worker");
  return detached;
}

void ClientConnections::freezeForUpgrade(std::vector<core::ConnectionSnapshot>& moving,
                                         std::vector<int>& fds) noexcept {
  for (auto& [key, connection] : connections_) {
    try {
      moving.reserve(moving.size() + 1);
      fds.reserve(fds.size() + 1);
    } catch (const std::bad_alloc&) {
      checks::outOfMemory("connection upgrade");
      return;  // the rest stay with this process
    }
    auto unread = connection->freezeForUpgrade();
    if (!unread) continue;
    moving.push_back({connection->tuple(), std::move(*unread)});
    fds.push_back(connection->fd());
  }
}

void ClientConnections::thawAfterUpgrade(const std::vector<core::FiveTuple>& moving) noexcept {
  for (const auto& tuple : moving) {
    if (StreamConnection* c = find(tuple)) c->resumeReading();
  }
}

void ClientConnections::forgetHandedOver(const std::vector<core::FiveTuple>& moving) noexcept {
  // Closing the handle closes only this process's descriptor: the connection lives on in
  // the new process, which holds its own.
  for (const auto& tuple : moving) {
    if (StreamConnection* c = find(tuple)) c->close("handed over to the new process");
  }
}

void ClientConnections::restore(core::ConnectionSnapshot snapshot, FileDescriptor fd) noexcept {
  DetachedConnection detached{std::move(fd), snapshot.tuple, nullptr, std::move(snapshot.unread)};
  adopt(detached);
}

void ClientConnections::closeIdle(core::TimePoint now) noexcept {
  std::vector<StreamConnection*> idle;
  std::vector<StreamConnection*> late;
  for (auto& [key, connection] : connections_) {
    // A data connection lives as long as its allocation; the allocation's expiry ends it.
    if (connection->piped()) continue;
    if (connection->awaitingProxyHeader()) {
      if (now - connection->proxyHeaderSince() > kProxyHeaderTimeout)
        late.push_back(connection.get());
      continue;
    }
    if (now - connection->lastActivity() > idle_timeout_) idle.push_back(connection.get());
  }
  for (auto* connection : idle) connection->finish("idle timeout");
  for (auto* connection : late) {
    proxyRefused(*connection, metrics::ProxyRejection::kTimeout);
    connection->reset("no whole PROXY protocol header in time");
  }
}

void ClientConnections::finishAll() noexcept {
  auto connections = std::move(connections_);
  connections_.clear();
  for (auto& [key, connection] : connections) connection->finish("server stopping");
}

void ClientConnections::updateGauge() noexcept {
  counters_.tcp_connections_open.set(static_cast<std::int64_t>(connections_.size()));
}

}  // namespace tern::io
