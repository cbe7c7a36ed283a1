// See reload.hpp.
#include "relay/app/reload.hpp"

#include <set>

#include "auth/authenticator.hpp"
#include "auth/credential_store.hpp"
#include "auth/mobility_ticket.hpp"
#include "auth/nonce.hpp"
#include "relay/app/listeners.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/wire/cidr.hpp"

namespace tern::app {

// config validated --max-bps against its own copy of the range BandwidthLimit computes
// exactly (config sits below core); this is where the two meet, so this is where they agree.
static_assert(config::kMinBitsPerSecond == core::BandwidthLimit::kMinBitsPerSecond &&
              config::kMaxBitsPerSecond == core::BandwidthLimit::kMaxBitsPerSecond);

Reloadable buildReloadable(const config::Settings& settings, const NodeIdentity& node) {
  Reloadable r;
  if (settings.hasTls()) {
    r.tls = io::TlsContext::load(settings.cert, settings.key);
    r.dtls = io::TlsContext::load(settings.cert, settings.key, io::TlsContext::Kind::kDtls);
  }
  auth::CredentialOptions credentials;
  credentials.realm = settings.realm;
  credentials.rest_secrets = settings.auth_secrets;
  for (const auto& u : settings.users) credentials.static_users.push_back({u.name, u.password});
  auto store = std::make_shared<const auth::CredentialStore>(std::move(credentials));
  // The same key across reloads: nonces handed out before stay valid.
  auto nonces =
      std::make_shared<const auth::NonceIssuer>(node.nonce_key, std::chrono::seconds(settings.nonce_lifetime));
  r.services.authenticator = std::make_shared<const auth::Authenticator>(
      store, nonces, auth::OAuthSettings{settings.oauth_keys, settings.oauth_server_name});

  core::PeerPolicyOptions policy;
  for (const auto& text : settings.allow_peers) policy.allow.push_back(*wire::Cidr::parse(text));
  for (const auto& text : settings.deny_peers) policy.deny.push_back(*wire::Cidr::parse(text));
  // Every address of the host is an own address, whatever tern listens on: the host's traffic
  // to itself passes no firewall, so a service on any of them (loopback, a container bridge, a
  // second public address) must not become reachable through the relay. Read again on reload.
  std::set<wire::IpAddress> own(node.relay_ips.begin(), node.relay_ips.end());
  for (const auto& ip : hostAddresses()) own.insert(ip);
  for (const auto& e : settings.external_ips) {
    own.insert(e.public_ip);
    if (e.private_ip) own.insert(*e.private_ip);
  }
  for (const auto& a : settings.listen) own.insert(a.ip);
  policy.own_addresses.assign(own.begin(), own.end());
  policy.live_relays = node.live_relays;
  for (const auto& e : settings.external_ips) policy.external_ips.push_back({e.public_ip, e.private_ip});
  policy.allow_own_address_peers = settings.allow_own_address_peers;
  policy.listener_ports = node.listener_ports;
  if (settings.metrics_listen) policy.listener_ports.push_back(settings.metrics_listen->port);
  r.services.peer_policy = std::make_shared<const core::PeerPolicy>(std::move(policy));
  r.services.quota = node.quota;
  r.services.revocations = node.revocations;

  r.options.software = settings.software;
  r.options.max_lifetime = std::chrono::seconds(settings.max_lifetime);
  r.options.permission_lifetime = std::chrono::seconds(settings.permission_lifetime);
  r.options.channel_lifetime = std::chrono::seconds(settings.channel_lifetime);
  r.options.max_permissions_per_allocation = settings.max_permissions_per_allocation;
  r.options.max_channels_per_allocation = settings.max_channels_per_allocation;
  r.options.max_connections_per_allocation = settings.max_connections_per_allocation;
  r.options.allocation_bandwidth = core::BandwidthLimit(settings.max_bps);
  r.options.user_bandwidth = core::BandwidthLimit(settings.max_bps_per_user);
  for (const auto& e : settings.external_ips) r.options.external_ips.push_back({e.public_ip, e.private_ip});
  r.options.alternate_servers = settings.alternate_servers;
  r.options.alternate_domain = settings.alternate_domain;
  r.options.strict_expiry = settings.strict_expiry;
  r.options.mobility = settings.mobility;
  r.options.unauthenticated = {settings.unauthenticated_rate, settings.unauthenticated_burst};
  r.options.allocation_requests = core::RequestRateLimit(
      settings.max_requests_per_allocation, settings.max_requests_per_allocation_burst);
  // Tickets, like nonces, stay valid across reloads: the key is the node's.
  r.services.tickets = std::make_shared<const auth::MobilityTicketCodec>(node.nonce_key);
  return r;
}

std::vector<std::string> restartOnlyChanges(const config::Settings& running, const config::Settings& next) {
  std::vector<std::string> changed;
  auto check = [&](bool same, const char* name) {
    if (!same) changed.emplace_back(name);
  };
  check(running.listen == next.listen, "listen");
  check(running.tls_listen == next.tls_listen, "tls-listen");
  check(running.dtls_listen == next.dtls_listen, "dtls-listen");
  check(running.proxy_protocol_from == next.proxy_protocol_from, "proxy-protocol-from");
  check(running.workers == next.workers, "workers");
  check(running.relay_ips == next.relay_ips, "relay-ip");
  check(running.relay_port_min == next.relay_port_min && running.relay_port_max == next.relay_port_max, "relay-ports");
  check(running.udp_receive_buffer == next.udp_receive_buffer, "udp-receive-buffer");
  check(running.udp_send_buffer == next.udp_send_buffer, "udp-send-buffer");
  check(running.udp_segmentation == next.udp_segmentation, "udp-segmentation");
  // The fast path's program and maps stay loaded and attached across a reload.
  check(running.fast_path == next.fast_path && running.fast_path_interfaces == next.fast_path_interfaces &&
            running.fast_path_capacity == next.fast_path_capacity,
        "fast-path");
  check(running.metrics_listen == next.metrics_listen, "metrics-listen");
  check(running.hand_over_socket == next.hand_over_socket, "hand-over-socket");
  check(running.redis == next.redis, "redis");
  check(running.hasTls() == next.hasTls(), "cert (adding or removing TLS)");
  return changed;
}

void keepRestartOnly(config::Settings& next, const config::Settings& running) {
  next.listen = running.listen;
  next.tls_listen = running.tls_listen;
  next.dtls_listen = running.dtls_listen;
  next.proxy_protocol_from = running.proxy_protocol_from;
  next.workers = running.workers;
  next.relay_ips = running.relay_ips;
  next.relay_port_min = running.relay_port_min;
  next.relay_port_max = running.relay_port_max;
  next.udp_receive_buffer = running.udp_receive_buffer;
  next.udp_send_buffer = running.udp_send_buffer;
  next.udp_segmentation = running.udp_segmentation;
  next.fast_path = running.fast_path;
  next.fast_path_interfaces = running.fast_path_interfaces;
  next.fast_path_capacity = running.fast_path_capacity;
  next.metrics_listen = running.metrics_listen;
  next.hand_over_socket = running.hand_over_socket;
  next.redis = running.redis;
  if (next.hasTls() != running.hasTls()) {
    next.cert = running.cert;
    next.key = running.key;
  }
}

}  // namespace tern::app
