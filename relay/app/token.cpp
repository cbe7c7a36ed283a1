// See token.hpp.
#include "relay/app/token.hpp"

#include <ctime>
#include <iostream>
#include <stdexcept>

#include "auth/rest_credentials.hpp"
#include "relay/config/secret_file.hpp"

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

std::string firstSecret(const std::string& path) { return config::readSecretFile(path).front(); }

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
