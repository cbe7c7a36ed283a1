// Everything an operator can set, in one struct that CLI11 fills from flags and from the
// --config file alike (../shared/DESIGN.md §5), and its validated, typed form.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/oauth_token.hpp"
#include "relay/config/redis_address.hpp"
#include "relay/wire/address.hpp"
#include "relay/wire/cidr.hpp"
#include "relay/wire/expected.hpp"

namespace tern::config {

enum class LogLevel : std::uint8_t { kTrace, kDebug, kInfo, kWarn, kError };
enum class LogFormat : std::uint8_t { kPlain, kJson };

// As given on the command line or in the file. Every value is kept as text and checked by
// validate(), so one run reports every mistake, not only the first number that fails to parse.
// An empty entry in a list (what --print-config writes for an empty list) means none.
struct Config {
  std::vector<std::string> listen{"0.0.0.0:3478"};
  std::string workers = "0";  // 0: one per CPU core
  std::string log_level = "info";
  std::string log_format = "plain";
  std::string software = "tern";
  // Of the client-facing UDP listeners, which carry every client of a worker (relay sockets,
  // one allocation each, keep the system default). The kernel caps them at net.core.rmem_max
  // and wmem_max.
  std::string udp_receive_buffer = "4M";  // SO_RCVBUF bytes (K/M suffix); 0: system default
  std::string udp_send_buffer = "4M";     // SO_SNDBUF bytes (K/M suffix); 0: system default
  // Send trains of equal datagrams to one destination as one UDP_SEGMENT message.
  bool udp_segmentation = true;
  std::string tcp_idle_timeout = "300";  // seconds a stream connection may stay silent
  // Issue 21, the kernel fast path for UDP ChannelData (docs/fast-path.md).
  std::string fast_path = "off";                 // auto | on | off
  std::vector<std::string> fast_path_interfaces;  // empty: those holding the listen/relay IPs
  std::string fast_path_capacity = "32768";      // allocations the kernel can carry at once

  // Operations: the HTTP port for /metrics, /healthz, /readyz and POST /drain; draining.
  std::string metrics_listen;                  // ADDR:PORT; empty: off
  std::string drain_timeout = "600";           // seconds a drain waits for calls to end
  std::string upgrade_timeout = "30";          // seconds an upgrade's new process has per step
  std::vector<std::string> alternate_servers;  // ADDR:PORT for 300 Try Alternate while draining
  std::string alternate_domain;                // ALTERNATE-DOMAIN for TLS/DTLS clients
  std::string admin_token_file;  // first line: the bearer token POST /drain needs; never printed
  // A Unix socket path a process started beside this one (a new Kubernetes pod) takes over
  // through (docs/upgrade.md); empty: off.
  std::string hand_over_socket;
  // Issue 22, fleet state: redis://HOST[:PORT][/DB]; empty: this node's state alone.
  std::string redis;
  std::string redis_password_file;  // first line: the AUTH password; never printed

  // TURN over TLS (RFC 8656 §3.1): TLS-only TCP listeners; with a certificate, plain --listen
  // TCP ports also accept TLS, told apart by the first byte.
  std::vector<std::string> tls_listen;
  std::vector<std::string> dtls_listen;  // TURN over DTLS (RFC 7350) on UDP
  // Load balancers whose TCP and TLS connections start with a PROXY protocol header (v1 or
  // v2) naming the real client; CIDR. Others may not send one (docs/operations.md).
  std::vector<std::string> proxy_protocol_from;
  std::string cert;  // PEM certificate chain
  std::string key;   // PEM private key

