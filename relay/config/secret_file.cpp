// See secret_file.hpp.
#include "relay/config/secret_file.hpp"

#include <fstream>
#include <stdexcept>

namespace tern::config {

std::vector<std::string> readSecretFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read '" + path + "'");
  std::vector<std::string> secrets;
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    const auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    secrets.push_back(line.substr(start));
  }
  if (secrets.empty()) throw std::runtime_error("'" + path + "' holds no secret");
  return secrets;
}

}  // namespace tern::config
