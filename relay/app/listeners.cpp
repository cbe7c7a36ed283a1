// See listeners.hpp.
#include "relay/app/listeners.hpp"

#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <stdexcept>

#include "relay/io/log.hpp"

namespace tern::app {

using io::FileDescriptor;
using io::SocketKind;

namespace {

// The kernel silently caps SO_RCVBUF/SO_SNDBUF at a sysctl; say so, since a capped listener
// buffer drops media under load. Linux reports twice the size it granted.
void warnIfBufferCapped(int fd, int option, std::uint32_t wanted, const char* setting, const char* sysctl) {
  if (wanted == 0) return;
  int granted = 0;
  socklen_t length = sizeof granted;
  if (::getsockopt(fd, SOL_SOCKET, option, &granted, &length) != 0) return;
  if (static_cast<std::uint32_t>(granted) / 2 >= wanted) return;
  io::log::warn("udp buffer smaller than configured",
                {{"setting", setting}, {"wanted", wanted}, {"granted", granted / 2}, {"raise", sysctl}});
}

bool isLoopbackOrLinkLocal(const wire::IpAddress& ip) {
  const std::uint8_t* b = ip.data();
  if (ip.isV4()) return b[0] == 127 || (b[0] == 169 && b[1] == 254);
  static constexpr std::array<std::uint8_t, 16> kLoopback6{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return std::equal(kLoopback6.begin(), kLoopback6.end(), b) || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
}

}  // namespace

// Binds `workers` sockets of one kind for a TLS-only (TCP) or DTLS (UDP) listener.
std::vector<FileDescriptor> bindSecureAddress(wire::SocketAddress& address, unsigned workers, SocketKind kind) {
  if (address.port != 0) io::ensureAddressFree(kind, address);
  std::vector<FileDescriptor> fds;
  for (unsigned w = 0; w < workers; ++w) {
    fds.push_back(io::openBoundSocket(kind, address, {}));
    if (address.port == 0) address.port = io::localAddress(fds.back().get()).port;
  }
  return fds;
}

// Binds `workers` UDP and TCP sockets to one address. With port 0 the first UDP socket picks
// the port and the rest follow it, so every worker and both transports share one port.
BoundAddress bindAddress(const wire::SocketAddress& wanted, const config::Settings& settings) {
  const io::SocketOptions udp_options{settings.udp_receive_buffer, settings.udp_send_buffer};
  if (wanted.port != 0) {
    io::ensureAddressFree(SocketKind::kUdp, wanted);
    io::ensureAddressFree(SocketKind::kTcp, wanted);
  }
  for (int attempt = 0;; ++attempt) {
    BoundAddress bound{wanted, {}, {}};
    try {
      for (unsigned w = 0; w < settings.workers; ++w) {
        bound.udp.push_back(io::openBoundSocket(SocketKind::kUdp, bound.address, udp_options));
        if (bound.address.port == 0) bound.address.port = io::localAddress(bound.udp.back().get()).port;
      }
      for (unsigned w = 0; w < settings.workers; ++w) {
        bound.tcp.push_back(io::openBoundSocket(SocketKind::kTcp, bound.address, {}));
      }
      warnIfBufferCapped(bound.udp.front().get(), SO_RCVBUF, settings.udp_receive_buffer, "udp-receive-buffer",
                         "net.core.rmem_max");
      warnIfBufferCapped(bound.udp.front().get(), SO_SNDBUF, settings.udp_send_buffer, "udp-send-buffer",
                         "net.core.wmem_max");
      return bound;
    } catch (const std::runtime_error&) {
      // A port picked for UDP may be taken for TCP; pick again a few times.
      if (wanted.port != 0 || attempt == 4) throw;
    }
  }
}

// The host's own addresses (getifaddrs), for wildcard listeners: what to relay on and what
// the peer policy must treat as the relay itself.
std::vector<wire::IpAddress> hostAddresses() {
  std::vector<wire::IpAddress> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    const int family = i->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    out.push_back(io::fromSockaddr(i->ifa_addr).ip);
  }
  ::freeifaddrs(list);
  return out;
}

// --relay-ip, or else the specific --listen addresses, or else (wildcard listeners) the
// host's routable addresses.
std::vector<wire::IpAddress> relayAddresses(const config::Settings& settings) {
  if (!settings.relay_ips.empty()) return settings.relay_ips;
  std::vector<wire::IpAddress> out;
  bool wildcard = false;
  for (const auto& a : settings.listen) {
    if (a.ip.isUnspecified()) {
      wildcard = true;
    } else if (std::find(out.begin(), out.end(), a.ip) == out.end()) {
      out.push_back(a.ip);
    }
  }
  if (wildcard) {
    for (const auto& ip : hostAddresses()) {
      if (!isLoopbackOrLinkLocal(ip) && std::find(out.begin(), out.end(), ip) == out.end()) out.push_back(ip);
    }
  }
  if (out.empty()) throw std::runtime_error("no address to relay on: set --relay-ip");
  return out;
}

ListenerAddresses ClientSockets::addresses() const {
  ListenerAddresses a{{}, tls_addresses, dtls_addresses};
  for (const auto& bound : plain) a.plain.push_back(bound.address);
  return a;
}

std::vector<std::uint16_t> ClientSockets::ports() const {
  std::vector<std::uint16_t> ports;
  for (const auto& bound : plain) ports.push_back(bound.address.port);
  for (const auto* list : {&tls_addresses, &dtls_addresses}) {
    for (const auto& a : *list) ports.push_back(a.port);
  }
  return ports;
}

ClientSockets bindClientSockets(const config::Settings& settings) {
  ClientSockets l;
  for (const auto& a : settings.listen) l.plain.push_back(bindAddress(a, settings));
  l.tls_addresses = settings.tls_listen;
  for (auto& a : l.tls_addresses) l.tls_fds.push_back(bindSecureAddress(a, settings.workers, io::SocketKind::kTcp));
  l.dtls_addresses = settings.dtls_listen;
  for (auto& a : l.dtls_addresses) l.dtls_fds.push_back(bindSecureAddress(a, settings.workers, io::SocketKind::kUdp));
  return l;
}

std::vector<io::WorkerSockets> splitByWorker(ClientSockets& sockets, unsigned workers) {
  std::vector<io::WorkerSockets> all(workers);
  for (unsigned w = 0; w < workers; ++w) {
    io::WorkerSockets& mine = all[w];
    for (auto& bound : sockets.plain) {
      mine.udp.push_back(std::move(bound.udp[w]));
      mine.tcp.push_back(std::move(bound.tcp[w]));
    }
    for (auto& fds : sockets.tls_fds) mine.tls.push_back(std::move(fds[w]));
    for (auto& fds : sockets.dtls_fds) mine.dtls.push_back(std::move(fds[w]));
  }
  return all;
}

ClientSockets describeReceived(const std::vector<io::WorkerSockets>& workers) {
  auto addOnce = [](std::vector<wire::SocketAddress>& list, const wire::SocketAddress& a) {
    if (std::find(list.begin(), list.end(), a) == list.end()) list.push_back(a);
  };
  ClientSockets l;
  std::vector<wire::SocketAddress> plain;
  for (const auto& w : workers) {
    for (const auto& fd : w.udp) addOnce(plain, io::localAddress(fd.get()));
    for (const auto& fd : w.tls) addOnce(l.tls_addresses, io::localAddress(fd.get()));
    for (const auto& fd : w.dtls) addOnce(l.dtls_addresses, io::localAddress(fd.get()));
  }
  if (plain.empty()) throw std::runtime_error("hand-over: the old process sent no UDP listener");
  for (const auto& a : plain) l.plain.push_back(BoundAddress{a, {}, {}});
  return l;
}

}  // namespace tern::app
