// The sockets `tern serve` listens on and the addresses it relays on, bound in the main
// thread before any worker runs, so an address error stops start-up cleanly.
#pragma once

#include <vector>

#include "relay/app/start_log.hpp"
#include "relay/config/config.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/io/worker_setup.hpp"

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
// Every client-facing socket, one per worker for each address, until splitByWorker hands
// them out; after an upgrade only the addresses of what the old process handed over.
struct ClientSockets {
  std::vector<BoundAddress> plain;  // --listen: UDP and TCP
  std::vector<wire::SocketAddress> tls_addresses;
  std::vector<std::vector<io::FileDescriptor>> tls_fds;
  std::vector<wire::SocketAddress> dtls_addresses;
  std::vector<std::vector<io::FileDescriptor>> dtls_fds;

  ListenerAddresses addresses() const;
  // Every port listened on (port 0 resolved), which the peer policy keeps out of reach.
  std::vector<std::uint16_t> ports() const;
};
// Binds every --listen, --tls-listen and --dtls-listen address for `settings.workers`.
ClientSockets bindClientSockets(const config::Settings& settings);
// Each worker's own socket of every listener.
std::vector<io::WorkerSockets> splitByWorker(ClientSockets& sockets, unsigned workers);
// The addresses of sockets an upgrade handed over (getsockname), for the log and the peer
// policy. Throws if there is no UDP listener among them.
ClientSockets describeReceived(const std::vector<io::WorkerSockets>& workers);

// The host's own addresses (getifaddrs), for wildcard listeners.
std::vector<wire::IpAddress> hostAddresses();
// --relay-ip, or else the specific --listen addresses, or else (wildcard listeners) the
// host's routable addresses. Throws when there is none.
std::vector<wire::IpAddress> relayAddresses(const config::Settings& settings);

}  // namespace tern::app
