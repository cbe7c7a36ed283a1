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
