// Which relayed transport addresses this process holds open right now, across every worker:
// the peer policy lets clients reach the relay's own addresses only there, so two allocations
// of one relay can talk (the common WebRTC case) while a service of the host that listens on
// a port of the relay range stays out of reach (CVE-2020-26262's class, DESIGN.md §4).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "relay/wire/address.hpp"

namespace tern::core {

// The peer side's transport: UDP relay sockets, or RFC 6062 TCP relay listeners.
enum class RelayProtocol : std::uint8_t { kUdp, kTcp };

class LiveRelayPorts {
 public:
  // The relay IPs are fixed for the process (--relay-ip is restart-only). Normalised here.
  explicit LiveRelayPorts(std::vector<wire::IpAddress> relay_ips);

  // The I/O layer marks a relay socket bound to `local` as open once it is bound, and closed
  // when it closes it. Any thread; lock-free. Addresses not on a relay IP are ignored.
  void markOpen(RelayProtocol protocol, const wire::SocketAddress& local) noexcept;
  void markClosed(RelayProtocol protocol, const wire::SocketAddress& local) noexcept;
  // True while this process holds a relay socket of `protocol` on exactly `relay_ip`:`port`.
  bool isOpen(RelayProtocol protocol, const wire::IpAddress& relay_ip,
              std::uint16_t port) const noexcept;

  // The relay IPs, normalised, in the order given.
  const std::vector<wire::IpAddress>& relayIps() const noexcept { return ips_; }

 private:
  // One bit per port, per relay IP and protocol: 8 KiB each.
  using Bitmap = std::array<std::atomic<std::uint64_t>, 65536 / 64>;
  Bitmap* bitmap(RelayProtocol protocol, const wire::IpAddress& ip) const noexcept;

  std::vector<wire::IpAddress> ips_;
  std::unique_ptr<Bitmap[]> bitmaps_;  // 2 per relay IP: UDP then TCP
};

}  // namespace tern::core
