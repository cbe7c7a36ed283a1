// RFC 7635 §6.2 self-contained access tokens: a fixed vector computed independently (Python's
// `cryptography` AES-GCM over the fixed inputs of coturn's rfc5769check OAuth test), round
// trips, every tampered byte and every truncation refused, wrong keys and server names,
// hostile length fields, expiry with clock skew, and key store validation.
#include "auth/oauth_token.hpp"

#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "support/hex.hpp"

namespace {

namespace auth = tern::auth;
using tern::test::fromHex;
using tern::test::toHex;

std::vector<std::uint8_t> bytesOf(std::string_view s) { return {s.begin(), s.end()}; }

// coturn's rfc5769check check_oauth(): server "blackdow.carleon.gov", the 32-byte AS-RS key
// "HGkj32KJGiuy098sdfaqbNjOiaz71923", MAC key "ZksjpweoixXmvn67534m", timestamp
// 92470300704768 (1410984813 s), lifetime 3600, nonce "h4j3k2l2n4b5". coturn only checks its
// own round trip; these bytes come from an independent AES-GCM (Python `cryptography`):
//   AESGCM(key).encrypt(nonce, pack("!H", 20) + mac + pack("!QI", ts, 3600), server)
constexpr std::string_view kServer = "blackdow.carleon.gov";
constexpr std::string_view kAsRsKey = "HGkj32KJGiuy098sdfaqbNjOiaz71923";
constexpr std::string_view kMacKey = "ZksjpweoixXmvn67534m";
constexpr std::uint64_t kTimestamp = 92470300704768ULL;
constexpr std::string_view kNonce = "h4j3k2l2n4b5";
constexpr std::string_view kTokenA256 =
    "000c68346a336b326c326e346235"                                      // nonce_length, nonce
    "617ef134a3d5e44e9a19cc7dc104b0c03d03b2a551d8fdf5cd3b6dca6f10cfb7"  // sealed block
    "7e5b"
    "2ddec84d293a5c50499359f0c2e26f76";  // GCM tag
// The same with A128GCM, whose key coturn takes as the first 16 bytes of the same secret.
constexpr std::string_view kTokenA128 =
    "000c68346a336b326c326e346235"
    "7fb9e99f0827be3df1e1bd651493d3031d36df57079784aee5eacb65fad4f27f"
    "ab1a"
    "3f97974b69f851b24bf5af09eda357e0";

auth::OAuthKey rfcKey() { return {"2783466234", bytesOf(kAsRsKey), auth::OAuthAead::kA256Gcm}; }

auth::AccessTokenContents rfcContents() { return {bytesOf(kMacKey), kTimestamp, 3600}; }

std::array<std::uint8_t, auth::kTokenNonceSize> rfcNonce() {
  std::array<std::uint8_t, auth::kTokenNonceSize> n{};
  for (std::size_t i = 0; i < n.size(); ++i) n[i] = static_cast<std::uint8_t>(kNonce[i]);
  return n;
}

bool sameContents(const auth::AccessTokenContents& a, const auth::AccessTokenContents& b) {
  return a.mac_key == b.mac_key && a.timestamp == b.timestamp && a.lifetime == b.lifetime;
}

auth::TokenError errorOf(const std::vector<std::uint8_t>& token, const auth::OAuthKey& key,
                         std::string_view server = kServer) {
  auto decoded = auth::decodeAccessToken(token, key, server);
  REQUIRE_FALSE(decoded.has_value());
  return decoded.error();
}

}  // namespace

TEST_CASE("A256GCM token matches an independently computed vector, both ways (RFC 7635 §6.2)") {
  const auto token = auth::encodeAccessToken(rfcContents(), rfcKey(), kServer, rfcNonce());
  CHECK(toHex(token) == kTokenA256);
  CHECK(token.size() == 64);  // 2 + 12 + (2 + 20 + 8 + 4) + 16

  auto decoded = auth::decodeAccessToken(fromHex(kTokenA256), rfcKey(), kServer);
  REQUIRE(decoded.has_value());
  CHECK(sameContents(*decoded, rfcContents()));
  CHECK(auth::tokenSeconds(decoded->timestamp) == 1410984813);
}

TEST_CASE("A128GCM tokens use a 16-byte key and match their vector too") {
  auth::OAuthKey key{"2783466234", bytesOf(kAsRsKey.substr(0, 16)), auth::OAuthAead::kA128Gcm};
  CHECK(toHex(auth::encodeAccessToken(rfcContents(), key, kServer, rfcNonce())) == kTokenA128);
  auto decoded = auth::decodeAccessToken(fromHex(kTokenA128), key, kServer);
  REQUIRE(decoded.has_value());
  CHECK(sameContents(*decoded, rfcContents()));
  // The A256GCM token does not open as A128GCM with the first half of the key, nor the reverse.
  CHECK(errorOf(fromHex(kTokenA256), key) == auth::TokenError::kNotAuthentic);
  CHECK(errorOf(fromHex(kTokenA128), rfcKey()) == auth::TokenError::kNotAuthentic);
}

