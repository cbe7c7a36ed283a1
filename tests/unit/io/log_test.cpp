// Log line formats: plain key=value and one JSON object per line.
#include <doctest/doctest.h>

#include "relay/io/log.hpp"

using namespace tern::io::log;

TEST_CASE("plain lines quote values that would break key=value splitting") {
  const auto line = formatLine(LogFormat::kPlain, LogLevel::kInfo, "T", "listening",
                               {{"address", "127.0.0.1:3478"}, {"reason", "closed by client"}, {"n", 3}});
  CHECK(line == "T info listening address=127.0.0.1:3478 reason=\"closed by client\" n=3");
}

TEST_CASE("JSON lines escape strings and leave numbers bare") {
  const auto line = formatLine(LogFormat::kJson, LogLevel::kWarn, "T", "odd \"event\"",
                               {{"text", "a\nb\\c"}, {"workers", 2}});
  CHECK(line == "{\"ts\":\"T\",\"level\":\"warn\",\"event\":\"odd \\\"event\\\"\",\"text\":\"a\\nb\\\\c\",\"workers\":2}");
}

TEST_CASE("a line budget lets a burst through, then the refill rate, and counts what it refused") {
  LineBudget budget(10, 5);  // 10 lines a second, 5 at once
  std::uint64_t suppressed = 99;
  for (int i = 0; i < 5; ++i) CHECK(budget.allow(1000, suppressed));
  CHECK(suppressed == 0);
  for (int i = 0; i < 20; ++i) CHECK_FALSE(budget.allow(1000, suppressed));
  // 100 ms refill one line, which says how many were refused before it.
  CHECK(budget.allow(1100, suppressed));
  CHECK(suppressed == 20);
  CHECK_FALSE(budget.allow(1100, suppressed));
  // A long quiet spell refills to the burst, never beyond it.
  std::uint64_t passed = 0;
  for (int i = 0; i < 50; ++i) passed += budget.allow(60000, suppressed) ? 1u : 0u;
  CHECK(passed == 5);
}

TEST_CASE("out-of-memory lines are written at most once a minute, the next one counting what was left out") {
  LineBudget budget(kOutOfMemoryLinesPerSecond, 1);
  std::uint64_t suppressed = 99;
  CHECK(budget.allow(1000, suppressed));
  CHECK(suppressed == 0);
  for (int i = 0; i < 4; ++i) CHECK_FALSE(budget.allow(1000 + 1000 * static_cast<std::uint64_t>(i), suppressed));
  CHECK_FALSE(budget.allow(59'000, suppressed));
  CHECK(budget.allow(61'000, suppressed));
  CHECK(suppressed == 5);
}
