// Validation of the operator's configuration: every problem is reported at once.
#include "relay/config/config.hpp"

#include <charconv>
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

// A whole non-negative number, optionally with a binary K, M or G suffix when `sizes`.
std::optional<std::uint64_t> parseCount(std::string_view text, bool sizes) {
  std::uint64_t scale = 1;
  if (sizes && !text.empty()) {
    switch (text.back()) {
      case 'k': case 'K': scale = 1ull << 10; break;
      case 'm': case 'M': scale = 1ull << 20; break;
      case 'g': case 'G': scale = 1ull << 30; break;
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
         std::uint64_t min, std::uint64_t max, bool sizes = false) {
  auto v = parseCount(text, sizes);
  if (!v) {
    problems.push_back(std::string(key) + ": '" + text + "' is not a whole number" +
                       (sizes ? " (K, M or G suffix allowed)" : ""));
    return T{};
  }
  if (*v < min || *v > max) {
    problems.push_back(std::string(key) + ": " + text + " is outside " + std::to_string(min) + "-" +
                       std::to_string(max));
    return T{};
  }
  return static_cast<T>(*v);
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

Expected<Settings, std::vector<std::string>> validate(const Config& config, unsigned cores) {
  std::vector<std::string> problems;
  Settings s;

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

  const auto workers = number<unsigned>(problems, "workers", config.workers, 0, kMaxWorkers);
  s.workers = workers == 0 ? std::max(1u, cores) : workers;

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

  // RFC 8489 §14.14: SOFTWARE is fewer than 128 characters (at most 763 bytes).
  if (config.software.size() >= 128) problems.push_back("software: must be shorter than 128 bytes");
  s.software = config.software;

  // The kernel doubles and caps these (net.core.rmem_max / wmem_max); refuse absurd values.
  constexpr std::uint64_t kMaxBuffer = 1u << 30;
  s.udp_receive_buffer = number<std::uint32_t>(problems, "udp-receive-buffer",
                                               config.udp_receive_buffer, 0, kMaxBuffer, true);
  s.udp_send_buffer = number<std::uint32_t>(problems, "udp-send-buffer", config.udp_send_buffer, 0,
                                            kMaxBuffer, true);
  s.tcp_idle_timeout = number<unsigned>(problems, "tcp-idle-timeout", config.tcp_idle_timeout, 1,
                                        7 * 24 * 3600);

  if (!problems.empty()) return Unexpected{std::move(problems)};
  return s;
}

}  // namespace tern::config
