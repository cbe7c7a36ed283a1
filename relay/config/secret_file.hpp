// Secret files (--auth-secret-file, tern token --secret-file): one secret per line, the
// current one first; blank lines and '#' comments are skipped, CRLF and trailing blanks
// trimmed.
#pragma once

#include <string>
#include <vector>

namespace tern::config {

// The secrets in `path`, in order; throws std::runtime_error naming the file when it cannot
// be read or holds none.
std::vector<std::string> readSecretFile(const std::string& path);

}  // namespace tern::config