TEST_CASE("tokens round-trip with 20- and 32-byte MAC keys and a random nonce each time") {
  for (std::size_t size : {auth::kMacKeySha1Size, auth::kMacKeySha256Size}) {
    auth::AccessTokenContents contents{std::vector<std::uint8_t>(size, 0x5a),
                                       auth::tokenTimestamp(1700000000) | 0x1234, 600};
    const auto first = auth::encodeAccessToken(contents, rfcKey(), "turn.example.org");
    const auto second = auth::encodeAccessToken(contents, rfcKey(), "turn.example.org");
    CHECK(first.size() == 44 + size);
    CHECK(first != second);  // fresh nonces: GCM must never reuse one under a key
    for (const auto& token : {first, second}) {
      auto decoded = auth::decodeAccessToken(token, rfcKey(), "turn.example.org");
      REQUIRE(decoded.has_value());
      CHECK(sameContents(*decoded, contents));
    }
  }
}

TEST_CASE("changing any byte of a token makes it fail") {
  const auto token = fromHex(kTokenA256);
  for (std::size_t i = 0; i < token.size(); ++i) {
    for (int flip : {0x01, 0x80}) {
      auto altered = token;
      altered[i] = static_cast<std::uint8_t>(altered[i] ^ flip);
      auto decoded = auth::decodeAccessToken(altered, rfcKey(), kServer);
      CAPTURE(i);
      REQUIRE_FALSE(decoded.has_value());
      // Bytes 0-1 are nonce_length, checked in the clear; the rest only the tag can judge.
      CHECK(decoded.error() ==
            (i < 2 ? auth::TokenError::kMalformed : auth::TokenError::kNotAuthentic));
    }
  }
}

TEST_CASE("a token cut short at any length, or with bytes added, fails cleanly") {
  const auto token = fromHex(kTokenA256);
  for (std::size_t n = 0; n < token.size(); ++n) {
    const std::vector<std::uint8_t> cut(token.begin(),
                                        token.begin() + static_cast<std::ptrdiff_t>(n));
    CAPTURE(n);
    CHECK_FALSE(auth::decodeAccessToken(cut, rfcKey(), kServer).has_value());
  }
  auto longer = token;
  longer.push_back(0);
  CHECK(errorOf(longer, rfcKey()) == auth::TokenError::kMalformed);
}

TEST_CASE("another key, kid or server name does not open a token (RFC 7635 §6.2 associated data)") {
  const auto token = fromHex(kTokenA256);
  auth::OAuthKey other = rfcKey();
  other.key[31] ^= 1;
  CHECK(errorOf(token, other) == auth::TokenError::kNotAuthentic);
  CHECK(errorOf(token, rfcKey(), "blackdow.carleon.gov.") == auth::TokenError::kNotAuthentic);
  CHECK(errorOf(token, rfcKey(), "") == auth::TokenError::kNotAuthentic);

  const auth::OAuthKeyStore store({rfcKey(), {"other", std::vector<std::uint8_t>(32, 7)}});
  CHECK(store.decode("2783466234", token, kServer).has_value());
  auto wrong_kid = store.decode("other", token, kServer);
  REQUIRE_FALSE(wrong_kid.has_value());
  CHECK(wrong_kid.error() == auth::TokenError::kNotAuthentic);
  auto unknown = store.decode("2783466235", token, kServer);
  REQUIRE_FALSE(unknown.has_value());
  CHECK(unknown.error() == auth::TokenError::kUnknownKid);
}

TEST_CASE("hostile length fields are refused before decryption (coturn CVE-2026-43994)") {
  // coturn copied nonce_length bytes into a 256-byte nonce buffer and key_length bytes into
  // a 64-byte MAC key buffer, both on the stack, before the tag was checked.
  std::vector<std::uint8_t> huge_nonce{0xFF, 0xFF};
  huge_nonce.resize(2 + 0xFFFF + 64, 0x41);
  CHECK(errorOf(huge_nonce, rfcKey()) == auth::TokenError::kMalformed);
  std::vector<std::uint8_t> zero_nonce{0x00, 0x00};
  zero_nonce.resize(64, 0x41);
  CHECK(errorOf(zero_nonce, rfcKey()) == auth::TokenError::kMalformed);
  // A 13-byte nonce in a token of the right total size.
  auto thirteen = fromHex(kTokenA256);
  thirteen[1] = 13;
  CHECK(errorOf(thirteen, rfcKey()) == auth::TokenError::kMalformed);
  // Sealed blocks too large or too small for a 20- or 32-byte key never reach OpenSSL.
  auto big = fromHex(kTokenA256);
  big.insert(big.end() - 16, 0xFFFF, 0x42);
  CHECK(errorOf(big, rfcKey()) == auth::TokenError::kMalformed);
  CHECK(errorOf(fromHex("000c"
                        "000000000000000000000000"
                        "ffff"),
                rfcKey()) == auth::TokenError::kMalformed);
}

