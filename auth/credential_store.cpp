// Long-term credential look-up (RFC 8489 §9.2.2) over static users and TURN REST secrets
// (draft-uberti-behave-turn-rest-00 §2.2); see credential_store.hpp.
#include "auth/credential_store.hpp"

#include <algorithm>
#include <stdexcept>
#include <utility>

#include "auth/message_integrity.hpp"
#include "auth/rest_credentials.hpp"

namespace tern::auth {

namespace {

// Names the problems of `options` (never a secret or password), one per line.
std::string problemsOf(const CredentialOptions& options) {
  std::string problems;
  for (std::size_t i = 0; i < options.rest_secrets.size(); ++i) {
    if (options.rest_secrets[i].empty()) {
      problems += "\n  REST secret #" + std::to_string(i + 1) + " is empty";
    }
  }
  std::map<std::string_view, std::size_t, std::less<>> seen;
  for (const StaticUser& user : options.static_users) {
    if (user.name.empty()) {
      problems += "\n  a static user has an empty name";
    } else if (++seen[user.name] == 2) {
      problems += "\n  static user '" + user.name + "' is listed more than once";
    }
  }
  return problems;
}

}  // namespace

CredentialStore::CredentialStore(CredentialOptions options) {
  if (std::string problems = problemsOf(options); !problems.empty()) {
    throw std::invalid_argument("invalid credentials:" + problems);
  }
  realm_ = std::move(options.realm);
  rest_secrets_ = std::move(options.rest_secrets);
  for (const StaticUser& user : options.static_users) {
    static_keys_.emplace(user.name,
                         StaticKeys{longTermKey(PasswordAlgorithmId::kMd5, user.name, realm_, user.password),
                                    longTermKey(PasswordAlgorithmId::kSha256, user.name, realm_, user.password)});
    static_userhashes_.emplace(userhash(user.name, realm_), user.name);
  }
}

const std::string* CredentialStore::userByHash(std::span<const std::uint8_t> hash) const {
  if (hash.size() != 32) return nullptr;
  std::array<std::uint8_t, 32> key{};
  std::copy(hash.begin(), hash.end(), key.begin());
  auto it = static_userhashes_.find(key);
  return it == static_userhashes_.end() ? nullptr : &it->second;
}

Expected<std::vector<std::vector<std::uint8_t>>, CredentialError> CredentialStore::keysFor(
    std::string_view username, PasswordAlgorithmId algorithm, std::int64_t now_unix) const {
  std::vector<std::vector<std::uint8_t>> keys;
  if (auto it = static_keys_.find(username); it != static_keys_.end()) {
    keys.push_back(algorithm == PasswordAlgorithmId::kSha256 ? it->second.sha256 : it->second.md5);
  }

  const auto rest = rest_secrets_.empty() ? std::nullopt : parseRestUsername(username);
  if (rest && restExpired(rest->expiry_unix, now_unix)) {
    // draft-uberti-behave-turn-rest-00 §2.2: a username whose timestamp has passed is
    // rejected; a static user of the same name still stands.
    if (keys.empty()) return Unexpected{CredentialError::kExpired};
    return keys;
  }
  if (rest) {
    keys.reserve(keys.size() + rest_secrets_.size());
    for (const std::string& secret : rest_secrets_) {
      keys.push_back(
          longTermKey(algorithm, username, realm_, restPassword(secret, username)));
    }
  }
  if (keys.empty()) return Unexpected{CredentialError::kUnknownUser};
  return keys;
}

}  // namespace tern::auth
