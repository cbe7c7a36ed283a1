// The command line as an operator meets it: --version, --help, --print-config, --config and
// validation that names every problem at once.
#include <doctest/doctest.h>

#include <cstdio>
#include <fstream>

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
                             "--print-config", "--udp-receive-buffer", "--tcp-idle-timeout"}) {
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