TEST_CASE("an authentic token whose sealed key_length lies is bad contents, not an overflow") {
  // Sealed correctly under the vector's key and server name (Python `cryptography`), but the
  // 34-byte block claims another key length: what a buggy or hostile authorization server
  // could mint. coturn copied key_length bytes into a 64-byte stack buffer at this point.
  constexpr std::string_view kKeyLengthFfff =
      "000c68346a336b326c326e3462359e95f134a3d5e44e9a19cc7dc104b0c03d03b2a551d8fdf5cd3b6dca6f"
      "10cfb77e5b0e7c29b6de14027ba5d1e62f6df93435";
  constexpr std::string_view kKeyLength32 =
      "000c68346a336b326c326e346235614af134a3d5e44e9a19cc7dc104b0c03d03b2a551d8fdf5cd3b6dca6f"
      "10cfb77e5bc9ca0c72f170763d93f4d4277ac88287";
  constexpr std::string_view kKeyLength0 =
      "000c68346a336b326c326e346235616af134a3d5e44e9a19cc7dc104b0c03d03b2a551d8fdf5cd3b6dca6f"
      "10cfb77e5b69d0e2c3ac33e67b83bf923fbaff63ef";
  for (std::string_view hex : {kKeyLengthFfff, kKeyLength32, kKeyLength0}) {
    CHECK(errorOf(fromHex(hex), rfcKey()) == auth::TokenError::kBadContents);
  }
}

TEST_CASE("tokens are valid from skew before issue until skew after timestamp + lifetime") {
  const auth::AccessTokenContents t{std::vector<std::uint8_t>(20),
                                    auth::tokenTimestamp(1000) | 0xFFFF, 60};
  CHECK(auth::tokenExpiry(t) == 1060);
  CHECK_FALSE(auth::tokenValidAt(t, 994));
  CHECK(auth::tokenValidAt(t, 995));  // 5 s early: the AS clock runs ahead of ours
  CHECK(auth::tokenValidAt(t, 1000));
  CHECK(auth::tokenValidAt(t, 1064));  // 5 s late still counts (coturn's OAUTH_TIME_DELTA)
  CHECK_FALSE(auth::tokenValidAt(t, 1065));
  CHECK_FALSE(auth::tokenValidAt(t, 1065, std::chrono::seconds(5)));
  CHECK(auth::tokenValidAt(t, 1065, std::chrono::seconds(6)));
  CHECK_FALSE(auth::tokenValidAt(t, 1060, std::chrono::seconds(0)));
  CHECK(auth::tokenValidAt(t, 1059, std::chrono::seconds(0)));
  // A zero lifetime is never valid, not "forever" as coturn reads it.
  const auth::AccessTokenContents zero{std::vector<std::uint8_t>(20), auth::tokenTimestamp(1000),
                                       0};
  CHECK_FALSE(auth::tokenValidAt(zero, 1000));
  // The largest timestamp and lifetime do not overflow.
  const auth::AccessTokenContents max{std::vector<std::uint8_t>(20), ~std::uint64_t{0},
                                      ~std::uint32_t{0}};
  CHECK(auth::tokenSeconds(max.timestamp) == (std::int64_t{1} << 48) - 1);
  CHECK_FALSE(auth::tokenValidAt(max, 1700000000));
  CHECK(auth::tokenValidAt(max, (std::int64_t{1} << 48)));
}

TEST_CASE(
    "encoding refuses MAC keys other than 20 or 32 bytes and keys that do not fit their AEAD") {
  auto contents = rfcContents();
  contents.mac_key.resize(16);
  CHECK_THROWS_AS(auth::encodeAccessToken(contents, rfcKey(), kServer), std::invalid_argument);
  contents.mac_key.resize(64);
  CHECK_THROWS_AS(auth::encodeAccessToken(contents, rfcKey(), kServer), std::invalid_argument);
  auth::OAuthKey short_key = rfcKey();
  short_key.key.resize(16);  // A256GCM needs 32
  CHECK_THROWS_AS(auth::encodeAccessToken(rfcContents(), short_key, kServer),
                  std::invalid_argument);
  // A hand-made key of the wrong size is refused on decoding too, without reading past it.
  CHECK(errorOf(fromHex(kTokenA256), short_key) == auth::TokenError::kNotAuthentic);
}

