// Two kinds of failure every layer may meet, handled one way everywhere (docs/architecture.md,
// "Bugs and out-of-memory"):
//
// TERN_BUG_IF(condition, what): a state the code believes impossible (Envoy's ENVOY_BUG). In
// debug, sanitizer and fuzzing builds it aborts with the site, so tests and fuzzers stop at
// the bug. In release builds it logs once per site, counts (tern_bugs_total) and carries on
// with the recovery written after it: a relay serving thousands of calls must not drop them
// all for one inconsistent entry.
//
// outOfMemory(site): a control-path allocation (a new allocation, permission, connection,
// buffer) failed with std::bad_alloc. The request or connection that needed it is refused
// and the process lives on; it is counted (tern_out_of_memory_total) and reported each time,
// which the log relay/app installs turns into at most one line a minute. The packet path never allocates, so it never gets here. A std::bad_alloc that
// escapes a noexcept function terminates the process with a log line (the terminate handler
// relay/app installs), as at start-up.
//
// This file sits at the bottom of the layers (standard library only) so wire, auth, core,
// io and metrics can all use it; relay/app installs the handler that writes the lines.
#pragma once

#include <atomic>
#include <cstdint>

namespace tern::checks {

enum class Failure : std::uint8_t { kBug, kOutOfMemory };
// Writes one line about a failure. Must not allocate much or throw; runs on any thread.
using Reporter = void (*)(Failure failure, const char* site, const char* what) noexcept;

// The default writes to stderr; relay/app installs the structured log.
void setReporter(Reporter reporter) noexcept;
// Whether TERN_BUG_IF aborts: on by default in debug, sanitizer and fuzzing builds (defined
// by CMake as TERN_BUG_ABORTS), off in release. Tests of the release behaviour turn it off.
void setBugAborts(bool aborts) noexcept;
bool bugAborts() noexcept;

// A bug at `site` ("file:line"); `first_seen` is the site's own flag, so each site reports
// once. Aborts if bugAborts().
void bug(const char* site, const char* what, std::atomic<bool>& first_seen) noexcept;
// An allocation at `site` failed with std::bad_alloc (see above).
void outOfMemory(const char* site) noexcept;

// Process-wide counts for /metrics.
std::uint64_t bugsSeen() noexcept;
std::uint64_t outOfMemorySeen() noexcept;

}  // namespace tern::checks

#define TERN_CHECKS_STR2(x) #x
#define TERN_CHECKS_STR(x) TERN_CHECKS_STR2(x)
#define TERN_BUG_IF(condition, what)                                                     \
  do {                                                                                   \
    if (__builtin_expect(static_cast<bool>(condition), 0)) {                             \
      static std::atomic<bool> tern_bug_seen_{false};                                    \
      ::tern::checks::bug(__FILE__ ":" TERN_CHECKS_STR(__LINE__), what, tern_bug_seen_); \
    }                                                                                    \
  } while (false)
