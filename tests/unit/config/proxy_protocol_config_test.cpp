// --proxy-protocol-from: the load balancers whose connections start with a PROXY protocol
// header (docs/operations.md, "Behind HAProxy or a load balancer").
#include <doctest/doctest.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>

#include "relay/config/cli_options.hpp"
#include "relay/config/config.hpp"
#include "serve_args.hpp"

using namespace tern::config;

namespace {

Config parsed(std::vector<std::string> args) { return tern::test::parseServeArgs(std::move(args)); }

TEST_SUITE_BEGIN("config/proxy_protocol");

TEST_CASE("--proxy-protocol-from takes repeated IPv4 and IPv6 ranges and refuses anything else") {
  auto none = validate(Config{}, 1);
  REQUIRE(none.has_value());
  CHECK(none->proxy_protocol_from.empty());
  auto s = validate(parsed({"--proxy-protocol-from", "10.0.0.0/8", "--proxy-protocol-from",
                            "2001:db8::/32", "--proxy-protocol-from", "192.0.2.7"}),
                    1);
  REQUIRE(s.has_value());
  REQUIRE(s->proxy_protocol_from.size() == 3);
  CHECK(s->proxy_protocol_from[0].describe() == "10.0.0.0/8");
  CHECK(s->proxy_protocol_from[1].describe() == "2001:db8::/32");
  CHECK(s->proxy_protocol_from[2].describe() == "192.0.2.7/32");
  for (const char* bad : {"10.0.0.0/33", "lb.example", "[::1]/128"}) {
    auto refused = validate(parsed({"--proxy-protocol-from", bad}), 1);
    REQUIRE_FALSE(refused.has_value());
    REQUIRE(refused.error().size() == 1);
    CHECK(refused.error()[0].rfind("proxy-protocol-from:", 0) == 0);
  }
}

TEST_CASE(
    "--print-config lists every --proxy-protocol-from range, and reads back as a --config file") {
  Config config;
  CLI::App app{"test", "tern serve"};
  addServeOptions(app, config);
  const char* argv[] = {"tern serve", "--proxy-protocol-from", "10.1.0.0/16",
                        "--proxy-protocol-from", "fd00::/8"};
  app.parse(5, const_cast<char**>(argv));
  const std::string printed = printableConfig(app);
  INFO(printed);
  CHECK(printed.find("proxy-protocol-from=[\"10.1.0.0/16\", \"fd00::/8\"]") != std::string::npos);
  const std::string file = "tern_proxy_protocol_config_test.toml";
  std::ofstream(file) << printed;
  const Config again = parsed({"--config", file});
  std::remove(file.c_str());
  CHECK(again.proxy_protocol_from == config.proxy_protocol_from);
}

TEST_SUITE_END();

}  // namespace
