// What a SIGHUP reload can change in a running relay, and what it cannot: the settings
// built into worker options and services (credentials, certificate, peer policy, limits),
// and the restart-only settings that keep their running values.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "relay/config/config.hpp"
#include "relay/core/live_relay_ports.hpp"
#include "relay/core/server_options.hpp"
#include "relay/io/revocations.hpp"
#include "relay/io/shared_quota.hpp"
#include "relay/io/tls.hpp"

namespace tern::app {

// What a reload may change, built from one Settings; everything else needs a restart.
struct Reloadable {
  core::ServerOptions options;
  core::ServerServices services;
  std::shared_ptr<const io::TlsContext> tls;
  std::shared_ptr<const io::TlsContext> dtls;
};

// What stays the same for the life of the process and goes into every Reloadable.
struct NodeIdentity {
  const std::vector<wire::IpAddress>& relay_ips;  // fixed at start-up
  const std::array<std::uint8_t, 32>& nonce_key;  // nonces handed out stay valid across reloads
  std::shared_ptr<io::SharedQuota> quota;         // keeps its counts; a reload sets new limits
  std::shared_ptr<io::RevocationList> revocations;  // operators' revocations, kept across reloads
  // The ports tern listens on once bound (port 0 resolved), which the peer policy keeps out
  // of reach; the metrics port is added from the settings.
  const std::vector<std::uint16_t>& listener_ports;
  // The relayed addresses open now: on the relay's own addresses, only these are peers.
  std::shared_ptr<const core::LiveRelayPorts> live_relays;
};

// The parts of `settings` a reload can change, ready for the workers. Throws on a secret,
// user list or certificate that does not load.
Reloadable buildReloadable(const config::Settings& settings, const NodeIdentity& node);

// The settings a running process cannot change (sockets, threads, ranges), by option name,
// where `next` differs from `running`.
std::vector<std::string> restartOnlyChanges(const config::Settings& running, const config::Settings& next);

// Gives `next` the running values of every restart-only setting, before anything is built
// from it: the peer policy must guard the ports and addresses in use, and listeners opened
// with TLS (or without) stay that way. The next reload compares against these values too.
void keepRestartOnly(config::Settings& next, const config::Settings& running);

}  // namespace tern::app
