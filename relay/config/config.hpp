// Everything an operator can set, in one struct that CLI11 fills from flags and from the
// --config file alike (../shared/DESIGN.md §5), and its validated, typed form.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "relay/wire/address.hpp"
#include "relay/wire/expected.hpp"

namespace tern::config {

enum class LogLevel : std::uint8_t { kTrace, kDebug, kInfo, kWarn, kError };
enum class LogFormat : std::uint8_t { kPlain, kJson };

// As given on the command line or in the file. Every value is kept as text and checked by
// validate(), so one run reports every mistake, not only the first number that fails to parse.
struct Config {
  std::vector<std::string> listen{"0.0.0.0:3478"};
  std::string workers = "0";  // 0: one per CPU core
  std::string log_level = "info";
  std::string log_format = "plain";
  std::string software = "tern";
  std::string udp_receive_buffer = "0";  // SO_RCVBUF bytes (K/M suffix); 0: system default
  std::string udp_send_buffer = "0";     // SO_SNDBUF bytes (K/M suffix); 0: system default
  std::string tcp_idle_timeout = "300";  // seconds a stream connection may stay silent
};

// The same settings after validation, in the types the server uses.
struct Settings {
  std::vector<wire::SocketAddress> listen;  // each serves UDP and TCP
  unsigned workers = 1;
  LogLevel log_level = LogLevel::kInfo;
  LogFormat log_format = LogFormat::kPlain;
  std::string software;
  std::uint32_t udp_receive_buffer = 0;
  std::uint32_t udp_send_buffer = 0;
  unsigned tcp_idle_timeout = 300;
};

inline constexpr unsigned kMaxWorkers = 256;

// Checks everything and reports every problem, one line each, rather than the first.
// `cores` resolves workers = 0.
Expected<Settings, std::vector<std::string>> validate(const Config& config, unsigned cores);

std::string_view levelName(LogLevel level) noexcept;

}  // namespace tern::config
