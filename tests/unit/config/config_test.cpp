// Configuration: validation reports every problem, and flags and file share the same keys.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

#include "relay/config/cli_options.hpp"
#include "relay/config/config.hpp"
#include "serve_args.hpp"

using namespace tern::config;

namespace {

Config parse(std::vector<std::string> args) { return tern::test::parseServeArgs(std::move(args)); }

}  // namespace

TEST_CASE("defaults validate, with workers 0 meaning one per core") {
  auto s = validate(Config{}, 6);
  REQUIRE(s.has_value());
  CHECK(s->workers == 6);
  CHECK(s->listen.size() == 1);
  CHECK(s->listen[0].toString() == "0.0.0.0:3478");
  CHECK(s->log_level == LogLevel::kInfo);
  CHECK(validate(Config{}, 0)->workers == 1);
}

TEST_CASE("every problem is reported at once") {
  Config c;
  c.listen = {"bad", "127.0.0.1:99999", "[::1]:3478", "[::1]:3478"};
  c.workers = "many";
  c.log_level = "loud";
  c.log_format = "xml";
  c.udp_receive_buffer = "2G";
  c.udp_send_buffer = "-1";
  c.tcp_idle_timeout = "0";
  c.software = std::string(200, 'x');
  auto s = validate(c, 2);
  REQUIRE_FALSE(s.has_value());
  const auto& p = s.error();
  CHECK(p.size() == 10);
  auto mentions = [&](std::string_view key) {
    return std::count_if(p.begin(), p.end(), [&](const std::string& line) {
      return line.rfind(std::string(key) + ":", 0) == 0;
    });
  };
  CHECK(mentions("listen") == 3);
  CHECK(mentions("workers") == 1);
  CHECK(mentions("log-level") == 1);
  CHECK(mentions("log-format") == 1);
  CHECK(mentions("udp-receive-buffer") == 1);
  CHECK(mentions("udp-send-buffer") == 1);
  CHECK(mentions("tcp-idle-timeout") == 1);
  CHECK(mentions("software") == 1);
}

TEST_CASE("sizes take K, M and G suffixes") {
  Config c;
  c.udp_receive_buffer = "4M";
  c.udp_send_buffer = "512k";
  auto s = validate(c, 1);
  REQUIRE(s.has_value());
  CHECK(s->udp_receive_buffer == 4u * 1024 * 1024);
  CHECK(s->udp_send_buffer == 512u * 1024);
}

