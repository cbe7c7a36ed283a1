// `tern revoke --redis URL USER`: a revocation for the whole fleet, from anywhere that
// reaches its Redis (docs/fleet.md): the key every node reads when it (re)connects and the
// message every connected node applies at once (fleet_state.hpp).
#pragma once

#include <cstdint>
#include <string>

namespace tern::app {

struct RevokeOptions {
  std::string redis;          // redis://HOST[:PORT][/DB]
  std::string password_file;  // first line: AUTH password; empty: none
  std::string user;
  std::int64_t seconds = 86400;
};

// 0 when Redis took it (the number of nodes that received it is printed), else prints why.
int runRevoke(const RevokeOptions& options);

}  // namespace tern::app
