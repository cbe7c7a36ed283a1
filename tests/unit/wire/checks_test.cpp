// The bug check and the out-of-memory policy every layer uses (relay/wire/checks.hpp).
#include "relay/wire/checks.hpp"

#include <doctest/doctest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <string>
#include <vector>

using namespace tern;

namespace {

struct Reported {
  checks::Failure failure;
  std::string site;
  std::string what;
};
std::vector<Reported> reported;

void record(checks::Failure failure, const char* site, const char* what) noexcept {
  reported.push_back({failure, site, what});
}

// Release behaviour for the test's duration, whatever the build's default.
struct ReleaseMode {
  bool aborted_before = checks::bugAborts();
  ReleaseMode() {
    reported.clear();
    checks::setReporter(&record);
    checks::setBugAborts(false);
  }
  ~ReleaseMode() {
    checks::setReporter(nullptr);
    checks::setBugAborts(aborted_before);
  }
};

void mayHitBug(bool impossible) { TERN_BUG_IF(impossible, "the impossible happened"); }

}  // namespace

TEST_CASE("in release builds a bug is counted every time and reported once per site") {
  ReleaseMode release;
  const auto before = checks::bugsSeen();
  mayHitBug(false);
  CHECK(checks::bugsSeen() == before);
  mayHitBug(true);
  mayHitBug(true);
  TERN_BUG_IF(true, "another site");
  CHECK(checks::bugsSeen() == before + 3);
  REQUIRE(reported.size() == 2);
  CHECK(reported[0].failure == checks::Failure::kBug);
  CHECK(reported[0].what == "the impossible happened");
  CHECK(reported[0].site.find("checks_test.cpp:") != std::string::npos);
  CHECK(reported[1].what == "another site");
  CHECK(reported[1].site != reported[0].site);
}

// How often a line is written is the reporter's business (relay/io's log: once a minute,
// tests/unit/io/log_test.cpp); this layer reads no clock.
TEST_CASE("out of memory is counted and handed to the reporter every time") {
  ReleaseMode release;
  const auto before = checks::outOfMemorySeen();
  for (int i = 0; i < 5; ++i) checks::outOfMemory("a test site");
  CHECK(checks::outOfMemorySeen() == before + 5);
  CHECK(reported.size() == 5);
  for (const auto& r : reported) {
    CHECK(r.failure == checks::Failure::kOutOfMemory);
    CHECK(r.site == "a test site");
  }
}

TEST_CASE("where bugs abort (debug, sanitizer and fuzzing builds) a bug stops the process") {
  const pid_t child = fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    checks::setBugAborts(true);
    ::close(STDERR_FILENO);  // keep the expected line out of the test's output
    // doctest's crash handler would print a failure report from this child, as if the run had
    // failed: the abort is the expected end here.
    std::signal(SIGABRT, SIG_DFL);
    mayHitBug(true);
    _exit(0);  // not reached when the check aborts
  }
  int status = 0;
  REQUIRE(waitpid(child, &status, 0) == child);
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGABRT);
}

#ifdef TERN_BUG_ABORTS
TEST_CASE("this build aborts on bugs by default") { CHECK(checks::bugAborts()); }
#else
TEST_CASE("this build logs and counts bugs by default") { CHECK_FALSE(checks::bugAborts()); }
#endif
