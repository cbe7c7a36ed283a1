// Time-limited TURN credentials of the TURN REST API (draft-uberti-behave-turn-rest-00 §2):
// username = "<unix expiry>:<user>", password = base64(HMAC-SHA1(shared secret, username)).
// A web service that shares the secret mints them; tern only recomputes the password.
#pragma once

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

namespace tern::auth {

// draft-uberti-behave-turn-rest-00 §2.2: password = base64(HMAC-SHA1(secret, username)),
// over the whole username, expiry included. 28 characters.
std::string restPassword(std::string_view secret, std::string_view username);

struct RestUsername {
  std::int64_t expiry_unix = 0;  // seconds since 1970-01-01 UTC
  std::string_view user;         // borrows the parsed text; may be empty or contain ':'
};

// draft-uberti-behave-turn-rest-00 §2.2: "<expiry>:<user>", split at the first ':'. The
// expiry is 1-19 decimal digits without sign that fit in int64; the user is everything after
// the colon. A bare "<expiry>" without a colon is accepted too, as coturn does. Empty for
// anything else, e.g. "alice", ":alice", "-5:alice", "+5:alice" or an overflowing expiry.
std::optional<RestUsername> parseRestUsername(std::string_view username);

// True when a REST username with this expiry may no longer be used at `now_unix`. The expiry
// second itself still counts (coturn rejects only timestamps before now, too).
// A clock reading before every expiry: what the caller passes when expiry must not refuse.
inline constexpr std::int64_t kNeverExpired = std::numeric_limits<std::int64_t>::min();

constexpr bool restExpired(std::int64_t expiry_unix, std::int64_t now_unix) noexcept {
  return expiry_unix < now_unix;
}

struct RestCredential {
  std::string username;
  std::string password;
};

// What the web service of draft-uberti-behave-turn-rest-00 §2.2 hands out (and what
// `tern token` prints): username = to_string(now_unix + ttl_seconds) + ":" + user. Throws
// std::invalid_argument when ttl_seconds is not positive, now_unix is negative or the sum
// overflows, since none of those makes a username parseRestUsername would accept.
RestCredential mintRestCredential(std::string_view secret, std::string_view user,
                                  std::int64_t now_unix, std::int64_t ttl_seconds);

}  // namespace tern::auth
