// Who may authenticate with long-term credentials (RFC 8489 §9.2): static users and TURN REST
// API secrets (draft-uberti-behave-turn-rest-00), as one immutable snapshot that every worker
// reads without locks; a reload builds a new store and swaps the pointer (DESIGN.md §1.2).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "relay/wire/attributes.hpp"
#include "relay/wire/expected.hpp"

namespace tern::auth {

struct StaticUser {
  std::string name;
  std::string password;
};

struct CredentialOptions {
  std::string realm = "tern";
  std::vector<std::string> rest_secrets;  // several at once for rotation; any one may match
  std::vector<StaticUser> static_users;
};

enum class CredentialError : std::uint8_t {
  kUnknownUser,  // no static user of that name, and not a REST username we can check
  kExpired,      // a REST username whose expiry has passed
};

class CredentialStore {
 public:
  // Throws std::invalid_argument, naming every problem at once, for an empty REST secret (it
  // would let anyone mint credentials), a static user without a name, or two static users
  // with the same name. Usernames and passwords must already be OpaqueString-prepared
  // (RFC 8265); for ASCII that is the identity.
  explicit CredentialStore(CredentialOptions options);

  const std::string& realm() const noexcept { return realm_; }
  // No secrets and no users: nobody can authenticate.
  bool empty() const noexcept { return rest_secrets_.empty() && static_keys_.empty(); }

  // Every long-term key (RFC 8489 §9.2.2: MD5 or SHA-256 of username ":" realm ":" password,
  // as `algorithm` says) that could be right for `username` at `now_unix`, for the caller to
  // try in order:
  //  - a static user of exactly that name comes first, and its key is returned even when the
  //    name also parses as an expired REST username (static users take precedence);
  //  - then, when the name has the REST form "<expiry>:<user>" and has not expired, one key
  //    per REST secret, in configuration order (draft-uberti-behave-turn-rest-00 §2.2).
  // kExpired when the only candidates would be REST keys of an expired name; kUnknownUser
  // when there are no candidates at all (including REST names while no secret is set).
  Expected<std::vector<std::vector<std::uint8_t>>, CredentialError> keysFor(
      std::string_view username, wire::attr::PasswordAlgorithmId algorithm, std::int64_t now_unix) const;

  // RFC 8489 §9.2.4: the user a USERHASH (SHA-256(username ":" realm)) stands for. Only
  // static users can be found: a TURN REST username is made up by the application and the
  // server learns it only from a USERNAME.
  const std::string* userByHash(std::span<const std::uint8_t> hash) const;
  // Whether USERHASH can name anyone here (RFC 8489 §9.2: the "username anonymity" feature).
  bool hasStaticUsers() const noexcept { return !static_keys_.empty(); }

 private:
  struct StaticKeys {
    std::vector<std::uint8_t> md5;
    std::vector<std::uint8_t> sha256;
  };

  std::string realm_;
  std::vector<std::string> rest_secrets_;
  // Precomputed keys of the static users; std::less<> finds by string_view.
  std::map<std::string, StaticKeys, std::less<>> static_keys_;
  std::map<std::array<std::uint8_t, 32>, std::string> static_userhashes_;
};

}  // namespace tern::auth
