// Structured logging; see log.hpp.
#include "relay/io/log.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <utility>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <mutex>

namespace tern::io::log {

namespace {

std::atomic<LogLevel> g_level{LogLevel::kInfo};
std::atomic<LogFormat> g_format{LogFormat::kPlain};

}  // namespace

void appendJsonString(std::string& out, std::string_view s) {
  out += '"';
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

namespace {

// Plain values with spaces, quotes or '=' are quoted so lines stay machine-splittable.
void appendPlainValue(std::string& out, std::string_view s) {
  if (!s.empty() && s.find_first_of(" \"=\t\n") == std::string_view::npos) {
    out += s;
  } else {
    appendJsonString(out, s);
  }
}

std::string timestamp() {
  using namespace std::chrono;
  const auto now = system_clock::now();
  const std::time_t t = system_clock::to_time_t(now);
  const auto ms = duration_cast<milliseconds>(now.time_since_epoch()).count() % 1000;
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[96];
  std::snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, static_cast<int>(ms));
  return buf;
}

}  // namespace

void configure(LogLevel level, LogFormat format) noexcept {
  g_level.store(level, std::memory_order_relaxed);
  g_format.store(format, std::memory_order_relaxed);
}

bool enabled(LogLevel level) noexcept { return level >= g_level.load(std::memory_order_relaxed); }

std::string formatLine(LogFormat format, LogLevel level, std::string_view ts,
                       std::string_view event, std::initializer_list<Field> fields) {
  std::string line;
  if (format == LogFormat::kJson) {
    line += "{\"ts\":";
    appendJsonString(line, ts);
    line += ",\"level\":";
    appendJsonString(line, config::levelName(level));
    line += ",\"event\":";
    appendJsonString(line, event);
    for (const auto& f : fields) {
      line += ',';
      appendJsonString(line, f.key);
      line += ':';
      if (f.quoted) {
        appendJsonString(line, f.value);
      } else {
        line += f.value;
      }
    }
    line += '}';
    return line;
  }
  line += ts;
  line += ' ';
  line += config::levelName(level);
  line += ' ';
  line += event;
  for (const auto& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    appendPlainValue(line, f.value);
  }
  return line;
}

void write(LogLevel level, std::string_view event, std::initializer_list<Field> fields) {
  std::string line =
      formatLine(g_format.load(std::memory_order_relaxed), level, timestamp(), event, fields);
  line += '\n';
  // A failed log write has nowhere to be reported; the server carries on.
  [[maybe_unused]] auto n = ::write(STDERR_FILENO, line.data(), line.size());
}

bool LineBudget::allow(std::uint64_t now_ms, std::uint64_t& suppressed) noexcept {
  if (now_ms > last_ms_) {
    tokens_ = std::min(burst_, tokens_ + static_cast<double>(now_ms - last_ms_) * rate_ / 1000.0);
    last_ms_ = now_ms;
  }
  if (tokens_ < 1.0) {
    ++refused_;
    return false;
  }
  tokens_ -= 1.0;
  suppressed = std::exchange(refused_, 0);
  return true;
}

namespace {

// Under memory pressure every request may fail alike: one line a minute, saying how many
// were left out. Workers report from their own threads.
bool mayWriteOutOfMemoryLine(std::uint64_t& suppressed) noexcept {
  static std::mutex mutex;
  static LineBudget budget(kOutOfMemoryLinesPerSecond, 1);
  const auto now = std::chrono::steady_clock::now().time_since_epoch();
  std::lock_guard lock(mutex);
  return budget.allow(static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::milliseconds>(now).count()),
                      suppressed);
}

}  // namespace

void reportFailure(checks::Failure failure, const char* site, const char* what) noexcept {
  std::uint64_t suppressed = 0;
  if (failure == checks::Failure::kOutOfMemory && !mayWriteOutOfMemoryLine(suppressed)) return;
  try {
    if (failure == checks::Failure::kBug) {
      error("BUG: an impossible state was met and recovered from; please report it (logged once per site)",
            {{"site", site}, {"what", what}});
    } else {
      error("out of memory: refused what needed it and serving on (logged at most once a minute)",
            {{"site", site}, {"what", what}, {"count", checks::outOfMemorySeen()}, {"suppressed", suppressed}});
    }
  } catch (...) {
    std::fprintf(stderr, "tern: %s at %s: %s\n", failure == checks::Failure::kBug ? "BUG" : "out of memory", site,
                 what);
  }
}

}  // namespace tern::io::log
