// Static user files (--user-file): one NAME:PASSWORD a line, so passwords need not sit in argv
// or in the --config file (DESIGN.md §5); read at start and on every SIGHUP.
#pragma once

#include <string>
#include <vector>

#include "relay/config/config.hpp"

namespace tern::config {

// The users in `path`, in order. Blank lines and lines starting with '#' (after leading
// blanks) are skipped; a CR before the newline and blanks around the line are trimmed. The
// name ends at the first ':', so a password may hold colons. Each malformed line, and a file
// that cannot be read, adds a problem to `problems` naming the file and the line number,
// never the line's text: it may be a password.
std::vector<StaticUser> readUserFile(const std::string& path, std::vector<std::string>& problems);

// "NAME:<redacted>" for "NAME:PASSWORD", for printing a --user value; "" stays "".
std::string redactedUser(const std::string& user);

}  // namespace tern::config