  // Authentication (RFC 8489 §9.2; TURN REST API credentials).
  std::string realm = "tern";
  std::vector<std::string> auth_secret_files;  // one secret per line; several for rotation
  std::string auth_secret;                     // from TERN_AUTH_SECRET, never printed
  std::vector<std::string> users;              // NAME:PASSWORD static users; printed redacted
  std::vector<std::string> user_files;         // NAME:PASSWORD a line; reread on SIGHUP
  std::string nonce_lifetime = "600";
  // A TURN REST credential's expiry also ends the allocations made with it.
  bool strict_expiry = false;
  // RFC 8016: UDP/DTLS allocations may move to a client's new address with a MOBILITY-TICKET.
  bool mobility = true;
  // Third-party authorization (RFC 7635): AS-RS keys for ACCESS-TOKENs, in files only.
  std::vector<std::string> oauth_key_files;  // lines "KID BASE64-KEY [A256GCM|A128GCM]"
  std::string oauth_server_name;             // empty: the realm

  // Relaying (RFC 8656).
  std::vector<std::string> relay_ips;          // default: the --listen addresses
  std::string relay_ports = "49152-65535";
  std::vector<std::string> external_ips;       // PUBLIC[=PRIVATE]
  std::vector<std::string> allow_peers;        // CIDR
  std::vector<std::string> deny_peers;         // CIDR
  bool allow_own_address_peers = false;        // peers on the relay's own IPs, any non-listener port
  std::string max_allocations = "0";           // 0: limited only by relay ports
  std::string max_allocations_per_user = "100";
  std::string max_lifetime = "3600";
  // RFC 8656 §9 and §12 fix these at 300 and 600 seconds; shorter ones exist for tests that
  // watch a permission or channel end (hidden from --help).
  std::string permission_lifetime = "300";
  std::string channel_lifetime = "600";
  std::string max_permissions_per_allocation = "64";
  std::string max_channels_per_allocation = "64";
  std::string max_connections_per_allocation = "64";
  // Relayed application bits per second, each direction (K, M, G: 10^3, 10^6, 10^9); 0: none.
  std::string max_bps = "0";           // per allocation
  std::string max_bps_per_user = "0";  // shared by a user's allocations on every worker

  // Abuse resistance. Answers to requests that prove nothing (401s, Binding responses, 400s)
  // per source address, per worker: PER_SECOND on average, BURST at once; 0: no limit.
  std::string unauthenticated_rate = "200";
  std::string unauthenticated_burst = "2000";
  // Authenticated requests on one allocation (Refresh, CreatePermission, ChannelBind, ...):
  // PER_SECOND on average, BURST at once; 0: no limit.
  std::string max_requests_per_allocation = "20";
  std::string max_requests_per_allocation_burst = "200";
  // TCP and TLS client connections: from one address (an IPv6 /64), and in all; 0: no limit.
  std::string max_tcp_connections_per_ip = "512";
  std::string max_tcp_connections = "auto";  // auto: half the open files limit
  // DTLS clients that echoed their cookie: handshakes in progress from one address (an IPv6
  // /64), sessions from one address, and sessions in all, across workers; 0: no limit.
  std::string max_dtls_handshakes_per_ip = "128";
  std::string max_dtls_sessions_per_ip = "512";
  std::string max_dtls_sessions = "auto";  // auto: half the open files limit
};

struct StaticUser {
  std::string name;
  std::string password;
};

struct ExternalIp {
  wire::IpAddress public_ip;
  std::optional<wire::IpAddress> private_ip;
};



// --fast-path: auto loads the program where the process may and relays in user space
// otherwise; on refuses to start without it.
enum class FastPathMode : std::uint8_t { kOff, kAuto, kOn };
// The most allocations the fast path's maps may be sized for (its per-CPU usage map costs 32
// bytes per allocation and CPU).
inline constexpr std::uint32_t kMaxFastPathCapacity = 131072;

// The same settings after validation, in the types the server uses.
struct Settings {
  std::vector<wire::SocketAddress> listen;  // each serves UDP and TCP
  unsigned workers = 1;
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kPlain;
  std::string software;
  std::uint32_t udp_receive_buffer = 4u << 20;
  std::uint32_t udp_send_buffer = 4u << 20;
  bool udp_segmentation = true;
  unsigned tcp_idle_timeout = 300;
  FastPathMode fast_path = FastPathMode::kOff;
  std::vector<std::string> fast_path_interfaces;
  std::uint32_t fast_path_capacity = 32768;

