// One line per event, plain or JSON, to stderr (../shared/DESIGN.md §5). A line is written
// with a single write(2) so lines from different workers never interleave.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

#include "relay/config/config.hpp"

#include "relay/wire/checks.hpp"

namespace tern::io::log {

using config::LogFormat;
using config::LogLevel;

struct Field {
  std::string_view key;
  std::string value;
  bool quoted = true;  // JSON: strings are quoted, numbers are not

  Field(std::string_view k, std::string_view v) : key(k), value(v) {}
  Field(std::string_view k, const std::string& v) : key(k), value(v) {}
  Field(std::string_view k, const char* v) : key(k), value(v) {}
  template <std::integral T>
  Field(std::string_view k, T v) : key(k), value(std::to_string(v)), quoted(false) {}
};

void configure(LogLevel level, LogFormat format) noexcept;
bool enabled(LogLevel level) noexcept;
// relay/wire/checks.hpp's bugs and out-of-memory refusals as error lines; relay/app installs it
// with checks::setReporter. Out of memory writes at most one line a minute (a LineBudget of
// kOutOfMemoryLinesPerSecond), from any thread. Falls back to stderr if a line cannot be built.
void reportFailure(checks::Failure failure, const char* site, const char* what) noexcept;
void write(LogLevel level, std::string_view event, std::initializer_list<Field> fields = {});
// Appends `s` as a JSON string, quoted and escaped (the JSON log format, the admin API).
void appendJsonString(std::string& out, std::string_view s);

inline void debug(std::string_view e, std::initializer_list<Field> f = {}) {
  if (enabled(LogLevel::kDebug)) write(LogLevel::kDebug, e, f);
}
inline void info(std::string_view e, std::initializer_list<Field> f = {}) {
  if (enabled(LogLevel::kInfo)) write(LogLevel::kInfo, e, f);
}
inline void warn(std::string_view e, std::initializer_list<Field> f = {}) {
  if (enabled(LogLevel::kWarn)) write(LogLevel::kWarn, e, f);
}
inline void error(std::string_view e, std::initializer_list<Field> f = {}) {
  if (enabled(LogLevel::kError)) write(LogLevel::kError, e, f);
}

// A token bucket for lines that a remote party can trigger at will (failed handshakes,
// refused requests, accept errors): at most `burst` at once and `per_second` on average, so a
// flood costs a few lines, not the disk. One per worker; not thread-safe.
// relay/wire/checks.hpp out-of-memory lines: one a minute (see reportFailure).
inline constexpr double kOutOfMemoryLinesPerSecond = 1.0 / 60;

class LineBudget {
 public:
  LineBudget(double per_second, double burst) noexcept : rate_(per_second), burst_(burst), tokens_(burst) {}
  // True if a line may be written at `now_ms` (any monotonic milliseconds). When it returns
  // true, `suppressed` is how many lines were refused since the last one allowed.
  bool allow(std::uint64_t now_ms, std::uint64_t& suppressed) noexcept;

 private:
  double rate_;
  double burst_;
  double tokens_;
  std::uint64_t last_ms_ = 0;
  std::uint64_t refused_ = 0;
};

// Exposed for tests: the line write() would emit, without the trailing newline.
std::string formatLine(LogFormat format, LogLevel level, std::string_view timestamp,
                       std::string_view event, std::initializer_list<Field> fields);

}  // namespace tern::io::log
