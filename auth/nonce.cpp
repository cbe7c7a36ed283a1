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

constexpr std::uint64_t kTimeMask = (std::uint64_t{1} << (8 * NonceIssuer::kTimeBytes)) - 1;

// Milliseconds since the steady clock's epoch, two's complement, cut to the low 48 bits the
// nonce carries; differences of such times are taken modulo 2^48.
std::uint64_t millisecondsOf(SteadyTime t) noexcept {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch());
  return static_cast<std::uint64_t>(ms.count()) & kTimeMask;
}

std::array<std::uint8_t, NonceIssuer::kTimeBytes> timeBytes(std::uint64_t time_ms) noexcept {
  std::array<std::uint8_t, NonceIssuer::kTimeBytes> out{};
  for (std::size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::uint8_t>(time_ms >> (8 * (out.size() - 1 - i)));
  }
  return out;
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

std::array<std::uint8_t, NonceIssuer::kTagBytes> NonceIssuer::tag(const std::array<std::uint8_t, kTimeBytes>& time,
                                                                  std::uint32_t features,
                                                                  const wire::SocketAddress& client) const {
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
  const auto time = timeBytes(millisecondsOf(now));
  const auto mac = tag(time, features, client);
  std::array<std::uint8_t, kTimeBytes + kTagBytes> stamp{};
  std::copy(time.begin(), time.end(), stamp.begin());
  std::copy(mac.begin(), mac.end(), stamp.begin() + kTimeBytes);
  std::string out;
  out.reserve(kNonceSize);
  out += kCookie;
  out += base64Encode(featureBytes(features));
  out += base64Encode(stamp);
  return out;
}

NonceCheck NonceIssuer::check(std::string_view nonce, const wire::SocketAddress& client,
                              SteadyTime now) const {
  if (nonce.size() != kNonceSize || !nonce.starts_with(kCookie)) return NonceCheck::kInvalid;
  // The strict decoder leaves exactly one text per byte string, so an altered character
  // never still matches.
  const auto stamp = base64Decode(nonce.substr(kCookie.size() + kFeatureDigits));
  if (!stamp || stamp->size() != kTimeBytes + kTagBytes) return NonceCheck::kInvalid;
  std::array<std::uint8_t, kTimeBytes> time{};
  std::copy_n(stamp->begin(), kTimeBytes, time.begin());
  std::uint64_t issued_ms = 0;
  for (std::uint8_t b : time) issued_ms = (issued_ms << 8) | b;
  // featuresOf() is 0 for a malformed set, and 0 never matches a tag made over another
  // set; the strict base64 decoder leaves one text per set.
  const std::uint32_t features = featuresOf(nonce);
  if (features == 0 && nonce.substr(kCookie.size(), kFeatureDigits) != "AAAA") return NonceCheck::kInvalid;

  // DESIGN.md §4: constant-time MAC comparison, and the time is trusted only once it verifies.
  const Bytes received{stamp->data() + kTimeBytes, kTagBytes};
  if (!constantTimeEqual(tag(time, features, client), received)) return NonceCheck::kInvalid;

  // Differences modulo 2^48, read as signed: right for any two time points 4000 years apart.
  const std::uint64_t age = (millisecondsOf(now) - issued_ms) & kTimeMask;
  const std::int64_t wrap = static_cast<std::int64_t>(kTimeMask) + 1;
  const std::int64_t age_ms = static_cast<std::int64_t>(age) - (age >= kTimeMask / 2 + 1 ? wrap : 0);
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