TEST_CASE("the key store names every problem at once, never a key") {
  std::vector<auth::OAuthKey> keys{
      {"", std::vector<std::uint8_t>(32, 1), auth::OAuthAead::kA256Gcm},
      {"north", std::vector<std::uint8_t>(32, 2), auth::OAuthAead::kA256Gcm},
      {"north", std::vector<std::uint8_t>(32, 3), auth::OAuthAead::kA256Gcm},
      {"short", bytesOf("0123456789abcdef"), auth::OAuthAead::kA256Gcm},
      {std::string(513, 'k'), std::vector<std::uint8_t>(16, 4), auth::OAuthAead::kA128Gcm},
  };
  try {
    auth::OAuthKeyStore store(keys);
    FAIL("no exception");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    CHECK(what.find("#1 has an empty kid") != std::string::npos);
    CHECK(what.find("'north' is given more than once") != std::string::npos);
    CHECK(what.find("'short' is 16 bytes; A256GCM needs 32") != std::string::npos);
    CHECK(what.find("longer than 512 bytes") != std::string::npos);
    CHECK(what.find("0123456789abcdef") == std::string::npos);
  }
}

TEST_CASE("the key store finds keys by kid, and an empty store refuses every token") {
  const auth::OAuthKeyStore store(
      {rfcKey(), {"b", std::vector<std::uint8_t>(16, 9), auth::OAuthAead::kA128Gcm}});
  CHECK(store.size() == 2);
  REQUIRE(store.find("b") != nullptr);
  CHECK(store.find("b")->aead == auth::OAuthAead::kA128Gcm);
  CHECK(store.find("B") == nullptr);
  const auth::OAuthKeyStore none;
  CHECK(none.empty());
  auto decoded = none.decode("2783466234", fromHex(kTokenA256), kServer);
  REQUIRE_FALSE(decoded.has_value());
  CHECK(decoded.error() == auth::TokenError::kUnknownKid);
}

TEST_CASE("AEAD names: A256GCM and A128GCM, or their RFC 5116 names") {
  CHECK(auth::parseOAuthAead("A256GCM") == auth::OAuthAead::kA256Gcm);
  CHECK(auth::parseOAuthAead("AEAD_AES_256_GCM") == auth::OAuthAead::kA256Gcm);
  CHECK(auth::parseOAuthAead("A128GCM") == auth::OAuthAead::kA128Gcm);
  CHECK(auth::parseOAuthAead("AEAD_AES_128_GCM") == auth::OAuthAead::kA128Gcm);
  CHECK_FALSE(auth::parseOAuthAead("a256gcm").has_value());
  CHECK_FALSE(auth::parseOAuthAead("A192GCM").has_value());
  CHECK(auth::oauthAeadName(auth::OAuthAead::kA128Gcm) == "A128GCM");
  CHECK(auth::oauthKeySize(auth::OAuthAead::kA256Gcm) == 32);
  CHECK(auth::describe(auth::TokenError::kNotAuthentic) == "not_authentic");
}

TEST_CASE("minting seals a fresh MAC key of the chosen size with the time and lifetime") {
  for (std::size_t size : {auth::kMacKeySha1Size, auth::kMacKeySha256Size}) {
    const auto a = auth::mintAccessToken(rfcKey(), "turn.example.org", size, 1700000000, 600);
    const auto b = auth::mintAccessToken(rfcKey(), "turn.example.org", size, 1700000000, 600);
    CHECK(a.mac_key.size() == size);
    CHECK(a.mac_key != b.mac_key);
    auto decoded = auth::decodeAccessToken(a.token, rfcKey(), "turn.example.org");
    REQUIRE(decoded.has_value());
    CHECK(decoded->mac_key == a.mac_key);
    CHECK(auth::tokenSeconds(decoded->timestamp) == 1700000000);
    CHECK(decoded->lifetime == 600);
    CHECK(auth::tokenValidAt(*decoded, 1700000599));
    CHECK_FALSE(auth::tokenValidAt(*decoded, 1700000605));
  }
  CHECK_THROWS_AS(auth::mintAccessToken(rfcKey(), "s", 16, 1700000000, 600), std::invalid_argument);
  CHECK_THROWS_AS(auth::mintAccessToken(rfcKey(), "s", 20, 1700000000, 0), std::invalid_argument);
  CHECK_THROWS_AS(auth::mintAccessToken(rfcKey(), "s", 20, -1, 600), std::invalid_argument);
  CHECK_THROWS_AS(auth::mintAccessToken(rfcKey(), "s", 20, std::int64_t{1} << 48, 600),
                  std::invalid_argument);
}
