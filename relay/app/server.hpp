// The running relay: binds every listening socket up front (so address errors stop start-up
// before any thread runs), starts one Worker per configured thread, and turns signals into
// shutdown. The only code that tests do not link.
#pragma once

#include "relay/config/config.hpp"

namespace tern::app {

// Runs until SIGINT or SIGTERM. Returns the process exit code: 0 after a clean shutdown in
// which every worker's loop closed with no handle left open.
int runServer(const config::Settings& settings);

}  // namespace tern::app
