// Binds every Config field to a CLI11 option of `tern serve`. The same keys work in the
// --config file (TOML or INI), so flags and file can never drift apart.
#pragma once

#include <CLI/CLI.hpp>

#include "relay/config/config.hpp"

namespace tern::config {

// Adds the options of `serve` (and --config) to `app`, writing into `config`.
void addServeOptions(CLI::App& app, Config& config);

// The --print-config text of a parsed `app`: every option in the --config format, with
// secrets redacted (a --user's password). Changes what `app` would print, not `config`.
std::string printableConfig(CLI::App& app);

}  // namespace tern::config
