// What `tern serve` tells the operator once its workers run, and the limits derived from the
// open files limit that the log and the workers share.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "relay/config/config.hpp"

namespace tern::app {

// Where the relay listens: --listen (UDP and TCP), --tls-listen, --dtls-listen.
struct ListenerAddresses {
  std::vector<wire::SocketAddress> plain;
  std::vector<wire::SocketAddress> tls;
  std::vector<wire::SocketAddress> dtls;
};

// Where tern listens and relays, its abuse limits, and settings that will refuse or cap
// clients.
void logStart(const config::Settings& settings, const ListenerAddresses& listeners,
              const std::vector<wire::IpAddress>& relay_ips, std::uint64_t files_limit);

// --max-tcp-connections auto: half the descriptors this process may open, so a flood of
// connections leaves the other half for relay sockets (one per UDP allocation).
std::uint32_t totalConnectionLimit(const config::Settings& settings, std::uint64_t files_limit);
// --max-dtls-sessions auto: the same half. A session holds no descriptor itself, but one
// that serves a call holds a relay socket, so a node sized for its descriptors is sized
// for that many sessions, and a flood cannot hold more memory than real callers would.
std::uint32_t totalDtlsSessionLimit(const config::Settings& settings, std::uint64_t files_limit);

// "192.0.2.1,2001:db8::1" and "49152-65535", for the start-up log and systemd's status.
std::string relayIpsText(const std::vector<wire::IpAddress>& relay_ips);
std::string relayPortsText(const config::Settings& settings);

}  // namespace tern::app
