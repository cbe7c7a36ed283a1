// The configuration `tern serve ARGS...` parses (CLI11, as main.cpp binds it), for the config tests.
#pragma once

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

#include "relay/config/cli_options.hpp"
#include "relay/config/config.hpp"

namespace tern::test {

// Parses `args` (without the program name) like `tern serve` does; throws CLI11's errors.
inline config::Config parseServeArgs(std::vector<std::string> args) {
  config::Config config;
  CLI::App app{"test", "tern serve"};
  config::addServeOptions(app, config);
  std::vector<const char*> argv{"tern serve"};
  for (auto& a : args) argv.push_back(a.c_str());
  app.parse(static_cast<int>(argv.size()), const_cast<char**>(argv.data()));
  return config;
}

}  // namespace tern::test
