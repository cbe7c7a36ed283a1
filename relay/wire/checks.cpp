// Bug checks and the out-of-memory policy; see checks.hpp.
#include "relay/wire/checks.hpp"

#include <chrono>
#include <cstdio>
#include <cstdlib>

namespace tern::checks {

namespace {

void writeToStderr(Failure failure, const char* site, const char* what) noexcept {
  std::fprintf(stderr, "tern: %s at %s: %s\n", failure == Failure::kBug ? "BUG" : "out of memory",
               site, what);
}

#ifdef TERN_BUG_ABORTS
constexpr bool kAbortsByDefault = true;
#else
constexpr bool kAbortsByDefault = false;
#endif

std::atomic<Reporter> reporter{&writeToStderr};
std::atomic<bool> aborts{kAbortsByDefault};
std::atomic<std::uint64_t> bugs{0};
std::atomic<std::uint64_t> out_of_memory{0};
std::atomic<std::int64_t> out_of_memory_logged_s{-60};

std::int64_t steadySeconds() noexcept {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

}  // namespace

void setReporter(Reporter r) noexcept { reporter.store(r != nullptr ? r : &writeToStderr); }
void setBugAborts(bool on) noexcept { aborts.store(on); }
bool bugAborts() noexcept { return aborts.load(); }

void bug(const char* site, const char* what, std::atomic<bool>& first_seen) noexcept {
  bugs.fetch_add(1, std::memory_order_relaxed);
  if (aborts.load()) {
    writeToStderr(Failure::kBug, site, what);
    std::abort();
  }
  if (!first_seen.exchange(true)) reporter.load()(Failure::kBug, site, what);
}

void outOfMemory(const char* site) noexcept {
  out_of_memory.fetch_add(1, std::memory_order_relaxed);
  // Once a minute across the process: under memory pressure every request may fail alike.
  const std::int64_t now = steadySeconds();
  std::int64_t last = out_of_memory_logged_s.load();
  if (now - last < 60 || !out_of_memory_logged_s.compare_exchange_strong(last, now)) return;
  reporter.load()(Failure::kOutOfMemory, site, "refused what needed the memory; serving on");
}

std::uint64_t bugsSeen() noexcept { return bugs.load(std::memory_order_relaxed); }
std::uint64_t outOfMemorySeen() noexcept { return out_of_memory.load(std::memory_order_relaxed); }

}  // namespace tern::checks
