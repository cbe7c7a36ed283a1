// `tern token`: mints a TURN REST API credential (draft-uberti-behave-turn-rest) the way an
// application backend does, and prints it with a ready WebRTC iceServers entry; with --oauth,
// an RFC 7635 self-contained access token the way an authorization server does.
#pragma once

#include <cstddef>
#include <cstdint>
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

struct OAuthTokenOptions {
  std::string key_file;             // AS-RS keys in the `tern serve --oauth-key-file` format
  std::string kid;                  // empty: the file's first key
  std::string server_name = "tern";  // must equal the relay's --oauth-server-name
  std::uint32_t lifetime = 3600;    // seconds
  std::string mac_key_algorithm = "HMAC-SHA-1";  // or HMAC-SHA-256
};

// The MAC key size for a --mac-key-algorithm name: 20 for HMAC-SHA-1, 32 for HMAC-SHA-256.
std::size_t macKeySizeFor(const std::string& algorithm);

// Prints kid, mac_key, mac_key_algorithm, access_token and lifetime, one "name: value" per
// line, to stdout; problems go to stderr. Returns the exit code.
int runOAuthToken(const OAuthTokenOptions& options);

}  // namespace tern::app