  std::optional<wire::SocketAddress> metrics_listen;
  unsigned drain_timeout = 600;
  unsigned upgrade_timeout = 30;
  std::vector<wire::SocketAddress> alternate_servers;
  std::string alternate_domain;
  std::optional<std::string> admin_token;  // unset: admin calls are refused
  std::string hand_over_socket;            // absolute path; empty: off
  std::optional<RedisAddress> redis;       // with its password; unset: no fleet state

  std::vector<wire::SocketAddress> tls_listen;
  std::vector<wire::SocketAddress> dtls_listen;
  std::vector<wire::Cidr> proxy_protocol_from;  // restart-only: workers hold it from their start
  std::string cert;
  std::string key;
  bool hasTls() const noexcept { return !cert.empty(); }

  std::string realm;
  std::vector<std::string> auth_secrets;
  std::vector<StaticUser> users;
  unsigned nonce_lifetime = 600;
  bool strict_expiry = false;
  bool mobility = true;
  // RFC 7635: the keys that open ACCESS-TOKENs (never null; empty without --oauth-key-file),
  // and the STUN server name, sent as THIRD-PARTY-AUTHORIZATION and bound into every token
  // as its associated data (RFC 7635 §6.1, §6.2).
  std::shared_ptr<const auth::OAuthKeyStore> oauth_keys = std::make_shared<const auth::OAuthKeyStore>();
  std::string oauth_server_name;
  bool hasOAuth() const noexcept { return oauth_keys && !oauth_keys->empty(); }

  std::vector<wire::IpAddress> relay_ips;  // empty: decided at start-up from the host
  std::uint16_t relay_port_min = 49152;
  std::uint16_t relay_port_max = 65535;
  std::vector<ExternalIp> external_ips;
  std::vector<std::string> allow_peers;  // validated CIDR text
  std::vector<std::string> deny_peers;
  bool allow_own_address_peers = false;
  std::uint32_t max_allocations = 0;
  std::uint32_t max_allocations_per_user = 100;
  unsigned max_lifetime = 3600;
  unsigned permission_lifetime = 300;
  unsigned channel_lifetime = 600;
  std::uint32_t max_permissions_per_allocation = 64;
  std::uint32_t max_channels_per_allocation = 64;
  std::uint32_t max_connections_per_allocation = 64;
  std::uint64_t max_bps = 0;  // bits per second; 0: no limit
  std::uint64_t max_bps_per_user = 0;

  std::uint32_t unauthenticated_rate = 200;  // 0: no limit
  std::uint32_t unauthenticated_burst = 2000;
  std::uint32_t max_requests_per_allocation = 20;  // 0: no limit
  std::uint32_t max_requests_per_allocation_burst = 200;
  std::uint32_t max_tcp_connections_per_ip = 512;  // 0: no limit
  // 0: no limit; unset (auto): half the open files limit, resolved at start-up.
  std::optional<std::uint32_t> max_tcp_connections;
  std::uint32_t max_dtls_handshakes_per_ip = 128;  // 0: no limit
  std::uint32_t max_dtls_sessions_per_ip = 512;    // 0: no limit
  // 0: no limit; unset (auto): half the open files limit, resolved at start-up.
  std::optional<std::uint32_t> max_dtls_sessions;

  bool hasCredentials() const noexcept { return !auth_secrets.empty() || !users.empty() || hasOAuth(); }
};

inline constexpr unsigned kMaxWorkers = 256;
// The --max-bps range: what core::BandwidthLimit computes exactly (relay/core/bandwidth.hpp).
// config sits below core, so it holds the numbers; relay/app/reload.cpp asserts they agree.
inline constexpr std::uint64_t kMinBitsPerSecond = 1'000;
inline constexpr std::uint64_t kMaxBitsPerSecond = 100'000'000'000;  // 100 Gbit/s

// Checks everything and reports every problem, one line each, rather than the first.
// `cores` resolves workers = 0.
Expected<Settings, std::vector<std::string>> validate(const Config& config, unsigned cores);

std::string_view levelName(LogLevel level) noexcept;

}  // namespace tern::config