TEST_CASE("bandwidth limits are bits per second with decimal K, M and G, 0 for none") {
  auto defaults = validate(Config{}, 1);
  REQUIRE(defaults.has_value());
  CHECK(defaults->max_bps == 0);
  CHECK(defaults->max_bps_per_user == 0);
  auto c = parse({"--max-bps", "2500k", "--max-bps-per-user", "10M"});
  auto s = validate(c, 1);
  REQUIRE(s.has_value());
  CHECK(s->max_bps == 2'500'000);
  CHECK(s->max_bps_per_user == 10'000'000);
  c.max_bps = "1G";
  CHECK(validate(c, 1)->max_bps == 1'000'000'000);
}

TEST_CASE("bandwidth limits below 1000 bit/s, above 100G or not numbers are refused") {
  Config c;
  c.max_bps = "999";
  c.max_bps_per_user = "101G";
  auto s = validate(c, 1);
  REQUIRE_FALSE(s.has_value());
  REQUIRE(s.error().size() == 2);
  CHECK(s.error()[0].rfind("max-bps: 999 is below the smallest limit", 0) == 0);
  CHECK(s.error()[1].rfind("max-bps-per-user: 101G is outside", 0) == 0);
  c.max_bps = "fast";
  c.max_bps_per_user = "1000";
  s = validate(c, 1);
  REQUIRE_FALSE(s.has_value());
  REQUIRE(s.error().size() == 1);
  CHECK(s.error()[0] == "max-bps: 'fast' is not a whole number (K, M or G suffix allowed)");
}

TEST_CASE("flags fill the config, --listen repeats and splits on commas") {
  auto c = parse({"--listen", "127.0.0.1:1", "--listen", "[::1]:2,127.0.0.2:3", "--workers", "3",
                  "--log-format", "json"});
  CHECK(c.listen == std::vector<std::string>{"127.0.0.1:1", "[::1]:2", "127.0.0.2:3"});
  CHECK(c.workers == "3");
  CHECK(c.log_format == "json");
  auto s = validate(c, 1);
  REQUIRE(s.has_value());
  CHECK(s->listen.size() == 3);
  CHECK(s->log_format == LogFormat::kJson);
}

TEST_CASE("the --config file uses the flags' names, and flags override it") {
  const std::string path = "tern_config_test.toml";
  {
    std::ofstream f(path);
    f << "# a comment\nlisten = [\"127.0.0.1:4000\", \"[::1]:4000\"]\nworkers = 5\n"
         "log-level = \"debug\"\nudp-receive-buffer = \"1M\"\nudp-segmentation = false\n";
  }
  auto c = parse({"--config", path, "--workers", "2"});
  std::remove(path.c_str());
  CHECK(c.listen == std::vector<std::string>{"127.0.0.1:4000", "[::1]:4000"});
  CHECK(c.workers == "2");
  CHECK(c.log_level == "debug");
  CHECK(c.udp_receive_buffer == "1M");
  CHECK_FALSE(c.udp_segmentation);
  CHECK(parse({}).udp_segmentation);
}

TEST_CASE("an unknown key in the --config file is an error") {
  const std::string path = "tern_config_test_bad.toml";
  {
    std::ofstream f(path);
    f << "lisen = \"127.0.0.1:1\"\n";
  }
  CHECK_THROWS_AS(parse({"--config", path}), CLI::ParseError);
  std::remove(path.c_str());
}

TEST_CASE("TURN defaults: relay ports 49152-65535, 100 allocations per user, 1 h maximum lifetime") {
  auto s = validate(Config{}, 2);
  REQUIRE(s.has_value());
  CHECK(s->relay_port_min == 49152);
  CHECK(s->relay_port_max == 65535);
  CHECK(s->max_allocations == 0);
  CHECK(s->max_allocations_per_user == 100);
  CHECK(s->max_lifetime == 3600);
  CHECK(s->realm == "tern");
  CHECK_FALSE(s->hasCredentials());
}

TEST_CASE("every TURN option problem is reported at once") {
  Config c;
  c.relay_ips = {"0.0.0.0", "not-an-ip"};
  c.relay_ports = "3000-2000";
  c.external_ips = {"203.0.113.5=10.0.0.5", "203.0.113.5=::1", "nope"};
  c.allow_peers = {"10.0.0.0/33"};
  c.deny_peers = {"[::1]/128"};
  c.users = {"nocolon", "alice:ok"};
  c.auth_secret_files = {"/nonexistent/tern-secret"};
  c.max_lifetime = "60";
  c.realm = "";
  auto s = validate(c, 1);
  REQUIRE_FALSE(s.has_value());
  const auto& p = s.error();
  auto mentions = [&](std::string_view key) {
    return std::count_if(p.begin(), p.end(), [&](const std::string& line) {
      return line.rfind(std::string(key) + ":", 0) == 0;
    });
  };
  CHECK(mentions("relay-ip") == 2);
  CHECK(mentions("relay-ports") == 1);
  CHECK(mentions("external-ip") == 2);
  CHECK(mentions("allow-peer") == 1);
  CHECK(mentions("deny-peer") == 1);
  CHECK(mentions("user") == 1);
  CHECK(mentions("auth-secret-file") == 1);
  CHECK(mentions("max-lifetime") == 1);
  CHECK(mentions("realm") == 1);
}

TEST_CASE("a listen port inside the relay range is refused: relay ports are reachable as peers") {
  Config c;
  c.listen = {"127.0.0.1:50000"};
  auto s = validate(c, 1);
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().front().find("contains the listen port 50000") != std::string::npos);
}

