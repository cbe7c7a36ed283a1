// See token.hpp.
#include "relay/app/token.hpp"

#include <ctime>
#include <fstream>
#include <iostream>
#include <stdexcept>

#include "auth/rest_credentials.hpp"

namespace tern::app {

namespace {

std::string jsonString(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') out += '\\';
    out += c;
  }
  return out + "\"";
}

}  // namespace

std::string firstSecret(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot read secret file '" + path + "'");
  for (std::string line; std::getline(in, line);) {
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ' || line.back() == '\t')) line.pop_back();
    const auto start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    return line.substr(start);
  }
  throw std::runtime_error("secret file '" + path + "' holds no secret");
}

int runToken(const TokenOptions& options) {
  const auto credential = auth::mintRestCredential(options.secret, options.user,
                                                   static_cast<std::int64_t>(std::time(nullptr)),
                                                   options.ttl_seconds);
  std::cout << "username: " << credential.username << "\n"
            << "password: " << credential.password << "\n"
            << "expires:  in " << options.ttl_seconds << " s\n\n"
            << "{\"urls\": [";
  for (std::size_t i = 0; i < options.urls.size(); ++i) {
    std::cout << (i ? ", " : "") << jsonString(options.urls[i]);
  }
  std::cout << "], \"username\": " << jsonString(credential.username)
            << ", \"credential\": " << jsonString(credential.password) << "}\n";
  return 0;
}

}  // namespace tern::app
