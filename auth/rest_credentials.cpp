// TURN REST API credentials (draft-uberti-behave-turn-rest-00 §2); see rest_credentials.hpp.
#include "auth/rest_credentials.hpp"

#include <limits>
#include <stdexcept>

#include "auth/base64.hpp"
#include "auth/crypto.hpp"
#include "relay/wire/bytes.hpp"

namespace tern::auth {

namespace {

// INT64_MAX has 19 digits; a longer expiry cannot fit.
constexpr std::size_t kMaxExpiryDigits = 19;

std::optional<std::int64_t> parseExpiry(std::string_view digits) noexcept {
  if (digits.empty() || digits.size() > kMaxExpiryDigits) return std::nullopt;
  constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
  std::int64_t value = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    const std::int64_t digit = c - '0';
    if (value > (kMax - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

}  // namespace

std::string restPassword(std::string_view secret, std::string_view username) {
  const Sha1Digest mac = hmacSha1(wire::asBytes(secret), {wire::asBytes(username)});
  return base64Encode(mac);
}

std::optional<RestUsername> parseRestUsername(std::string_view username) {
  const std::size_t colon = username.find(':');
  const std::string_view expiry = username.substr(0, colon);
  auto value = parseExpiry(expiry);
  if (!value) return std::nullopt;
  RestUsername out;
  out.expiry_unix = *value;
  if (colon != std::string_view::npos) out.user = username.substr(colon + 1);
  return out;
}

RestCredential mintRestCredential(std::string_view secret, std::string_view user,
                                  std::int64_t now_unix, std::int64_t ttl_seconds) {
  if (ttl_seconds <= 0) throw std::invalid_argument("TURN REST credential: ttl must be positive");
  if (now_unix < 0) throw std::invalid_argument("TURN REST credential: time before 1970");
  if (now_unix > std::numeric_limits<std::int64_t>::max() - ttl_seconds) {
    throw std::invalid_argument("TURN REST credential: expiry overflows");
  }
  RestCredential out;
  out.username = std::to_string(now_unix + ttl_seconds);
  out.username += ':';
  out.username += user;
  out.password = restPassword(secret, out.username);
  return out;
}

}  // namespace tern::auth
