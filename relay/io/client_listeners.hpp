// The client side of a worker: the listening sockets clients reach it on (UDP, TCP, TLS and
// DTLS, bound with SO_REUSEPORT before the worker starts) and the way client packets enter
// the core and answers leave it.
#pragma once

#include <memory>
#include <vector>

#include "metrics/worker_counters.hpp"
#include "relay/core/server_output.hpp"
#include "relay/io/dtls_endpoint.hpp"
#include "relay/io/dtls_forward_channel.hpp"
#include "relay/io/event_loop.hpp"
#include "relay/io/io_batch.hpp"
#include "relay/io/tcp_listener.hpp"
#include "relay/io/udp_listener.hpp"
#include "relay/io/worker_log.hpp"
#include "relay/io/worker_setup.hpp"

namespace tern::core {
class TurnServer;
}

namespace tern::io {

class ClientConnections;

// Every client packet enters the core here: UDP datagrams, decrypted DTLS records and stream
// frames. STUN requests are timed for tern_request_duration_seconds; media is not, so it
// costs no clock read.
class ClientIngress final : public DatagramHandler, public DtlsEndpoint::Host {
 public:
  ClientIngress(const EventLoop& loop, core::TurnServer& server, metrics::WorkerCounters& counters,
                WorkerLog& log) noexcept
      : loop_(loop), server_(server), counters_(counters), log_(log) {}

  void onClientPacket(const core::FiveTuple& tuple, wire::Bytes data) noexcept;

  // --- DatagramHandler: a datagram on a --listen UDP socket.
  void onDatagram(UdpListener& socket, const wire::SocketAddress& from,
                  wire::Bytes data) noexcept override {
    onClientPacket({core::Transport::kUdp, from, socket.localAddress()}, data);
  }
  // --- DtlsEndpoint::Host
  void onDtlsPlaintext(const core::FiveTuple& tuple, wire::Bytes data) noexcept override {
    onClientPacket(tuple, data);
  }
  bool mayLog(std::uint64_t& suppressed) noexcept override { return log_.mayLog(suppressed); }
  void onDtlsSessionEnded(const core::FiveTuple& tuple) noexcept override;

 private:
  const EventLoop& loop_;
  core::TurnServer& server_;
  metrics::WorkerCounters& counters_;
  WorkerLog& log_;
};

// The listening sockets and the DTLS sessions on them; answers go out through the socket or
// connection a client's 5-tuple names (core::ClientOutput).
class ClientListeners final : public core::ClientOutput, private ForwardChannel::Handler {
 public:
  enum class Kind : std::uint8_t { kUdp, kTcp, kTls, kDtls };

  // Takes over the worker's bound listening sockets. TCP and TLS connections go to
  // `connections`, everything else a client sends to `ingress`.
  ClientListeners(EventLoop& loop, IoBatch& batch, WorkerSockets sockets, const WorkerSetup& setup,
                  metrics::WorkerCounters& counters, ClientIngress& ingress,
                  ClientConnections& connections);

  bool sendToClient(const core::FiveTuple& tuple,
                    std::span<const wire::Bytes> parts) noexcept override;

  // A reload's DTLS certificate, for new sessions.
  void setDtlsContext(std::shared_ptr<const TlsContext> dtls) noexcept {
    dtls_endpoint_.setContext(std::move(dtls));
  }
  // DTLS: retransmit lost handshake flights; forget sessions silent past the idle timeout.
  void onTick(std::chrono::seconds idle_timeout) noexcept { dtls_endpoint_.onTick(idle_timeout); }
  // The worker is stopping: DTLS sessions end (with close_notify), sockets close.
  void forgetDtlsSessions() noexcept { dtls_endpoint_.clear(); }
  void closeAll() noexcept;
  // An upgrade (docs/upgrade.md): stop and resume reading the datagram listeners (UDP, DTLS);
  // what clients send meanwhile waits in the sockets' buffers for the new process. TCP and
  // TLS listeners keep accepting until the old process closes them.
  void pauseDatagrams() noexcept;
  void resumeDatagrams() noexcept;
  // An upgrade keeps this process's established DTLS sessions here (dtls_forwarding.hpp).
  // Freeze: lists them and opens the socket pair; the other end's descriptor (owned here
  // until commit or thaw), or -1 when there is no session.
  int offerDtlsSessions(std::vector<DtlsSessionRef>& sessions);
  // Commit: serve the listed sessions on what the new process passes back, replying through
  // this process's copy of their listeners. Thaw: nothing stays apart.
  void keepDtlsSessions() noexcept;
  void withdrawDtlsOffer() noexcept { offered_ = {}; }
  bool hasDtlsSession(const core::FiveTuple& tuple) const noexcept {
    return dtls_endpoint_.hasSession(tuple);
  }
  // Commit: closes what moved: every listener but the DTLS ones whose sessions stay.
  void closeHandedOver() noexcept;

  // Every listening socket with its kind: the worker's inventory.
  template <class F>
  void forEach(F&& f) const {
    for (const auto& u : udp_) f(Kind::kUdp, u->localAddress(), u->fd());
    for (const auto& t : tcp_)
      f(t->requireTls() ? Kind::kTls : Kind::kTcp, t->localAddress(), t->fd());
    for (const auto& d : dtls_) f(Kind::kDtls, d->localAddress(), d->fd());
  }

 private:
  void onForwardFrame(ForwardChannel& channel, const ForwardFrame& frame) noexcept override;
  void onForwardClosed(ForwardChannel& channel) noexcept override;

  ClientConnections& connections_;
  EventLoop* loop_ = nullptr;
  DtlsEndpoint dtls_endpoint_;  // the handler of dtls_, declared before them
  std::vector<std::unique_ptr<UdpListener>> udp_;
  std::vector<std::unique_ptr<TcpListener>> tcp_;
  std::vector<std::unique_ptr<UdpListener>> dtls_;
  std::unique_ptr<DtlsForwarder> forwarder_;  // new process: the old one's DTLS sessions
  std::array<FileDescriptor, 2> offered_;     // old process, frozen: the socket pair
  std::unique_ptr<ForwardChannel> back_;      // old process, committed: its end of it
};

}  // namespace tern::io
