// Secret files (--auth-secret-file, tern token --secret-file): one secret per line, the
// current one first; blank lines and '#' comments are skipped, CRLF and trailing blanks
// trimmed. Token files (--admin-token-file): the first line is the token.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

namespace tern::config {

// The secrets in `path`, in order; throws std::runtime_error naming the file when it cannot
// be read or holds none.
std::vector<std::string> readSecretFile(const std::string& path);

// An admin bearer token must be at least this long: too long to guess through the HTTP port.
inline constexpr std::size_t kMinAdminTokenLength = 16;

// The first line of `path`, blanks and CR trimmed; throws std::runtime_error naming the file
// (never the token) when it cannot be read or the token is shorter than kMinAdminTokenLength.
std::string readAdminTokenFile(const std::string& path);

}  // namespace tern::config
