// See user_file.hpp.
#include "relay/config/user_file.hpp"

#include <fstream>

namespace tern::config {

std::vector<StaticUser> readUserFile(const std::string& path, std::vector<std::string>& problems) {
  std::vector<StaticUser> users;
  std::ifstream in(path);
  if (!in) {
    problems.push_back("user-file: cannot read '" + path + "'");
    return users;
  }
  std::size_t number = 0;
  for (std::string line; std::getline(in, line);) {
    ++number;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t'))
      line.pop_back();
    const auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    const auto colon = line.find(':', start);
    if (colon == std::string::npos || colon == start || colon + 1 == line.size()) {
      problems.push_back("user-file: '" + path + "' line " + std::to_string(number) +
                         ": not NAME:PASSWORD");
      continue;
    }
    users.push_back({line.substr(start, colon - start), line.substr(colon + 1)});
  }
  return users;
}

std::string redactedUser(const std::string& user) {
  if (user.empty()) return user;  // --print-config's "none", which must read back as such
  const auto colon = user.find(':');
  return colon == std::string::npos ? std::string("<redacted>")
                                    : user.substr(0, colon) + ":<redacted>";
}

}  // namespace tern::config
