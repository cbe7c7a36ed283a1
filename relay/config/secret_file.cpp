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

std::string readAdminTokenFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read '" + path + "'");
  std::string token;
  std::getline(in, token);
  const auto start = token.find_first_not_of(" \t");
  token.erase(0, start == std::string::npos ? token.size() : start);
  while (!token.empty() && (token.back() == '\r' || token.back() == ' ' || token.back() == '\t'))
    token.pop_back();
  if (token.size() < kMinAdminTokenLength) {
    throw std::runtime_error("'" + path + "': the token on its first line must be at least " +
                             std::to_string(kMinAdminTokenLength) + " characters");
  }
  return token;
}

}  // namespace tern::config