TEST_CASE("secret files hold one secret per line, comments, blank lines and CRLF are skipped") {
  const std::string path = "tern_config_test_secrets.txt";
  {
    std::ofstream f(path);
    f << "# current first\r\nnew-secret\r\n\n   \n  old-secret  \n";
  }
  Config c;
  c.auth_secret_files = {path};
  auto s = validate(c, 1);
  std::remove(path.c_str());
  REQUIRE(s.has_value());
  CHECK(s->auth_secrets == std::vector<std::string>{"new-secret", "old-secret"});
  CHECK(s->hasCredentials());
}

TEST_CASE("--external-ip maps PUBLIC for PRIVATE, or for the whole family") {
  Config c;
  c.external_ips = {"203.0.113.5=10.0.0.5", "2001:db8::5"};
  auto s = validate(c, 1);
  REQUIRE(s.has_value());
  REQUIRE(s->external_ips.size() == 2);
  CHECK(s->external_ips[0].public_ip.toString() == "203.0.113.5");
  CHECK(s->external_ips[0].private_ip->toString() == "10.0.0.5");
  CHECK_FALSE(s->external_ips[1].private_ip.has_value());
}

TEST_CASE("the secret from TERN_AUTH_SECRET is used but never printed with the configuration") {
  ::setenv("TERN_AUTH_SECRET", "from-the-environment", 1);
  Config config;
  CLI::App app{"test", "tern serve"};
  addServeOptions(app, config);
  const char* argv[] = {"tern serve", "--workers", "1"};
  app.parse(3, const_cast<char**>(argv));
  ::unsetenv("TERN_AUTH_SECRET");
  CHECK(config.auth_secret == "from-the-environment");
  CHECK(app.config_to_str(true, true).find("from-the-environment") == std::string::npos);
  auto s = validate(config, 1);
  REQUIRE(s.has_value());
  CHECK(s->auth_secrets == std::vector<std::string>{"from-the-environment"});
}

TEST_CASE("TLS options: --tls-listen needs --cert and --key, which go together and must be readable") {
  Config c;
  c.tls_listen = {"127.0.0.1:5349", "nowhere"};
  c.cert = "/nonexistent/chain.pem";
  auto s = validate(c, 1);
  REQUIRE_FALSE(s.has_value());
  const auto& p = s.error();
  auto has = [&](std::string_view text) {
    return std::any_of(p.begin(), p.end(), [&](const std::string& l) { return l.find(text) != std::string::npos; });
  };
  CHECK(has("tls-listen: 'nowhere' is not ADDR:PORT"));
  CHECK(has("--cert and --key go together"));
  CHECK(has("cert: cannot read '/nonexistent/chain.pem'"));
  Config dtls;
  dtls.dtls_listen = {"127.0.0.1:5349"};
  auto d = validate(dtls, 1);
  REQUIRE_FALSE(d.has_value());
  CHECK(d.error().front() == "dtls-listen: needs --cert and --key");
  Config alone;
  alone.tls_listen = {"127.0.0.1:5349"};
  auto t = validate(alone, 1);
  REQUIRE_FALSE(t.has_value());
  CHECK(t.error().front() == "tls-listen: needs --cert and --key");
}

