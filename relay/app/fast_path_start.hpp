// Issue 21: the kernel fast path at start-up, as --fast-path asks (docs/fast-path.md).
#pragma once

#include <memory>
#include <vector>

#include "relay/config/config.hpp"
#include "relay/io/fast_path.hpp"

namespace tern::app {

// The fast path's program, loaded and attached for the workers to share, or null: off, or
// auto where it cannot start (logged once, with why and what to do; the relay serves from
// user space). With `on`, a fast path that cannot start stops start-up: throws
// std::runtime_error with the reason.
std::shared_ptr<const io::FastPath> startFastPath(const config::Settings& settings,
                                                  const std::vector<wire::IpAddress>& relay_ips);

}  // namespace tern::app
