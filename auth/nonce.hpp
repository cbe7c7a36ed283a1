// Stateless NONCEs for the long-term credential mechanism (RFC 8489 §9.2, §14.10): the nonce
// carries its issue time and an HMAC tag binding it to the client's IP address, so the server
// keeps no per-client state before authentication (DESIGN.md §4). The port is left out on
// purpose: one client host uses several sockets with one nonce (an RFC 6062 data connection
// sends ConnectionBind with the control connection's nonce; RTP and RTCP allocations share
// one), and a nonce is no secret: the MESSAGE-INTEGRITY key is.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "relay/wire/address.hpp"

namespace tern::auth {

using SteadyTime = std::chrono::steady_clock::time_point;

// RFC 8489 §9.2 and §18.1 "STUN Security Features": bits of the 24-bit set a nonce cookie
// announces. Bit 0 is the least significant: RFC 8489 Appendix B.1's nonce
// "obMatJos2AAAC..." ("AAAC" = 0x000002) announces username anonymity, and its request,
// which carries USERHASH and PASSWORD-ALGORITHM but no PASSWORD-ALGORITHMS, is valid only
// if the password-algorithms bit is clear.
namespace security_feature {
inline constexpr std::uint32_t kPasswordAlgorithms = 1u << 0;
inline constexpr std::uint32_t kUsernameAnonymity = 1u << 1;
}  // namespace security_feature

enum class NonceCheck : std::uint8_t {
  kValid,
  kStale,    // ours and for this client, but too old (or too far in the future): 438
  kInvalid,  // not ours, altered, or issued to another IP address: 438 too (issue 18)
};

class NonceIssuer {
 public:
  // The nonce text: the RFC 8489 §9.2 nonce cookie ("obMatJos2" and the security feature
  // set as 4 base64 characters of 24 bits), then 24 base64 characters of 18 bytes: the issue
  // time (milliseconds since the steady clock's epoch, its low 48 bits: 8900 years before
  // they wrap) and HMAC-SHA256(key, time || features || family || address) truncated to 96
  // bits. The MAC covers the feature bits, so nobody between client and server can clear
  // them to bid a client down (RFC 8489 §9.2.1). 37 printable ASCII characters, well under
  // RFC 8489 §14.10's 128, and as short as that allows: every unauthenticated 401 carries
  // one, and those answers are what a spoofed flood would try to reflect.
  static constexpr std::string_view kCookie = "obMatJos2";
  static constexpr std::size_t kFeatureDigits = 4;
  static constexpr std::size_t kTimeBytes = 6;
  static constexpr std::size_t kTagBytes = 12;
  static constexpr std::size_t kStampDigits = (kTimeBytes + kTagBytes) / 3 * 4;
  static constexpr std::size_t kNonceSize = kCookie.size() + kFeatureDigits + kStampDigits;
  // How far a nonce's time may lie ahead of `now` and still count: workers cache their loop
  // time, so a nonce issued on one thread can look slightly "future" on another.
  static constexpr std::chrono::seconds kFutureSkew{5};

  // `key` is a per-process random secret (auth::randomBytes); `lifetime` how long a nonce
  // stays valid. Throws std::invalid_argument for a lifetime that is not positive.
  NonceIssuer(std::array<std::uint8_t, 32> key, std::chrono::seconds lifetime);

  // A nonce bound to the IP of `client` and to `now`, announcing `features` (a set of
  // security_feature bits, at most 24).
  std::string issue(const wire::SocketAddress& client, SteadyTime now,
                    std::uint32_t features = security_feature::kPasswordAlgorithms) const;

  // kInvalid unless `nonce` is exactly one of ours issued to `client`'s IP (the tag is compared in
  // constant time, before the time is trusted); then kStale when it is older than the
  // lifetime or more than kFutureSkew ahead of `now`, else kValid.
  NonceCheck check(std::string_view nonce, const wire::SocketAddress& client, SteadyTime now) const;

  // The security feature bits a nonce of ours announces (0 for any other text). Only as
  // trustworthy as the nonce: call after check() said it is not kInvalid.
  static std::uint32_t featuresOf(std::string_view nonce);

  std::chrono::seconds lifetime() const noexcept { return lifetime_; }

 private:
  std::array<std::uint8_t, kTagBytes> tag(const std::array<std::uint8_t, kTimeBytes>& time, std::uint32_t features,
                                          const wire::SocketAddress& client) const;

  std::array<std::uint8_t, 32> key_;
  std::chrono::seconds lifetime_;
};

}  // namespace tern::auth
