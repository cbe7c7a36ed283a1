// See live_relay_ports.hpp.
#include "relay/core/live_relay_ports.hpp"

#include <algorithm>

#include "relay/core/peer_policy.hpp"

namespace tern::core {

LiveRelayPorts::LiveRelayPorts(std::vector<wire::IpAddress> relay_ips)
    : ips_(std::move(relay_ips)),
      bitmaps_(std::make_unique<Bitmap[]>(2 * std::max<std::size_t>(ips_.size(), 1))) {
  for (auto& ip : ips_) ip = PeerPolicy::normalize(ip);
}

LiveRelayPorts::Bitmap* LiveRelayPorts::bitmap(RelayProtocol protocol,
                                               const wire::IpAddress& ip) const noexcept {
  const wire::IpAddress normalised = PeerPolicy::normalize(ip);
  for (std::size_t i = 0; i < ips_.size(); ++i) {
    if (ips_[i] == normalised) return &bitmaps_[2 * i + (protocol == RelayProtocol::kTcp ? 1 : 0)];
  }
  return nullptr;
}

void LiveRelayPorts::markOpen(RelayProtocol protocol, const wire::SocketAddress& local) noexcept {
  if (Bitmap* bits = bitmap(protocol, local.ip)) {
    (*bits)[local.port / 64].fetch_or(std::uint64_t{1} << (local.port % 64),
                                      std::memory_order_release);
  }
}

void LiveRelayPorts::markClosed(RelayProtocol protocol, const wire::SocketAddress& local) noexcept {
  if (Bitmap* bits = bitmap(protocol, local.ip)) {
    (*bits)[local.port / 64].fetch_and(~(std::uint64_t{1} << (local.port % 64)),
                                       std::memory_order_release);
  }
}

bool LiveRelayPorts::isOpen(RelayProtocol protocol, const wire::IpAddress& relay_ip,
                            std::uint16_t port) const noexcept {
  const Bitmap* bits = bitmap(protocol, relay_ip);
  return bits != nullptr && ((*bits)[port / 64].load(std::memory_order_acquire) &
                             (std::uint64_t{1} << (port % 64))) != 0;
}

}  // namespace tern::core
