// The running relay: binds every listening socket up front (so address errors stop start-up
// before any thread runs), starts one Worker per configured thread, serves the operator's
// HTTP port, and turns signals into reloads, drains and shutdown. The only code that tests do not link.
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "relay/app/upgrader.hpp"
#include "relay/config/config.hpp"

namespace tern::app {

// Reads the configuration again, as at start-up (flags, --config file, secret files), for a
// SIGHUP reload: the settings, or every problem found.
using SettingsLoader = std::function<Expected<config::Settings, std::vector<std::string>>()>;

// Runs until SIGINT, until a drain (SIGTERM, POST /drain) completes, or until a second
// SIGTERM. Returns the process exit code: 0 after a clean shutdown in which every worker's
// loop closed with no handle left open.
// `command_line` is what an upgrade (SIGUSR2, POST /upgrade) starts.
int runServer(const config::Settings& settings, SettingsLoader reload, CommandLine command_line);

}  // namespace tern::app
