// The client side of a worker; see client_listeners.hpp.
#include "relay/io/client_listeners.hpp"

#include "relay/core/turn_server.hpp"
#include "relay/io/client_connections.hpp"

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
    dtls_.push_back(
        std::make_unique<UdpListener>(loop.get(), std::move(fd), dtls_endpoint_, batch));
  }
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
}

}  // namespace tern::io
