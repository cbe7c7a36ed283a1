// Stateless nonces (RFC 8489 §9.2, §14.10; DESIGN.md §4): format, validity through the
// lifetime, staleness after it, and refusal of anything altered, forged with another key,
// issued to another IP address, or malformed.
#include <doctest/doctest.h>

#include <array>
#include <cctype>
#include <chrono>
#include <cstdint>
#include <set>
#include <stdexcept>
#include <string>

#include "auth/nonce.hpp"
#include "relay/wire/address.hpp"

namespace {

namespace auth = tern::auth;
using auth::NonceCheck;
using auth::NonceIssuer;
using auth::SteadyTime;
using tern::wire::SocketAddress;
using namespace std::chrono_literals;

constexpr std::array<std::uint8_t, 32> kKey{1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                            12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                            23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
constexpr auto kLifetime = 600s;
// A fake steady time far from the epoch, so "before" and "after" both stay positive.
const SteadyTime kT0 = SteadyTime{} + 1'000'000s;

SocketAddress address(std::string_view text) {
  auto a = SocketAddress::parse(text);
  REQUIRE(a.has_value());
  return *a;
}

const NonceIssuer& issuer() {
  static const NonceIssuer kIssuer{kKey, kLifetime};
  return kIssuer;
}

TEST_CASE("a nonce is the RFC 8489 §9.2 cookie and 24 base64 characters, under §14.10's 128") {
  const std::string nonce = issuer().issue(address("192.0.2.1:5000"), kT0);
  CHECK(nonce.size() == NonceIssuer::kNonceSize);
  // As short as it can be: every 401 to an unauthenticated request carries one.
  CHECK(nonce.size() == 37);
  // "obMatJos2", then the security feature set: by default password algorithms (bit 0).
  CHECK(nonce.substr(0, 13) == "obMatJos2AAAB");
  for (char c : nonce.substr(13)) {
    CAPTURE(c);
    CHECK((std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/'));
  }
  // The next 8 characters are the issue time in milliseconds, 48 bits: 00 00 3b 9a ca 00.
  CHECK(nonce.substr(13, 8) == "AAA7msoA");
  CHECK(issuer().lifetime() == kLifetime);
}

TEST_CASE("the nonce cookie announces the feature set it was issued with, and the MAC covers it") {
  const auto client = address("192.0.2.1:5000");
  namespace feature = tern::auth::security_feature;
  const std::string both = issuer().issue(client, kT0, feature::kPasswordAlgorithms | feature::kUsernameAnonymity);
  CHECK(both.substr(0, 13) == "obMatJos2AAAD");
  CHECK(NonceIssuer::featuresOf(both) == 3);
  CHECK(issuer().check(both, client, kT0) == NonceCheck::kValid);
  // RFC 8489 Appendix B.1's cookie: username anonymity only.
  CHECK(NonceIssuer::featuresOf("obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA") ==
        feature::kUsernameAnonymity);
  const std::string none = issuer().issue(client, kT0, 0);
  CHECK(none.substr(0, 13) == "obMatJos2AAAA");
  CHECK(issuer().check(none, client, kT0) == NonceCheck::kValid);
  // Clearing a bit (a bid-down) or changing the cookie breaks the nonce.
  std::string cleared = both;
  cleared[12] = 'B';
  CHECK(issuer().check(cleared, client, kT0) == NonceCheck::kInvalid);
  std::string cookie = both;
  cookie[0] = 'O';
  CHECK(issuer().check(cookie, client, kT0) == NonceCheck::kInvalid);
  std::string bad_base64 = both;
  bad_base64[12] = '*';
  CHECK(issuer().check(bad_base64, client, kT0) == NonceCheck::kInvalid);
  CHECK(NonceIssuer::featuresOf("no cookie here") == 0);
}

TEST_CASE("the same client and time give the same nonce, another client or time another one") {
  const auto client = address("192.0.2.1:5000");
  std::set<std::string> nonces;
  CHECK(issuer().issue(client, kT0) == issuer().issue(client, kT0));
  nonces.insert(issuer().issue(client, kT0));
  nonces.insert(issuer().issue(client, kT0 + 1ms));
  nonces.insert(issuer().issue(address("192.0.2.2:5000"), kT0));
  nonces.insert(issuer().issue(address("[2001:db8::1]:5000"), kT0));
  nonces.insert(issuer().issue(address("[::ffff:192.0.2.1]:5000"), kT0));
  CHECK(nonces.size() == 5);
  // The port is not part of it: one host's sockets share a nonce.
  CHECK(issuer().issue(address("192.0.2.1:5001"), kT0) == issuer().issue(client, kT0));
}

TEST_CASE("a nonce is valid for its client from issue through its lifetime (RFC 8489 §9.2)") {
  for (const char* text : {"192.0.2.1:5000", "[2001:db8::1]:443", "0.0.0.0:0"}) {
    CAPTURE(text);
    const auto client = address(text);
    const std::string nonce = issuer().issue(client, kT0);
    CHECK(issuer().check(nonce, client, kT0) == NonceCheck::kValid);
    CHECK(issuer().check(nonce, client, kT0 + 1s) == NonceCheck::kValid);
    CHECK(issuer().check(nonce, client, kT0 + kLifetime) == NonceCheck::kValid);
  }
}

TEST_CASE("a nonce older than its lifetime is stale: 438 (RFC 8489 §9.2.4)") {
  const auto client = address("192.0.2.1:5000");
  const std::string nonce = issuer().issue(client, kT0);
  CHECK(issuer().check(nonce, client, kT0 + kLifetime + 1ms) == NonceCheck::kStale);
  CHECK(issuer().check(nonce, client, kT0 + 24h) == NonceCheck::kStale);
  // Another issuer with a shorter lifetime but the same key disagrees only about staleness.
  const NonceIssuer short_lived{kKey, 10s};
  CHECK(short_lived.check(nonce, client, kT0 + 10s) == NonceCheck::kValid);
  CHECK(short_lived.check(nonce, client, kT0 + 11s) == NonceCheck::kStale);
}

TEST_CASE("a nonce from the future is valid within the skew and stale beyond it") {
  const auto client = address("192.0.2.1:5000");
  const std::string nonce = issuer().issue(client, kT0);
  CHECK(issuer().check(nonce, client, kT0 - NonceIssuer::kFutureSkew) == NonceCheck::kValid);
  CHECK(issuer().check(nonce, client, kT0 - NonceIssuer::kFutureSkew - 1ms) == NonceCheck::kStale);
  CHECK(issuer().check(nonce, client, kT0 - 1h) == NonceCheck::kStale);
}

TEST_CASE("time points at and before the steady epoch round-trip") {
  // (The steady clock's nanoseconds span 292 years each way: 48 bits of milliseconds never
  // wrap within it, but differences are taken modulo 2^48 all the same.)
  const auto client = address("192.0.2.1:5000");
  for (SteadyTime t : {SteadyTime{}, SteadyTime{} - 5s, SteadyTime{} - 100 * 24h}) {
    const std::string nonce = issuer().issue(client, t);
    CHECK(issuer().check(nonce, client, t) == NonceCheck::kValid);
    CHECK(issuer().check(nonce, client, t + kLifetime + 1s) == NonceCheck::kStale);
  }
}

TEST_CASE("changing any one character of a nonce makes it invalid, not stale") {
  const auto client = address("192.0.2.1:5000");
  const std::string nonce = issuer().issue(client, kT0);
  for (std::size_t i = 0; i < nonce.size(); ++i) {
    for (char replacement : {'0', '7', 'a', 'f', 'A', 'F', 'g', 'z', ' ', '\0', '\xff'}) {
      if (replacement == nonce[i]) continue;
      std::string altered = nonce;
      altered[i] = replacement;
      CAPTURE(i);
      CAPTURE(altered);
      CHECK(issuer().check(altered, client, kT0) == NonceCheck::kInvalid);
    }
  }
}

TEST_CASE("a nonce issued to another IP address is invalid there (RFC 8489 §9.2)") {
  const auto client = address("192.0.2.1:5000");
  const std::string nonce = issuer().issue(client, kT0);
  // Another socket of the same host (an RFC 6062 data connection) may use it.
  CHECK(issuer().check(nonce, address("192.0.2.1:5001"), kT0) == NonceCheck::kValid);
  CHECK(issuer().check(nonce, address("192.0.2.2:5000"), kT0) == NonceCheck::kInvalid);
  CHECK(issuer().check(nonce, address("[::ffff:192.0.2.1]:5000"), kT0) == NonceCheck::kInvalid);
  CHECK(issuer().check(nonce, address("[2001:db8::1]:5000"), kT0) == NonceCheck::kInvalid);
  const auto v6 = address("[2001:db8::1]:5000");
  const std::string v6_nonce = issuer().issue(v6, kT0);
  CHECK(issuer().check(v6_nonce, address("[2001:db8::2]:5000"), kT0) == NonceCheck::kInvalid);
  CHECK(issuer().check(v6_nonce, v6, kT0) == NonceCheck::kValid);
}

TEST_CASE("a nonce made with another key is invalid, e.g. from before a restart") {
  const auto client = address("192.0.2.1:5000");
  auto other_key = kKey;
  other_key[31] ^= 0x01;
  const NonceIssuer other{other_key, kLifetime};
  const std::string foreign = other.issue(client, kT0);
  CHECK(other.check(foreign, client, kT0) == NonceCheck::kValid);
  CHECK(issuer().check(foreign, client, kT0) == NonceCheck::kInvalid);
  // Even long after, a foreign nonce is never reported stale: that would invite a retry.
  CHECK(issuer().check(foreign, client, kT0 + 24h) == NonceCheck::kInvalid);
}

TEST_CASE("garbage, truncated, extended and overlong nonces are invalid") {
  const auto client = address("192.0.2.1:5000");
  const std::string nonce = issuer().issue(client, kT0);
  CHECK(issuer().check("", client, kT0) == NonceCheck::kInvalid);
  CHECK(issuer().check("f//499k954d6OL34oL9FSTvy64sA", client, kT0) == NonceCheck::kInvalid);
  CHECK(issuer().check(nonce.substr(0, nonce.size() - 1), client, kT0) == NonceCheck::kInvalid);
  CHECK(issuer().check(nonce.substr(0, nonce.size() - 4), client, kT0) == NonceCheck::kInvalid);
  CHECK(issuer().check(nonce + "0", client, kT0) == NonceCheck::kInvalid);
  CHECK(issuer().check("x" + nonce, client, kT0) == NonceCheck::kInvalid);
  CHECK(issuer().check(std::string(40, '0'), client, kT0) == NonceCheck::kInvalid);
  CHECK(issuer().check(std::string(763, 'a'), client, kT0) == NonceCheck::kInvalid);
  CHECK(issuer().check(nonce + nonce, client, kT0) == NonceCheck::kInvalid);
  std::string upper = nonce;
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (upper != nonce) CHECK(issuer().check(upper, client, kT0) == NonceCheck::kInvalid);
}

TEST_CASE("a nonce issuer needs a positive lifetime") {
  CHECK_THROWS_AS(NonceIssuer(kKey, 0s), std::invalid_argument);
  CHECK_THROWS_AS(NonceIssuer(kKey, -1s), std::invalid_argument);
}

}  // namespace
