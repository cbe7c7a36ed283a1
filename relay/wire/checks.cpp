// Bug checks and the out-of-memory policy; see checks.hpp.
#include "relay/wire/checks.hpp"

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
  // Every time: the reporter decides how often to write (the log's keeps to one line a
  // minute, relay/io/log.cpp), so this layer reads no clock.
  reporter.load()(Failure::kOutOfMemory, site, "refused what needed the memory; serving on");
}

std::uint64_t bugsSeen() noexcept { return bugs.load(std::memory_order_relaxed); }
std::uint64_t outOfMemorySeen() noexcept { return out_of_memory.load(std::memory_order_relaxed); }

}  // namespace tern::checks
