// See token.hpp.
#include "relay/app/token.hpp"

#include <ctime>
#include <iostream>
#include <stdexcept>

#include "auth/base64.hpp"
#include "auth/oauth_token.hpp"
#include "auth/rest_credentials.hpp"
#include "relay/config/oauth_key_file.hpp"
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

// The key named `kid`, or the first one; null (with the reason printed) when there is none.
const auth::OAuthKey* chooseKey(const std::vector<auth::OAuthKey>& keys, const std::string& kid) {
  if (kid.empty()) return &keys.front();
  for (const auto& key : keys) {
    if (key.kid == kid) return &key;
  }
  std::cerr << "tern token: no key with kid '" << kid << "' in the OAuth key file\n";
  return nullptr;
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

std::size_t macKeySizeFor(const std::string& algorithm) {
  // RFC 7635 §6.2: a 160-bit key for HMAC-SHA1 (MESSAGE-INTEGRITY) MUST be supported; a
  // 256-bit one serves MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6).
  return algorithm == "HMAC-SHA-256" ? auth::kMacKeySha256Size : auth::kMacKeySha1Size;
}

int runOAuthToken(const OAuthTokenOptions& options) {
  auto keys = config::readOAuthKeyFiles({options.key_file});
  if (!keys) {
    for (const auto& problem : keys.error()) std::cerr << "tern token: oauth-key-file: " << problem << "\n";
    return 2;
  }
  const auth::OAuthKey* key = chooseKey(*keys, options.kid);
  if (key == nullptr) return 2;
  const auto minted = auth::mintAccessToken(*key, options.server_name, macKeySizeFor(options.mac_key_algorithm),
                                            static_cast<std::int64_t>(std::time(nullptr)), options.lifetime);
  // The client sends the kid as USERNAME and the token as ACCESS-TOKEN, and signs its
  // requests with the MAC key (RFC 7635 §5).
  std::cout << "kid: " << key->kid << "\n"
            << "mac_key: " << auth::base64Encode(minted.mac_key) << "\n"
            << "mac_key_algorithm: " << options.mac_key_algorithm << "\n"
            << "access_token: " << auth::base64Encode(minted.token) << "\n"
            << "lifetime: " << options.lifetime << "\n";
  return 0;
}

}  // namespace tern::app
