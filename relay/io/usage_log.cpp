// The core's events as log lines; see usage_log.hpp.
#include "relay/io/usage_log.hpp"

#include <string>

#include "relay/core/allocation.hpp"
#include "relay/core/server_context.hpp"  // counterTransport
#include "relay/io/log.hpp"
#include "relay/wire/stun_constants.hpp"

namespace tern::io {

namespace {

// Both addresses of a dual allocation (RFC 8656 §7.2), comma-separated, IPv4 first.
std::string relayedText(const core::Allocation& a) {
  std::string text;
  for (const core::RelayEndpoint& r : a.relays()) {
    if (!text.empty()) text += ',';
    text += r.relayed.toString();
  }
  return text;
}

std::string_view transportLabel(const core::FiveTuple& tuple) noexcept {
  return metrics::labelOf(core::counterTransport(tuple.transport));
}

}  // namespace

void UsageLog::onAllocationCreated(const core::Allocation& a, std::uint32_t lifetime) noexcept {
  if (!log::enabled(log::LogLevel::kInfo)) return;
  log::write(log::LogLevel::kInfo, "allocation created",
             {{"client", a.tuple().client.toString()},
              {"transport", transportLabel(a.tuple())},
              {"user", a.username()},
              {"relayed", relayedText(a)},
              {"lifetime", lifetime}});
}

void UsageLog::onAllocationEnded(const core::Allocation& a, std::string_view reason,
                                 std::chrono::seconds age) noexcept {
  if (!log::enabled(log::LogLevel::kInfo)) return;
  const core::AllocationUsage& usage = a.usage();
  log::write(log::LogLevel::kInfo, "allocation ended",
             {{"client", a.tuple().client.toString()},
              {"transport", transportLabel(a.tuple())},
              {"user", a.username()},
              {"relayed", relayedText(a)},
              {"reason", reason},
              {"seconds", age.count()},
              {"packets_to_peer", usage.packets_to_peer},
              {"bytes_to_peer", usage.bytes_to_peer},
              {"packets_to_client", usage.packets_to_client},
              {"bytes_to_client", usage.bytes_to_client}});
}

void UsageLog::onAllocationMoved(const core::Allocation& a,
                                 const wire::SocketAddress& previous_client,
                                 bool cross_worker) noexcept {
  if (!log::enabled(log::LogLevel::kInfo)) return;
  log::write(log::LogLevel::kInfo, "allocation moved",
             {{"from", previous_client.toString()},
              {"to", a.tuple().client.toString()},
              {"worker", log_.worker()},
              {"cross_worker", cross_worker},
              {"user", a.username()},
              {"relayed", relayedText(a)}});
}

void UsageLog::onPeersRevoked(const core::Allocation& a, std::size_t permissions,
                              std::size_t channels, std::size_t connections) noexcept {
  log::warn(
      "peers refused by the reloaded peer policy: their permissions, channels and connections "
      "ended",
      {{"client", a.tuple().client.toString()},
       {"username", a.username()},
       {"relayed", a.relayed().toString()},
       {"permissions", permissions},
       {"channels", channels},
       {"connections", connections}});
}

void UsageLog::onRequestRefused(const core::FiveTuple& tuple, std::uint16_t method,
                                std::uint16_t code, std::string_view reason) noexcept {
  // Capacity refusals need an operator; the rest are a client's business, at debug level.
  const bool capacity = code == 486 || code == 508;
  const auto level = capacity ? log::LogLevel::kWarn : log::LogLevel::kDebug;
  std::uint64_t suppressed = 0;
  if (!log::enabled(level) || !log_.mayLog(suppressed)) return;
  log::write(level, "request refused",
             {{"client", tuple.client.toString()},
              {"method", wire::methodName(method)},
              {"code", code},
              {"reason", reason},
              {"suppressed", suppressed}});
}

// One line when a source starts being limited, not one per drop (those are counted in
// tern_dropped_packets_total{reason="rate_limited"}); spoofed floods with many sources still
// pass through the worker's line budget.
void UsageLog::onSourceRateLimited(const core::FiveTuple& tuple,
                                   const core::UnauthenticatedLimits& limits) noexcept {
  std::uint64_t suppressed = 0;
  if (!log::enabled(log::LogLevel::kWarn) || !log_.mayLog(suppressed)) return;
  log::write(log::LogLevel::kWarn,
             "source over the unauthenticated request limit: dropping its unauthenticated "
             "requests until it slows down",
             {{"source", tuple.client.ip.toString()},
              {"transport", transportLabel(tuple)},
              {"worker", log_.worker()},
              {"per_second", limits.per_second},
              {"burst", limits.burst},
              {"if_legitimate",
               "many real clients behind this address: raise --unauthenticated-rate and "
               "--unauthenticated-burst"},
              {"suppressed", suppressed}});
}

// One line when an allocation starts being limited (each drop is counted in
// tern_dropped_packets_total{reason="allocation_request_rate"}).
void UsageLog::onAllocationRequestLimited(const core::Allocation& a,
                                          const core::RequestRateLimit& limit) noexcept {
  std::uint64_t suppressed = 0;
  if (!log::enabled(log::LogLevel::kWarn) || !log_.mayLog(suppressed)) return;
  log::write(log::LogLevel::kWarn,
             "allocation over its request limit: dropping its requests until it slows down",
             {{"client", a.tuple().client.toString()},
              {"transport", transportLabel(a.tuple())},
              {"user", a.username()},
              {"per_second", limit.perSecond()},
              {"burst", limit.burstRequests()},
              {"suppressed", suppressed}});
}

}  // namespace tern::io