TEST_CASE("abuse limits: defaults generous enough for a big NAT, auto total, 0 turns each off") {
  auto s = validate(Config{}, 2);
  REQUIRE(s.has_value());
  CHECK(s->unauthenticated_rate == 200);
  CHECK(s->unauthenticated_burst == 2000);
  CHECK(s->max_tcp_connections_per_ip == 512);
  CHECK_FALSE(s->max_tcp_connections.has_value());  // auto: resolved from the open files limit
  CHECK(s->max_dtls_handshakes_per_ip == 128);
  CHECK(s->max_dtls_sessions_per_ip == 512);
  CHECK_FALSE(s->max_dtls_sessions.has_value());

  auto c = parse({"--unauthenticated-rate", "0", "--unauthenticated-burst", "1", "--max-tcp-connections-per-ip",
                  "0", "--max-tcp-connections", "0", "--max-dtls-handshakes-per-ip", "0",
                  "--max-dtls-sessions-per-ip", "0", "--max-dtls-sessions", "0"});
  s = validate(c, 2);
  REQUIRE(s.has_value());
  CHECK(s->unauthenticated_rate == 0);
  CHECK(s->unauthenticated_burst == 1);
  CHECK(s->max_tcp_connections_per_ip == 0);
  CHECK(s->max_tcp_connections == 0u);
  CHECK(s->max_dtls_handshakes_per_ip == 0);
  CHECK(s->max_dtls_sessions_per_ip == 0);
  CHECK(s->max_dtls_sessions == 0u);
}

TEST_CASE("abuse limit problems are reported with the others") {
  Config c;
  c.unauthenticated_rate = "fast";
  c.unauthenticated_burst = "0";  // a burst below one answer would answer nothing
  c.max_tcp_connections_per_ip = "-3";
  c.max_tcp_connections = "lots";
  c.max_dtls_handshakes_per_ip = "many";
  c.max_dtls_sessions = "-1";
  auto s = validate(c, 2);
  REQUIRE_FALSE(s.has_value());
  CHECK(s.error().size() == 6);
  c = Config{};
  c.unauthenticated_burst = "1000001";
  CHECK_FALSE(validate(c, 2).has_value());
}

TEST_CASE("abuse limits come from the --config file under the flags' names") {
  const std::string path = "tern_config_test_abuse.toml";
  {
    std::ofstream out(path);
    out << "unauthenticated-rate = 50\nunauthenticated-burst = 70\nmax-tcp-connections-per-ip = 9\n"
           "max-tcp-connections = 900\n";
  }
  auto c = parse({"--config", path});
  std::remove(path.c_str());
  auto s = validate(c, 1);
  REQUIRE(s.has_value());
  CHECK(s->unauthenticated_rate == 50);
  CHECK(s->unauthenticated_burst == 70);
  CHECK(s->max_tcp_connections_per_ip == 9);
  CHECK(s->max_tcp_connections == 900u);
}

TEST_CASE("the request limit per allocation: 20/s with bursts of 200 by default, 0 turns it off (issue 18)") {
  auto s = validate(Config{}, 2);
  REQUIRE(s.has_value());
  CHECK(s->max_requests_per_allocation == 20);
  CHECK(s->max_requests_per_allocation_burst == 200);
  s = validate(parse({"--max-requests-per-allocation", "0", "--max-requests-per-allocation-burst", "5"}), 2);
  REQUIRE(s.has_value());
  CHECK(s->max_requests_per_allocation == 0);
  CHECK(s->max_requests_per_allocation_burst == 5);
  Config c;
  c.max_requests_per_allocation = "fast";
  c.max_requests_per_allocation_burst = "0";  // a burst below one request would admit none
  auto bad = validate(c, 2);
  REQUIRE_FALSE(bad.has_value());
  CHECK(bad.error().size() == 2);
}

TEST_CASE("--print-config shows a --user's name, never its password (issue 18)") {
  Config config;
  CLI::App app{"test", "tern serve"};
  addServeOptions(app, config);
  const char* argv[] = {"tern serve", "--user", "alice:s3cret-one", "--user",
                        "bob:pass:with:colons"};
  app.parse(5, const_cast<char**>(argv));
  const std::string printed = printableConfig(app);
  CHECK(printed.find("s3cret-one") == std::string::npos);
  CHECK(printed.find("with:colons") == std::string::npos);
  CHECK(printed.find("alice:<redacted>") != std::string::npos);
  CHECK(printed.find("bob:<redacted>") != std::string::npos);
  // The configuration itself keeps the passwords.
  auto s = validate(config, 1);
  REQUIRE(s.has_value());
  REQUIRE(s->users.size() == 2);
  CHECK(s->users[1].password == "pass:with:colons");
}

