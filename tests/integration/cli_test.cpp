// The command line as an operator meets it: --version, --help, --print-config, --config,
// validation that names every problem at once, and what `tern token --oauth` prints.
#include <doctest/doctest.h>

#include <cstdio>
#include <ctime>
#include <fstream>
#include <regex>

#include "auth/base64.hpp"
#include "auth/oauth_token.hpp"
#include "relay/config/oauth_key_file.hpp"
#include "support/process.hpp"

using tern::test::runCommand;
using tern::test::ternBinary;

TEST_CASE("tern --version prints the version") {
  auto r = runCommand({ternBinary(), "--version"});
  CHECK(r.status == 0);
  CHECK(r.output.rfind("tern ", 0) == 0);
}

TEST_CASE("tern --help lists the subcommands and serve --help every option") {
  auto top = runCommand({ternBinary(), "--help"});
  CHECK(top.status == 0);
  CHECK(top.output.find("serve") != std::string::npos);
  CHECK(top.output.find("probe") != std::string::npos);
  auto serve = runCommand({ternBinary(), "serve", "--help"});
  CHECK(serve.status == 0);
  for (const char* option : {"--listen", "--workers", "--log-level", "--log-format", "--config",
                             "--print-config", "--udp-receive-buffer", "--tcp-idle-timeout", "--oauth-key-file",
                             "--oauth-server-name", "--max-bps", "--max-bps-per-user",
                             "--unauthenticated-rate", "--unauthenticated-burst",
                             "--max-tcp-connections-per-ip", "--max-tcp-connections",
                             "--max-requests-per-allocation", "--max-requests-per-allocation-burst",
                             "--max-dtls-handshakes-per-ip", "--max-dtls-sessions-per-ip", "--max-dtls-sessions"}) {
    CHECK_MESSAGE(serve.output.find(option) != std::string::npos, option);
  }
}

TEST_CASE("tern without a subcommand says what is missing and fails") {
  auto r = runCommand({ternBinary()});
  CHECK(r.status != 0);
  CHECK(r.output.find("subcommand") != std::string::npos);
}

TEST_CASE("validation names every problem and exits non-zero") {
  auto r = runCommand({ternBinary(), "serve", "--listen", "nowhere", "--workers", "lots",
                       "--log-level", "chatty", "--log-format", "yaml"});
  CHECK(r.status == 2);
  CHECK(r.output.find("4 problems") != std::string::npos);
  for (const char* key : {"listen:", "workers:", "log-level:", "log-format:"}) {
    CHECK_MESSAGE(r.output.find(key) != std::string::npos, key);
  }
}

TEST_CASE("--print-config merges file and flags, and its output is a valid --config file") {
  const std::string file = "tern_cli_test.toml";
  const std::string printed = "tern_cli_test_printed.toml";
  {
    std::ofstream f(file);
    f << "listen = [\"127.0.0.1:4444\", \"[::1]:4444\"]\nworkers = 3\nlog-format = \"json\"\n";
  }
  auto r = runCommand({ternBinary(), "serve", "--config", file, "--workers", "2", "--print-config"});
  CHECK(r.status == 0);
  CHECK(r.output.find(R"(listen=["127.0.0.1:4444", "[::1]:4444"])") != std::string::npos);
  CHECK(r.output.find("workers=2") != std::string::npos);
  CHECK(r.output.find("log-format=\"json\"") != std::string::npos);
  {
    std::ofstream f(printed);
    f << r.output;
  }
  auto again = runCommand({ternBinary(), "serve", "--config", printed, "--print-config"});
  CHECK(again.status == 0);
  CHECK(again.output == r.output);
  std::remove(file.c_str());
  std::remove(printed.c_str());
}

TEST_CASE("a misspelt key in the config file stops start-up") {
  const std::string file = "tern_cli_test_typo.toml";
  {
    std::ofstream f(file);
    f << "lissen = \"127.0.0.1:1\"\n";
  }
  auto r = runCommand({ternBinary(), "serve", "--config", file});
  CHECK(r.status != 0);
  CHECK(r.output.find("lissen") != std::string::npos);
  std::remove(file.c_str());
}

TEST_CASE("tern token --oauth prints kid, MAC key and an access token that the key file opens") {
  const std::string file = "tern_cli_test_oauth.keys";
  {
    std::ofstream f(file);
    f << "# newest first\n"
      << "north AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n"
      << "south AAECAwQFBgcICQoLDA0ODw== A128GCM\n";
  }
  auto keys = tern::config::loadOAuthKeyStore({file});
  REQUIRE(keys.has_value());
  struct Case {
    std::vector<std::string> extra;
    const char* kid;
    std::size_t mac_key_size;
  };
  for (const Case& c : {Case{{}, "north", 20},
                        Case{{"--kid", "south", "--mac-key-algorithm", "HMAC-SHA-256"}, "south", 32}}) {
    std::vector<std::string> args{ternBinary(), "token", "--oauth", "--oauth-key-file", file,
                                  "--server-name", "turn.example.org", "--lifetime", "120"};
    args.insert(args.end(), c.extra.begin(), c.extra.end());
    const auto before = static_cast<std::int64_t>(std::time(nullptr));
    auto r = runCommand(args);
    INFO(r.output);
    REQUIRE(r.status == 0);
    std::smatch kid, mac, token;
    REQUIRE(std::regex_search(r.output, kid, std::regex(R"(kid: (\S+))")));
    REQUIRE(std::regex_search(r.output, mac, std::regex(R"(mac_key: (\S+))")));
    REQUIRE(std::regex_search(r.output, token, std::regex(R"(access_token: (\S+))")));
    CHECK(r.output.find("lifetime: 120\n") != std::string::npos);
    CHECK(kid[1].str() == c.kid);
    auto mac_key = tern::auth::base64Decode(mac[1].str());
    auto token_bytes = tern::auth::base64Decode(token[1].str());
    REQUIRE(mac_key.has_value());
    REQUIRE(token_bytes.has_value());
    CHECK(mac_key->size() == c.mac_key_size);
    auto decoded = keys->decode(kid[1].str(), *token_bytes, "turn.example.org");
    REQUIRE(decoded.has_value());
    CHECK(decoded->mac_key == *mac_key);
    CHECK(decoded->lifetime == 120);
    CHECK(tern::auth::tokenSeconds(decoded->timestamp) >= before);
    CHECK(tern::auth::tokenValidAt(*decoded, before + 60));
    // Sealed for its server name only.
    CHECK_FALSE(keys->decode(kid[1].str(), *token_bytes, "tern").has_value());
  }

  auto unknown = runCommand({ternBinary(), "token", "--oauth", "--oauth-key-file", file, "--kid", "west"});
  CHECK(unknown.status == 2);
  CHECK(unknown.output.find("no key with kid 'west'") != std::string::npos);
  auto rest_option = runCommand({ternBinary(), "token", "--oauth", "--oauth-key-file", file, "--user", "x"});
  CHECK(rest_option.status != 0);
  CHECK(rest_option.output.find("excludes") != std::string::npos);
  auto needs_oauth = runCommand({ternBinary(), "token", "--kid", "north"});
  CHECK(needs_oauth.status != 0);
  CHECK(needs_oauth.output.find("--oauth") != std::string::npos);
  std::remove(file.c_str());
}
