// The start-up report; see start_log.hpp.
#include "relay/app/start_log.hpp"

#include <algorithm>

#include "relay/io/log.hpp"

namespace tern::app {

namespace {

std::uint32_t halfFilesLimit(std::uint64_t files_limit) {
  return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(files_limit / 2, 1, 10'000'000));
}

// The relay range offers more allocations than descriptors allow: say so at start-up
// rather than through 508s under load.
void warnIfFilesLimitCapsAllocations(const config::Settings& settings, std::size_t relay_ip_count,
                                     std::uint64_t files_limit) {
  constexpr std::uint64_t kHeadroom = 1024;  // listeners, client TCP connections, files
  const std::uint64_t ports = std::uint64_t{settings.relay_port_max} - settings.relay_port_min + 1;
  const std::uint64_t offered = ports * relay_ip_count;
  if (files_limit >= offered + kHeadroom) return;
  io::log::warn("open files limit caps allocations below the relay range",
                {{"open_files_limit", files_limit},
                 {"allocations_at_most", files_limit > kHeadroom ? files_limit - kHeadroom : 0},
                 {"relay_range_offers", offered},
                 {"raise", "LimitNOFILE= (systemd) or ulimit -n"}});
}

}  // namespace

void logStart(const config::Settings& settings, const ListenerAddresses& listeners,
              const std::vector<wire::IpAddress>& relay_ips, std::uint64_t files_limit) {
  for (const auto& address : listeners.plain) {
    for (const char* transport : {"udp", "tcp"}) {
      io::log::info("listening", {{"transport", transport}, {"address", address.toString()}});
    }
  }
  for (const auto& a : listeners.tls) io::log::info("listening", {{"transport", "tls"}, {"address", a.toString()}});
  for (const auto& a : listeners.dtls) io::log::info("listening", {{"transport", "dtls"}, {"address", a.toString()}});
  io::log::info("relaying", {{"relay_ips", relayIpsText(relay_ips)},
                             {"ports", relayPortsText(settings)},
                             {"realm", settings.realm}});
  // Each worker keeps its own buckets and the kernel spreads a source's ports over the
  // workers, so a source with many ports (a NAT, or a spoofer) gets up to workers x rate.
  io::log::info("abuse limits",
                {{"unauthenticated_per_second_per_worker", settings.unauthenticated_rate},
                 {"unauthenticated_burst_per_worker", settings.unauthenticated_burst},
                 {"unauthenticated_per_second_at_most", std::uint64_t{settings.unauthenticated_rate} * settings.workers},
                 {"tcp_connections_per_ip", settings.max_tcp_connections_per_ip},
                 {"tcp_connections", totalConnectionLimit(settings, files_limit)},
                 {"dtls_handshakes_per_ip", settings.max_dtls_handshakes_per_ip},
                 {"dtls_sessions_per_ip", settings.max_dtls_sessions_per_ip},
                 {"dtls_sessions", totalDtlsSessionLimit(settings, files_limit)}});
  warnIfFilesLimitCapsAllocations(settings, relay_ips.size(), files_limit);
  if (!settings.hasCredentials()) {
    io::log::warn("no credentials configured: every TURN request is refused with 401; set "
                  "--auth-secret-file, TERN_AUTH_SECRET or --user (STUN Binding still works)");
  }
}

std::uint32_t totalConnectionLimit(const config::Settings& settings, std::uint64_t files_limit) {
  return settings.max_tcp_connections ? *settings.max_tcp_connections : halfFilesLimit(files_limit);
}

std::uint32_t totalDtlsSessionLimit(const config::Settings& settings, std::uint64_t files_limit) {
  return settings.max_dtls_sessions ? *settings.max_dtls_sessions : halfFilesLimit(files_limit);
}

// Appends, not operator+ chains: GCC 12 at -O3 raises a false -Wrestrict on those.
std::string relayIpsText(const std::vector<wire::IpAddress>& relay_ips) {
  std::string text;
  for (const auto& ip : relay_ips) {
    if (!text.empty()) text += ',';
    text += ip.toString();
  }
  return text;
}

std::string relayPortsText(const config::Settings& settings) {
  std::string ports = std::to_string(settings.relay_port_min);
  ports += '-';
  ports += std::to_string(settings.relay_port_max);
  return ports;
}

}  // namespace tern::app