TEST_CASE("--hand-over-socket takes an absolute path that fits a Unix socket address (unix(7))") {
  CHECK(validate(Config{}, 1)->hand_over_socket.empty());
  CHECK(validate(parse({"--hand-over-socket", "/run/tern/hand-over.sock"}), 1)->hand_over_socket ==
        "/run/tern/hand-over.sock");
  const std::vector<std::string> refused{"run/tern.sock", "/run/tern/",
                                         "/" + std::string(107, 'x')};
  for (const std::string& bad : refused) {
    auto s = validate(parse({"--hand-over-socket", bad}), 1);
    REQUIRE_FALSE(s.has_value());
    CHECK(s.error().front().rfind("hand-over-socket:", 0) == 0);
  }
}

TEST_CASE("--upgrade-timeout: 30 s per step by default, 1 to 3600 s (docs/upgrade.md)") {
  auto s = validate(Config{}, 2);
  REQUIRE(s.has_value());
  CHECK(s->upgrade_timeout == 30);
  s = validate(parse({"--upgrade-timeout", "2"}), 2);
  REQUIRE(s.has_value());
  CHECK(s->upgrade_timeout == 2);
  for (const char* bad : {"0", "3601", "soon"}) {
    Config c;
    c.upgrade_timeout = bad;
    auto refused = validate(c, 2);
    REQUIRE_FALSE(refused.has_value());
    REQUIRE(refused.error().size() == 1);
    CHECK(refused.error()[0].rfind("upgrade-timeout:", 0) == 0);
  }
  Config config;
  CLI::App app{"test", "tern serve"};
  addServeOptions(app, config);
  const char* argv[] = {"tern serve", "--upgrade-timeout", "45"};
  app.parse(3, const_cast<char**>(argv));
  CHECK(printableConfig(app).find("upgrade-timeout=45") != std::string::npos);
}

TEST_CASE("the fast path is off by default, and auto, on, interfaces and capacity come from flags and checks") {
  auto defaults = validate(Config{}, 1);
  REQUIRE(defaults.has_value());
  CHECK(defaults->fast_path == FastPathMode::kOff);
  CHECK(defaults->fast_path_interfaces.empty());
  CHECK(defaults->fast_path_capacity == 32768);
  auto c = parse({"--fast-path", "auto", "--fast-path-interface", "eth0", "--fast-path-interface", "eth1",
                  "--fast-path-capacity", "1000"});
  auto s = validate(c, 1);
  REQUIRE(s.has_value());
  CHECK(s->fast_path == FastPathMode::kAuto);
  CHECK(s->fast_path_interfaces == std::vector<std::string>{"eth0", "eth1"});
  CHECK(s->fast_path_capacity == 1000);
  CHECK(validate(parse({"--fast-path", "on"}), 1)->fast_path == FastPathMode::kOn);
  CHECK_THROWS_AS(parse({"--fast-path", "maybe"}), CLI::ParseError);
}

TEST_CASE("the fast path refuses loopback, bad interface names and a capacity out of range") {
  Config c;
  c.fast_path = "on";
  c.fast_path_interfaces = {"lo", "a/b", "a-name-longer-than-15", "eth0", ""};
  c.fast_path_capacity = "131073";
  auto s = validate(c, 1);
  REQUIRE_FALSE(s.has_value());
  const auto& p = s.error();
  CHECK(std::count_if(p.begin(), p.end(), [](const std::string& l) { return l.rfind("fast-path-interface:", 0) == 0; }) ==
        3);
  CHECK(std::count_if(p.begin(), p.end(), [](const std::string& l) { return l.rfind("fast-path-capacity:", 0) == 0; }) ==
        1);
  c.fast_path_interfaces = {"eth0"};
  c.fast_path_capacity = "15";
  CHECK_FALSE(validate(c, 1).has_value());
  c.fast_path_capacity = "16";
  CHECK(validate(c, 1).has_value());
}
