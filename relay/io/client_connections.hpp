// The TCP and TLS client connections of a worker (RFC 8656 §3.1; RFC 6062 control and data
// connections): accepted under the connection limits, framed, idle-timed, and handed to or
// taken from other workers. Keyed by the client's and the listener's address.
#pragma once

#include <chrono>
#include <memory>
#include <unordered_map>

#include "metrics/worker_counters.hpp"
#include "relay/io/event_loop.hpp"
#include "relay/io/io_batch.hpp"
#include "relay/io/stream_connection.hpp"
#include "relay/io/tcp_listener.hpp"
#include "relay/io/worker_log.hpp"
#include "relay/io/worker_setup.hpp"

namespace tern::core {
class TurnServer;
}

namespace tern::io {

class ClientIngress;
class PeerConnections;

class ClientConnections final : public ConnectionAcceptor, public StreamHandler {
 public:
  ClientConnections(EventLoop& loop, IoBatch& batch, DeferredDelete& deferred,
                    const WorkerSetup& setup, metrics::WorkerCounters& counters, WorkerLog& log,
                    ClientIngress& ingress, PeerConnections& pipes, core::TurnServer& server,
                    std::chrono::seconds idle_timeout);

  // --- ConnectionAcceptor: a client connected to a --listen TCP or --tls-listen port.
  void onConnection(TcpListener& listener) noexcept override;
  // --- StreamHandler
  IoBatch* ioBatch() noexcept override { return &batch_; }
  void onFrame(StreamConnection& connection, wire::Bytes frame) noexcept override;
  void onClosed(StreamConnection& connection) noexcept override;
  void onPiped(StreamConnection& from, std::size_t bytes) noexcept override;
  void onProxyHeader(StreamConnection& connection, const core::FiveTuple& before) noexcept override;
  void onProxyHeaderRefused(StreamConnection& connection,
                            wire::ProxyHeaderError error) noexcept override;

  // How long a load balancer's connection may take to send its whole PROXY header.
  static constexpr std::chrono::seconds kProxyHeaderTimeout{5};

  StreamConnection* find(const core::FiveTuple& tuple) noexcept;
  bool send(const core::FiveTuple& tuple, std::span<const wire::Bytes> parts) noexcept {
    StreamConnection* connection = find(tuple);
    return connection != nullptr && connection->send(parts);
  }
  // Takes over a connection another worker detached, and processes its unread bytes.
  void adopt(DetachedConnection& detached) noexcept;
  // Lets the connection of `tuple` go to another worker: null (and the connection closed)
  // if it cannot be detached now, or if there is none.
  std::unique_ptr<DetachedConnection> detach(const core::FiveTuple& tuple) noexcept;

  // An upgrade (docs/upgrade.md): freezes every connection that can move, listing it with its
  // descriptor; thaw resumes them (the upgrade failed); forget closes this process's copies
  // once the new process holds them (their allocations must be gone from the core first).
  void freezeForUpgrade(std::vector<core::ConnectionSnapshot>& moving, std::vector<int>& fds) noexcept;
  void thawAfterUpgrade(const std::vector<core::FiveTuple>& moving) noexcept;
  void forgetHandedOver(const std::vector<core::FiveTuple>& moving) noexcept;
  // In the new process, before the loop runs: takes over a connection the old one held.
  void restore(core::ConnectionSnapshot snapshot, FileDescriptor fd) noexcept;

  // A reload: new connections use these settings.
  void reconfigure(std::shared_ptr<const TlsContext> tls,
                   std::chrono::seconds idle_timeout) noexcept {
    tls_ = std::move(tls);
    idle_timeout_ = idle_timeout;
  }
  std::chrono::seconds idleTimeout() const noexcept { return idle_timeout_; }
  // Once a second: ends connections idle past the timeout that carry no pipe, and those
  // still without their PROXY header past kProxyHeaderTimeout.
  void closeIdle(core::TimePoint now) noexcept;
  // The worker is stopping: every connection ends in order (TLS close_notify).
  void finishAll() noexcept;

  // Every client connection: the worker's inventory.
  template <class F>
  void forEach(F&& f) const {
    for (const auto& [key, connection] : connections_) f(*connection);
  }

 private:
  struct Key {
    wire::SocketAddress client;
    wire::SocketAddress server;
    friend bool operator==(const Key&, const Key&) noexcept = default;
  };
  struct KeyHash {
    std::size_t operator()(const Key& k) const noexcept {
      return wire::hashOf(k.client) * 31 + wire::hashOf(k.server);
    }
  };

  void refuse(StreamConnection& connection, const ConnectionLimits::Admission& admission) noexcept;
  void updateGauge() noexcept;
  // True for connections from a --proxy-protocol-from source (which must send a header).
  bool fromProxy(const wire::IpAddress& ip) const noexcept;
  void proxyRefused(const StreamConnection& connection, metrics::ProxyRejection why) noexcept;

  EventLoop& loop_;
  IoBatch& batch_;
  DeferredDelete& deferred_;
  const WorkerSetup& setup_;
  metrics::WorkerCounters& counters_;
  WorkerLog& log_;
  ClientIngress& ingress_;
  PeerConnections& pipes_;
  core::TurnServer& server_;
  std::shared_ptr<const TlsContext> tls_;  // for new connections; replaced on reload
  std::chrono::seconds idle_timeout_;      // replaced on reload
  std::unordered_map<Key, std::unique_ptr<StreamConnection>, KeyHash> connections_;
};

}  // namespace tern::io
