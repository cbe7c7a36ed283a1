// The client side of a worker; see client_listeners.hpp.
#include "relay/io/client_listeners.hpp"

#include "relay/core/turn_server.hpp"
#include "relay/io/client_connections.hpp"
#include "relay/io/log.hpp"

namespace tern::io {

void ClientIngress::onClientPacket(const core::FiveTuple& tuple, wire::Bytes data) noexcept {
  if (data.empty() || data[0] >= 0x40) {  // ChannelData (0x40-0x7F) or not STUN
    server_.onClientPacket(tuple, data, loop_.now());
    return;
  }
  const auto header = wire::parseHeader(data);
  if (!header || !header->isRequest()) {
    server_.onClientPacket(tuple, data, loop_.now());
    return;
  }
  const std::uint64_t start = uv_hrtime();
  server_.onClientPacket(tuple, data, loop_.now());
  counters_.request_duration[metrics::idx(metrics::requestMethodOf(header->method()))].observe(
      static_cast<double>(uv_hrtime() - start) / 1e9);
}

void ClientIngress::onDtlsSessionEnded(const core::FiveTuple& tuple) noexcept {
  server_.onClientClosed(tuple, loop_.now());
}

ClientListeners::ClientListeners(EventLoop& loop, IoBatch& batch, WorkerSockets sockets,
                                 const WorkerSetup& setup, metrics::WorkerCounters& counters,
                                 ClientIngress& ingress, ClientConnections& connections)
    : connections_(connections),
      dtls_endpoint_(ingress, loop, counters, setup.dtls, setup.dtls_limits) {
  for (auto& fd : sockets.udp)
    udp_.push_back(std::make_unique<UdpListener>(loop.get(), std::move(fd), ingress, batch));
  for (auto& fd : sockets.tcp)
    tcp_.push_back(std::make_unique<TcpListener>(loop.get(), std::move(fd), connections));
  for (auto& fd : sockets.tls) {
    tcp_.push_back(std::make_unique<TcpListener>(loop.get(), std::move(fd), connections, true));
  }
  for (auto& fd : sockets.dtls) {
    // The id is the listener's place: DtlsSessionRef::listener and ForwardTable's socket.
    const auto id = static_cast<std::uint32_t>(dtls_.size());
    dtls_.push_back(
        std::make_unique<UdpListener>(loop.get(), std::move(fd), dtls_endpoint_, batch, id));
  }
  if (!sockets.dtls_forward.empty()) {
    forwarder_ = std::make_unique<DtlsForwarder>(loop.get(), counters, setup.options.worker_index,
                                                 std::move(sockets.dtls_forward));
    dtls_endpoint_.setForwarder(forwarder_.get());
  }
  loop_ = &loop;
}

bool ClientListeners::sendToClient(const core::FiveTuple& tuple,
                                   std::span<const wire::Bytes> parts) noexcept {
  if (tuple.transport == core::Transport::kDtls) return dtls_endpoint_.send(tuple, parts);
  if (tuple.transport == core::Transport::kUdp) {
    for (auto& u : udp_) {
      if (u->localAddress() == tuple.server) return u->send(tuple.client, parts);
    }
    return false;
  }
  return connections_.send(tuple, parts);
}

void ClientListeners::pauseDatagrams() noexcept {
  for (auto& u : udp_) u->pause();
  for (auto& d : dtls_) d->pause();
}

void ClientListeners::resumeDatagrams() noexcept {
  for (auto& u : udp_) u->resume();
  for (auto& d : dtls_) d->resume();
}

void ClientListeners::closeAll() noexcept {
  for (auto& u : udp_) u->close();
  for (auto& d : dtls_) d->close();
  for (auto& t : tcp_) t->close();
  if (forwarder_) forwarder_->close();
  if (back_) back_->close();
  offered_ = {};
}

int ClientListeners::offerDtlsSessions(std::vector<DtlsSessionRef>& sessions) {
  dtls_endpoint_.listEstablished(sessions);
  if (sessions.empty()) return -1;
  offered_ = ForwardChannel::openPair();
  return offered_[1].get();
}

void ClientListeners::keepDtlsSessions() noexcept {
  if (!offered_[0]) {
    // Nothing offered (no established session, or no socket pair): whatever is here ends,
    // with close_notify, since the new process reads the listeners now.
    dtls_endpoint_.clear();
    return;
  }
  try {
    back_ = std::make_unique<ForwardChannel>(loop_->get(), std::move(offered_[0]),
                                             static_cast<ForwardChannel::Handler&>(*this), 0);
    dtls_endpoint_.setBackChannel(back_.get());
  } catch (const std::exception& e) {
    log::warn("dtls sessions cannot stay: they end", {{"error", e.what()}});
    dtls_endpoint_.clear();
  }
  offered_ = {};  // the new process holds the other end now
}

void ClientListeners::closeHandedOver() noexcept {
  for (auto& u : udp_) u->close();
  for (auto& t : tcp_) t->close();
  // Paused for good: the new process reads them; replies to the sessions that stay go out
  // through this process's copy (sending from two processes on one socket is fine).
  if (!back_) {
    for (auto& d : dtls_) d->close();
  }
}

void ClientListeners::onForwardFrame(ForwardChannel&, const ForwardFrame& frame) noexcept {
  if (frame.header.kind != ForwardKind::kDatagram || frame.header.session.listener >= dtls_.size())
    return;
  dtls_endpoint_.onForwarded(*dtls_[frame.header.session.listener], frame.header.session.client,
                             frame.payload);
}

void ClientListeners::onForwardClosed(ForwardChannel&) noexcept {
  // The new process is gone: no datagram of these sessions arrives any more; they end at
  // their idle timeout or with this process.
  dtls_endpoint_.setBackChannel(nullptr);
}

}  // namespace tern::io
