// Validation of the operator's configuration: every problem is reported at once.
#include "relay/config/config.hpp"

#include <stdexcept>

#include "relay/config/oauth_key_file.hpp"
#include "relay/config/secret_file.hpp"
#include "relay/config/user_file.hpp"

#include "relay/wire/cidr.hpp"

#include <charconv>
#include <fstream>
#include <set>

namespace tern::config {

namespace {

std::optional<LogLevel> parseLevel(std::string_view s) {
  if (s == "trace") return LogLevel::kTrace;
  if (s == "debug") return LogLevel::kDebug;
  if (s == "info") return LogLevel::kInfo;
  if (s == "warn" || s == "warning") return LogLevel::kWarn;
  if (s == "error") return LogLevel::kError;
  return std::nullopt;
}

// What a K, M or G suffix means: none allowed, binary for byte sizes (buffers), decimal for
// bit rates (a 1 Mbit/s link carries 10^6 bits a second).
enum class Suffix : std::uint8_t { kNone, kBinary, kDecimal };

// A whole non-negative number, optionally with a K, M or G suffix.
std::optional<std::uint64_t> parseCount(std::string_view text, Suffix suffix) {
  std::uint64_t scale = 1;
  if (suffix != Suffix::kNone && !text.empty()) {
    const bool binary = suffix == Suffix::kBinary;
    switch (text.back()) {
      case 'k': case 'K': scale = binary ? 1ull << 10 : 1'000ull; break;
      case 'm': case 'M': scale = binary ? 1ull << 20 : 1'000'000ull; break;
      case 'g': case 'G': scale = binary ? 1ull << 30 : 1'000'000'000ull; break;
      default: break;
    }
    if (scale != 1) text.remove_suffix(1);
  }
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
  if (v > (~std::uint64_t{0}) / scale) return std::nullopt;
  return v * scale;
}

// Parses `text` into a number within [min, max], or records why not.
template <class T>
T number(std::vector<std::string>& problems, std::string_view key, const std::string& text,
         std::uint64_t min, std::uint64_t max, Suffix suffix = Suffix::kNone) {
  auto v = parseCount(text, suffix);
  if (!v) {
    problems.push_back(std::string(key) + ": '" + text + "' is not a whole number" +
                       (suffix != Suffix::kNone ? " (K, M or G suffix allowed)" : ""));
    return T{};
  }
  if (*v < min || *v > max) {
    problems.push_back(std::string(key) + ": " + text + " is outside " + std::to_string(min) + "-" +
                       std::to_string(max));
    return T{};
  }
  return static_cast<T>(*v);
}

// A connection cap written "N" or "auto": empty for auto (the caller derives it, from the
// open-files limit), else a count of at most ten million.
std::optional<std::uint32_t> capOrAuto(std::vector<std::string>& problems, std::string_view key,
                                       const std::string& text) {
  if (text == "auto") return std::nullopt;
  return number<std::uint32_t>(problems, key, text, 0, 10'000'000);
}

// A bandwidth limit: 0 (none) or a rate the buckets handle exactly (kMinBitsPerSecond).
std::uint64_t bitRate(std::vector<std::string>& problems, std::string_view key, const std::string& text) {
  const auto bps = number<std::uint64_t>(problems, key, text, 0, kMaxBitsPerSecond,
                                         Suffix::kDecimal);
  if (bps != 0 && bps < kMinBitsPerSecond) {
    std::string problem(key);
    problem.append(": ").append(text).append(" is below the smallest limit, ");
    problem.append(std::to_string(kMinBitsPerSecond)).append(" bits per second (0: no limit)");
    problems.push_back(std::move(problem));
  }
  return bps;
}

void validateTls(const Config& config, Settings& s, std::vector<std::string>& problems) {
  for (const auto& text : config.tls_listen) {
    if (text.empty()) continue;
    auto address = wire::SocketAddress::parse(text);
    if (!address) {
      problems.push_back("tls-listen: '" + text + "' is not ADDR:PORT");
      continue;
    }
    s.tls_listen.push_back(*address);
  }
  for (const auto& text : config.dtls_listen) {
    if (text.empty()) continue;
    auto address = wire::SocketAddress::parse(text);
    if (!address) {
      problems.push_back("dtls-listen: '" + text + "' is not ADDR:PORT");
      continue;
    }
    s.dtls_listen.push_back(*address);
  }
  for (const auto& text : config.proxy_protocol_from) {
    if (text.empty()) continue;
    auto range = wire::Cidr::parse(text);
    if (!range) {
      problems.push_back("proxy-protocol-from: '" + text +
                         "' is not an address or CIDR (192.0.2.0/24, 2001:db8::/32)");
      continue;
    }
    s.proxy_protocol_from.push_back(*range);
  }
  if (!s.dtls_listen.empty() && config.cert.empty()) {
    problems.push_back("dtls-listen: needs --cert and --key");
  }
  if (config.cert.empty() != config.key.empty()) {
    problems.push_back(std::string(config.cert.empty() ? "cert" : "key") + ": --cert and --key go together");
  }
  if (!s.tls_listen.empty() && config.cert.empty()) {
    problems.push_back("tls-listen: needs --cert and --key");
  }
  for (const auto* file : {&config.cert, &config.key}) {
    if (!file->empty() && !std::ifstream(*file)) {
      problems.push_back(std::string(file == &config.cert ? "cert" : "key") + ": cannot read '" + *file + "'");
    }
  }
  s.cert = config.cert;
  s.key = config.key;
}

// RFC 7635: the key files are read here, so a reload (which validates again) reads them anew.
void validateOAuth(const Config& config, Settings& s, std::vector<std::string>& problems) {
  std::vector<std::string> paths;
  for (const auto& path : config.oauth_key_files) {
    if (!path.empty()) paths.push_back(path);
  }
  auto store = loadOAuthKeyStore(paths);
  if (store) {
    s.oauth_keys = std::make_shared<const auth::OAuthKeyStore>(std::move(*store));
  } else {
    for (const auto& problem : store.error()) problems.push_back("oauth-key-file: " + problem);
  }
  s.oauth_server_name = config.oauth_server_name.empty() ? config.realm : config.oauth_server_name;
  // The name travels as THIRD-PARTY-AUTHORIZATION, a text attribute of at most 763 bytes.
  if (config.oauth_server_name.size() > 763) {
    problems.push_back("oauth-server-name: must be at most 763 bytes");
  }
  if (!config.oauth_server_name.empty() && paths.empty()) {
    problems.push_back("oauth-server-name: needs --oauth-key-file");
  }
}

// Static users: --user NAME:PASSWORD, then each --user-file's lines.
void validateUsers(const Config& config, Settings& s, std::vector<std::string>& problems) {
  for (const auto& user : config.users) {
    if (user.empty()) continue;
    const auto colon = user.find(':');
    if (colon == std::string::npos || colon == 0 || colon + 1 == user.size()) {
      problems.push_back("user: '" + user.substr(0, colon) + "' is not NAME:PASSWORD");
      continue;
    }
    s.users.push_back({user.substr(0, colon), user.substr(colon + 1)});
  }
  for (const auto& path : config.user_files) {
    if (path.empty()) continue;
    for (auto& user : readUserFile(path, problems)) s.users.push_back(std::move(user));
  }
}

// Long-term credentials (RFC 8489 §9.2): realm, TURN REST secrets, static users, nonces.
void validateCredentials(const Config& config, Settings& s, std::vector<std::string>& problems) {
  s.realm = config.realm;
  // RFC 8489 §14.9: REALM is fewer than 128 characters.
  if (config.realm.empty() || config.realm.size() >= 128) {
    problems.push_back("realm: must be 1 to 127 bytes");
  }
  for (const auto& path : config.auth_secret_files) {
    if (path.empty()) continue;
    try {
      for (auto& secret : readSecretFile(path)) s.auth_secrets.push_back(std::move(secret));
    } catch (const std::runtime_error& e) {
      problems.push_back(std::string("auth-secret-file: ") + e.what());
    }
  }
  if (!config.auth_secret.empty()) s.auth_secrets.push_back(config.auth_secret);
  validateUsers(config, s, problems);
  s.nonce_lifetime = number<unsigned>(problems, "nonce-lifetime", config.nonce_lifetime, 1, 24 * 3600);
  s.strict_expiry = config.strict_expiry;
  s.mobility = config.mobility;
}

void validateRelayIps(const Config& config, Settings& s, std::vector<std::string>& problems) {
  for (const auto& text : config.relay_ips) {
    if (text.empty()) continue;
    auto ip = wire::IpAddress::parse(text);
    if (!ip || ip->isUnspecified()) {
      problems.push_back("relay-ip: '" + text + "' is not a specific IP address");
      continue;
    }
    s.relay_ips.push_back(*ip);
  }
}

// Reads s.workers and the listen addresses, so it runs after those are validated.
void validateRelayPorts(const Config& config, Settings& s, std::vector<std::string>& problems) {
  const auto dash = config.relay_ports.find('-');
  if (dash == std::string::npos) {
    problems.push_back("relay-ports: '" + config.relay_ports + "' is not MIN-MAX");
  } else {
    s.relay_port_min = number<std::uint16_t>(problems, "relay-ports", config.relay_ports.substr(0, dash), 1024, 65535);
    s.relay_port_max = number<std::uint16_t>(problems, "relay-ports", config.relay_ports.substr(dash + 1), 1024, 65535);
    if (s.relay_port_min > s.relay_port_max) {
      problems.push_back("relay-ports: MIN is above MAX in '" + config.relay_ports + "'");
    } else if (static_cast<unsigned>(s.relay_port_max - s.relay_port_min + 1) < s.workers) {
      problems.push_back("relay-ports: fewer ports than workers (" + std::to_string(s.workers) + ")");
    }
    // Relay ports on the relay's own addresses are reachable as peers by design, so a
    // listener inside the range would be reachable through the relay itself.
    std::vector<wire::SocketAddress> all = s.listen;
    all.insert(all.end(), s.tls_listen.begin(), s.tls_listen.end());
    all.insert(all.end(), s.dtls_listen.begin(), s.dtls_listen.end());
    for (const auto& a : all) {
      if (a.port != 0 && a.port >= s.relay_port_min && a.port <= s.relay_port_max) {
        problems.push_back("relay-ports: " + config.relay_ports + " contains the listen port " +
                           std::to_string(a.port));
      }
    }
  }
}

// 1:1 NAT: PUBLIC advertised for relayed addresses on PRIVATE.
void validateExternalIps(const Config& config, Settings& s, std::vector<std::string>& problems) {
  for (const auto& text : config.external_ips) {
    if (text.empty()) continue;
    const auto eq = text.find('=');
    auto pub = wire::IpAddress::parse(text.substr(0, eq));
    std::optional<wire::IpAddress> priv;
    bool ok = pub && !pub->isUnspecified();
    if (ok && eq != std::string::npos) {
      priv = wire::IpAddress::parse(text.substr(eq + 1));
      ok = priv && priv->family() == pub->family() && !priv->isUnspecified();
    }
    if (!ok) {
      problems.push_back("external-ip: '" + text + "' is not PUBLIC or PUBLIC=PRIVATE (same family)");
      continue;
    }
    s.external_ips.push_back({*pub, priv});
  }
}

// The peer policy: which peers relayed addresses may reach.
void validatePeers(const Config& config, Settings& s, std::vector<std::string>& problems) {
  s.allow_own_address_peers = config.allow_own_address_peers;
  for (const auto* list : {&config.allow_peers, &config.deny_peers}) {
    const bool allow = list == &config.allow_peers;
    for (const auto& text : *list) {
      if (text.empty()) continue;
      if (!wire::Cidr::parse(text)) {
        problems.push_back(std::string(allow ? "allow-peer" : "deny-peer") + ": '" + text +
                           "' is not an address or CIDR (192.0.2.0/24, 2001:db8::/32)");
        continue;
      }
      (allow ? s.allow_peers : s.deny_peers).push_back(text);
    }
  }
}

// What one allocation or one user may hold or send.
void validateAllocationLimits(const Config& config, Settings& s,
                              std::vector<std::string>& problems) {
  s.max_allocations = number<std::uint32_t>(problems, "max-allocations", config.max_allocations, 0, 10'000'000);
  s.max_allocations_per_user = number<std::uint32_t>(problems, "max-allocations-per-user",
                                                     config.max_allocations_per_user, 0, 10'000'000);
  // RFC 8656 §7.2: the default lifetime is 600 s; the maximum may not be below it.
  s.max_lifetime = number<unsigned>(problems, "max-lifetime", config.max_lifetime, 600, 7 * 24 * 3600);
  s.permission_lifetime = number<unsigned>(problems, "permission-lifetime", config.permission_lifetime, 1, 300);
  s.channel_lifetime = number<unsigned>(problems, "channel-lifetime", config.channel_lifetime, 1, 600);
  s.max_permissions_per_allocation = number<std::uint32_t>(
      problems, "max-permissions-per-allocation", config.max_permissions_per_allocation, 1, 4096);
  s.max_channels_per_allocation = number<std::uint32_t>(
      problems, "max-channels-per-allocation", config.max_channels_per_allocation, 1, 4096);
  s.max_connections_per_allocation = number<std::uint32_t>(
      problems, "max-connections-per-allocation", config.max_connections_per_allocation, 1, 4096);
  s.max_bps = bitRate(problems, "max-bps", config.max_bps);
  s.max_bps_per_user = bitRate(problems, "max-bps-per-user", config.max_bps_per_user);
}

// The steps run in the order their problems are reported in.
void validateTurn(const Config& config, Settings& s, std::vector<std::string>& problems) {
  validateCredentials(config, s, problems);
  validateRelayIps(config, s, problems);
  validateRelayPorts(config, s, problems);
  validateExternalIps(config, s, problems);
  validatePeers(config, s, problems);
  validateAllocationLimits(config, s, problems);
}

// Read at start and on every SIGHUP, like the other secret files: a rotated token takes
// over, an unreadable or short one keeps the running configuration.
void validateAdminToken(const Config& config, Settings& s, std::vector<std::string>& problems) {
  if (config.admin_token_file.empty()) return;
  try {
    s.admin_token = readAdminTokenFile(config.admin_token_file);
  } catch (const std::runtime_error& e) {
    problems.push_back(std::string("admin-token-file: ") + e.what());
  }
}

void validateRedis(const Config& config, Settings& s, std::vector<std::string>& problems) {
  if (config.redis.empty()) {
    if (!config.redis_password_file.empty()) problems.push_back("redis-password-file: needs --redis");
    return;
  }
  s.redis = RedisAddress::parse(config.redis);
  if (!s.redis) {
    problems.push_back("redis: '" + config.redis + "' is not redis://HOST[:PORT][/DB] (no password in it)");
    return;
  }
  if (config.redis_password_file.empty()) return;
  try {
    const auto lines = readSecretFile(config.redis_password_file);
    s.redis->password = lines.front();
  } catch (const std::runtime_error& e) {
    problems.push_back(std::string("redis-password-file: ") + e.what());
  }
}

void validateAbuseLimits(const Config& config, Settings& s, std::vector<std::string>& problems) {
  constexpr std::uint64_t kMaxBurst = 1'000'000;  // core::UnauthenticatedLimits::kMaxBurst
  s.unauthenticated_rate =
      number<std::uint32_t>(problems, "unauthenticated-rate", config.unauthenticated_rate, 0, kMaxBurst);
  s.unauthenticated_burst =
      number<std::uint32_t>(problems, "unauthenticated-burst", config.unauthenticated_burst, 1, kMaxBurst);
  // core::RequestRateLimit::kMaxPerSecond and kMaxBurst.
  s.max_requests_per_allocation = number<std::uint32_t>(
      problems, "max-requests-per-allocation", config.max_requests_per_allocation, 0, 1'000'000);
  s.max_requests_per_allocation_burst =
      number<std::uint32_t>(problems, "max-requests-per-allocation-burst",
                            config.max_requests_per_allocation_burst, 1, 1'000'000);
  s.max_tcp_connections_per_ip = number<std::uint32_t>(problems, "max-tcp-connections-per-ip",
                                                       config.max_tcp_connections_per_ip, 0, 10'000'000);
  s.max_tcp_connections = capOrAuto(problems, "max-tcp-connections", config.max_tcp_connections);
  s.max_dtls_handshakes_per_ip = number<std::uint32_t>(problems, "max-dtls-handshakes-per-ip",
                                                       config.max_dtls_handshakes_per_ip, 0, 10'000'000);
  s.max_dtls_sessions_per_ip = number<std::uint32_t>(problems, "max-dtls-sessions-per-ip",
                                                     config.max_dtls_sessions_per_ip, 0, 10'000'000);
  s.max_dtls_sessions = capOrAuto(problems, "max-dtls-sessions", config.max_dtls_sessions);
}

void validateListen(const Config& config, Settings& s, std::vector<std::string>& problems) {
  if (config.listen.empty()) problems.push_back("listen: at least one ADDR:PORT is required");
  std::set<wire::SocketAddress> seen;
  for (const auto& text : config.listen) {
    auto address = wire::SocketAddress::parse(text);
    if (!address) {
      problems.push_back("listen: '" + text +
                         "' is not ADDR:PORT (IPv4 as 192.0.2.1:3478, IPv6 as [2001:db8::1]:3478)");
      continue;
    }
    if (!seen.insert(*address).second) {
      problems.push_back("listen: '" + text + "' is given twice");
      continue;
    }
    s.listen.push_back(*address);
  }
}

void validateLogging(const Config& config, Settings& s, std::vector<std::string>& problems) {
  if (auto level = parseLevel(config.log_level)) {
    s.log_level = *level;
  } else {
    problems.push_back("log-level: '" + config.log_level +
                       "' is not one of trace, debug, info, warn, error");
  }
  if (config.log_format == "plain") {
    s.log_format = LogFormat::kPlain;
  } else if (config.log_format == "json") {
    s.log_format = LogFormat::kJson;
  } else {
    problems.push_back("log-format: '" + config.log_format + "' is not one of plain, json");
  }
}

// Issue 21: the kernel fast path. Interface names are checked when the program attaches.
void validateFastPath(const Config& config, Settings& s, std::vector<std::string>& problems) {
  if (config.fast_path == "auto") {
    s.fast_path = FastPathMode::kAuto;
  } else if (config.fast_path == "on") {
    s.fast_path = FastPathMode::kOn;
  } else if (config.fast_path == "off") {
    s.fast_path = FastPathMode::kOff;
  } else {
    problems.push_back("fast-path: '" + config.fast_path + "' is not auto, on or off");
  }
  for (const std::string& name : config.fast_path_interfaces) {
    if (name.empty()) continue;  // --print-config writes an empty list as one empty name
    if (name.size() >= 16 || name.find('/') != std::string::npos) {
      problems.push_back("fast-path-interface: '" + name + "' is not an interface name");
    } else if (name == "lo") {
      problems.push_back("fast-path-interface: not lo (loopback's partial checksums cannot be rewritten)");
    } else {
      s.fast_path_interfaces.push_back(name);
    }
  }
  s.fast_path_capacity = number<std::uint32_t>(problems, "fast-path-capacity", config.fast_path_capacity,
                                               16, kMaxFastPathCapacity);
}

// SOFTWARE and the client sockets' kernel settings.
void validateSockets(const Config& config, Settings& s, std::vector<std::string>& problems) {
  // RFC 8489 §14.14: SOFTWARE is fewer than 128 characters (at most 763 bytes).
  if (config.software.size() >= 128) problems.push_back("software: must be shorter than 128 bytes");
  s.software = config.software;

  // The kernel doubles and caps these (net.core.rmem_max / wmem_max); refuse absurd values.
  constexpr std::uint64_t kMaxBuffer = 1u << 30;
  s.udp_receive_buffer = number<std::uint32_t>(problems, "udp-receive-buffer",
                                               config.udp_receive_buffer, 0, kMaxBuffer, Suffix::kBinary);
  s.udp_send_buffer = number<std::uint32_t>(problems, "udp-send-buffer", config.udp_send_buffer, 0,
                                            kMaxBuffer, Suffix::kBinary);
  s.udp_segmentation = config.udp_segmentation;
  s.tcp_idle_timeout = number<unsigned>(problems, "tcp-idle-timeout", config.tcp_idle_timeout, 1,
                                        7 * 24 * 3600);
  validateFastPath(config, s, problems);
}

// An absolute path that fits a sockaddr_un (unix(7): 108 bytes with the terminating NUL): a
// relative one would name another file for a process started in another directory.
void validateHandOverSocket(const Config& config, Settings& s, std::vector<std::string>& problems) {
  const std::string& path = config.hand_over_socket;
  if (path.empty()) return;
  if (path.front() != '/' || path.back() == '/') {
    problems.push_back("hand-over-socket: '" + path + "' is not an absolute path to a file");
  } else if (path.size() > 107) {
    problems.push_back("hand-over-socket: longer than 107 bytes (a Unix socket path)");
  } else {
    s.hand_over_socket = path;
  }
}

// Operations: the HTTP port, admin calls, and where a drain sends new allocations.
void validateOperations(const Config& config, Settings& s, std::vector<std::string>& problems) {
  if (!config.metrics_listen.empty()) {
    if (auto address = wire::SocketAddress::parse(config.metrics_listen)) {
      s.metrics_listen = *address;
    } else {
      problems.push_back("metrics-listen: '" + config.metrics_listen + "' is not ADDR:PORT");
    }
  }
  s.drain_timeout = number<unsigned>(problems, "drain-timeout", config.drain_timeout, 0, 7 * 24 * 3600);
  // At least a second to load a configuration; at most an hour of frozen workers.
  s.upgrade_timeout =
      number<unsigned>(problems, "upgrade-timeout", config.upgrade_timeout, 1, 3600);
  validateAdminToken(config, s, problems);
  validateRedis(config, s, problems);
  validateHandOverSocket(config, s, problems);
  for (const auto& text : config.alternate_servers) {
    if (text.empty()) continue;
    auto address = wire::SocketAddress::parse(text);
    if (!address || address->port == 0 || address->ip.isUnspecified()) {
      problems.push_back("alternate-server: '" + text + "' is not ADDR:PORT of another relay");
      continue;
    }
    s.alternate_servers.push_back(*address);
  }
  // RFC 8489 §14.16: a domain name of at most 255 bytes.
  if (config.alternate_domain.size() > 255) {
    problems.push_back("alternate-domain: longer than 255 bytes");
  } else {
    s.alternate_domain = config.alternate_domain;
  }
}

}  // namespace

std::string_view levelName(LogLevel level) noexcept {
  switch (level) {
    case LogLevel::kTrace: return "trace";
    case LogLevel::kDebug: return "debug";
    case LogLevel::kInfo: return "info";
    case LogLevel::kWarn: return "warn";
    case LogLevel::kError: return "error";
  }
  return "info";
}

// The steps run in the order their problems are reported in; later steps read what earlier
// ones set (the relay ports need the workers and every listen address).
Expected<Settings, std::vector<std::string>> validate(const Config& config, unsigned cores) {
  std::vector<std::string> problems;
  Settings s;
  validateListen(config, s, problems);
  const auto workers = number<unsigned>(problems, "workers", config.workers, 0, kMaxWorkers);
  s.workers = workers == 0 ? std::max(1u, cores) : workers;
  validateLogging(config, s, problems);
  validateSockets(config, s, problems);
  validateOperations(config, s, problems);
  validateTls(config, s, problems);
  validateTurn(config, s, problems);
  validateOAuth(config, s, problems);
  validateAbuseLimits(config, s, problems);
  if (!problems.empty()) return Unexpected{std::move(problems)};
  return s;
}

}  // namespace tern::config
