// The sockets `tern serve` listens on and the addresses it relays on, bound in the main
// thread before any worker runs, so an address error stops start-up cleanly.
#pragma once

#include <vector>

#include "relay/config/config.hpp"
#include "relay/io/socket_util.hpp"

namespace tern::app {

struct BoundAddress {
  wire::SocketAddress address;  // with the real port when port 0 was asked for
  std::vector<io::FileDescriptor> udp;  // one per worker
  std::vector<io::FileDescriptor> tcp;
};

// Binds `workers` UDP and TCP sockets to one address (SO_REUSEPORT). With port 0 the first
// UDP socket picks the port and the rest follow it, so every worker and both transports share
// one port. Throws on an address another process serves.
BoundAddress bindAddress(const wire::SocketAddress& wanted, const config::Settings& settings);
// Binds `workers` sockets of one kind for a TLS-only (TCP) or DTLS (UDP) listener; port 0 is
// replaced by the port picked.
std::vector<io::FileDescriptor> bindSecureAddress(wire::SocketAddress& address, unsigned workers,
                                                  io::SocketKind kind);
// The host's own addresses (getifaddrs), for wildcard listeners.
std::vector<wire::IpAddress> hostAddresses();
// --relay-ip, or else the specific --listen addresses, or else (wildcard listeners) the
// host's routable addresses. Throws when there is none.
std::vector<wire::IpAddress> relayAddresses(const config::Settings& settings);

}  // namespace tern::app
