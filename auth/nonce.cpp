// Stateless nonces (RFC 8489 §9.2, §14.10); see nonce.hpp.
#include "auth/nonce.hpp"

#include <algorithm>
#include <optional>
#include <span>
#include <stdexcept>

#include "auth/base64.hpp"
#include "auth/crypto.hpp"

namespace tern::auth {

namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

void appendHex(std::string& out, const std::uint8_t* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    out += kHexDigits[p[i] >> 4];
    out += kHexDigits[p[i] & 0xF];
  }
}

// Lowercase only: exactly one text per nonce, so an altered character never still matches.
std::optional<std::uint8_t> hexNibble(char c) noexcept {
  if (c >= '0' && c <= '9') return static_cast<std::uint8_t>(c - '0');
  if (c >= 'a' && c <= 'f') return static_cast<std::uint8_t>(c - 'a' + 10);
  return std::nullopt;
}

// Decodes 2 * out.size() hex digits; false on any other character.
bool parseHex(std::string_view text, std::span<std::uint8_t> out) noexcept {
  for (std::size_t i = 0; i < out.size(); ++i) {
    auto hi = hexNibble(text[2 * i]);
    auto lo = hexNibble(text[2 * i + 1]);
    if (!hi || !lo) return false;
    out[i] = static_cast<std::uint8_t>((*hi << 4) | *lo);
  }
  return true;
}

std::array<std::uint8_t, 8> bigEndian(std::uint64_t v) noexcept {
  std::array<std::uint8_t, 8> out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::uint8_t>(v >> (8 * (out.size() - 1 - i)));
  }
  return out;
}

// Milliseconds since the steady clock's epoch, two's complement so any time point round-trips.
std::uint64_t millisecondsOf(SteadyTime t) noexcept {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  return static_cast<std::uint64_t>(ms.count());
}

std::array<std::uint8_t, 3> featureBytes(std::uint32_t features) noexcept {
  return {static_cast<std::uint8_t>(features >> 16), static_cast<std::uint8_t>(features >> 8),
          static_cast<std::uint8_t>(features)};
}

}  // namespace

NonceIssuer::NonceIssuer(std::array<std::uint8_t, 32> key, std::chrono::seconds lifetime)
    : key_(key), lifetime_(lifetime) {
  if (lifetime_ <= std::chrono::seconds::zero()) {
    throw std::invalid_argument("nonce lifetime must be positive");
  }
}

std::array<std::uint8_t, NonceIssuer::kTagBytes> NonceIssuer::tag(
    std::uint64_t time_ms, std::uint32_t features, const wire::SocketAddress& client) const {
  const auto time = bigEndian(time_ms);
  const auto feature_bytes = featureBytes(features);
  // The family byte keeps an IPv4 client and an IPv6 one apart even if a later change made
  // both addresses the same length.
  const std::uint8_t family[] = {static_cast<std::uint8_t>(client.ip.family())};
  const Sha256Digest mac =
      hmacSha256(key_, {time, feature_bytes, family, Bytes{client.ip.data(), client.ip.size()}});
  std::array<std::uint8_t, kTagBytes> out{};
  std::copy_n(mac.begin(), out.size(), out.begin());
  return out;
}

std::string NonceIssuer::issue(const wire::SocketAddress& client, SteadyTime now,
                               std::uint32_t features) const {
  features &= 0xFFFFFF;
  const std::uint64_t time_ms = millisecondsOf(now);
  const auto time = bigEndian(time_ms);
  const auto mac = tag(time_ms, features, client);
  std::string out;
  out.reserve(kNonceSize);
  out += kCookie;
  out += base64Encode(featureBytes(features));
  appendHex(out, time.data(), time.size());
  appendHex(out, mac.data(), mac.size());
  return out;
}

NonceCheck NonceIssuer::check(std::string_view nonce, const wire::SocketAddress& client,
                              SteadyTime now) const {
  if (nonce.size() != kNonceSize || !nonce.starts_with(kCookie)) return NonceCheck::kInvalid;
  const std::string_view rest = nonce.substr(kCookie.size() + kFeatureDigits);
  std::array<std::uint8_t, 8> time{};
  std::array<std::uint8_t, kTagBytes> received{};
  if (!parseHex(rest.substr(0, kTimeDigits), time) || !parseHex(rest.substr(kTimeDigits), received)) {
    return NonceCheck::kInvalid;
  }
  std::uint64_t issued_ms = 0;
  for (std::uint8_t b : time) issued_ms = (issued_ms << 8) | b;
  // featuresOf() is 0 for a malformed set, and 0 never matches a tag made over another
  // set; the strict base64 decoder leaves one text per set.
  const std::uint32_t features = featuresOf(nonce);
  if (features == 0 && nonce.substr(kCookie.size(), kFeatureDigits) != "AAAA") return NonceCheck::kInvalid;

  // DESIGN.md §4: constant-time MAC comparison, and the time is trusted only once it verifies.
  if (!constantTimeEqual(tag(issued_ms, features, client), received)) return NonceCheck::kInvalid;

  // Unsigned subtraction wraps, so the difference is right for any two time points.
  const auto age_ms = static_cast<std::int64_t>(millisecondsOf(now) - issued_ms);
  const auto lifetime_ms = std::chrono::milliseconds{lifetime_}.count();
  const auto skew_ms = std::chrono::milliseconds{kFutureSkew}.count();
  if (age_ms > lifetime_ms || age_ms < -skew_ms) return NonceCheck::kStale;
  return NonceCheck::kValid;
}

std::uint32_t NonceIssuer::featuresOf(std::string_view nonce) {
  if (nonce.size() < kCookie.size() + kFeatureDigits || !nonce.starts_with(kCookie)) return 0;
  // Control path (auth only runs for requests), so the decoder's small vector is fine.
  const auto bytes = base64Decode(nonce.substr(kCookie.size(), kFeatureDigits));
  if (!bytes || bytes->size() != 3) return 0;
  return (std::uint32_t{(*bytes)[0]} << 16) | (std::uint32_t{(*bytes)[1]} << 8) | (*bytes)[2];
}

}  // namespace tern::auth
