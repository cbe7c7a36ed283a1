// `tern token`: mints a TURN REST API credential (draft-uberti-behave-turn-rest) the way an
// application backend does, and prints it with a ready WebRTC iceServers entry.
#pragma once

#include <string>
#include <vector>

namespace tern::app {

struct TokenOptions {
  std::string secret;              // the shared secret (from a file or TERN_AUTH_SECRET)
  std::string user;                // the application's user id; may be empty
  long ttl_seconds = 86400;
  std::vector<std::string> urls;   // turn: / turns: URLs for the iceServers entry
};

// Prints username, password and the iceServers JSON to stdout; returns the exit code.
int runToken(const TokenOptions& options);

// The first secret in a --auth-secret-file (the one new credentials should use).
std::string firstSecret(const std::string& path);

}  // namespace tern::app
