// Base64 (RFC 4648 §4): the §10 test vectors both ways, and a strict decoder that refuses
// characters outside the alphabet, misplaced or excess padding and non-zero pad bits (§3.3, §3.5).
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "auth/base64.hpp"
#include "support/hex.hpp"

namespace {

namespace auth = tern::auth;
using tern::test::fromHex;

auth::Bytes text(std::string_view s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

std::string decodedText(std::string_view b64) {
  auto bytes = auth::base64Decode(b64);
  REQUIRE(bytes.has_value());
  return {bytes->begin(), bytes->end()};
}

struct Vector {
  std::string_view plain;
  std::string_view encoded;
};

// RFC 4648 §10.
constexpr Vector kRfc4648Vectors[] = {
    {"", ""},
    {"f", "Zg=="},
    {"fo", "Zm8="},
    {"foo", "Zm9v"},
    {"foob", "Zm9vYg=="},
    {"fooba", "Zm9vYmE="},
    {"foobar", "Zm9vYmFy"},
};

TEST_CASE("base64 encodes the RFC 4648 §10 test vectors") {
  for (const Vector& v : kRfc4648Vectors) {
    CAPTURE(v.plain);
    CHECK(auth::base64Encode(text(v.plain)) == v.encoded);
  }
}

TEST_CASE("base64 decodes the RFC 4648 §10 test vectors") {
  for (const Vector& v : kRfc4648Vectors) {
    CAPTURE(v.encoded);
    CHECK(decodedText(v.encoded) == v.plain);
  }
}

TEST_CASE("base64 uses '+' and '/' for values 62 and 63 and round-trips every byte (RFC 4648 §4)") {
  CHECK(auth::base64Encode(fromHex("fbff")) == "+/8=");
  CHECK(auth::base64Encode(fromHex("000000")) == "AAAA");
  CHECK(auth::base64Encode(fromHex("ffffff")) == "////");
  std::vector<std::uint8_t> all(256);
  for (std::size_t i = 0; i < all.size(); ++i) all[i] = static_cast<std::uint8_t>(i);
  for (std::size_t n = 0; n <= all.size(); ++n) {
    const auth::Bytes part{all.data(), n};
    const std::string encoded = auth::base64Encode(part);
    CHECK(encoded.size() == (n + 2) / 3 * 4);
    auto decoded = auth::base64Decode(encoded);
    REQUIRE(decoded.has_value());
    CHECK(std::equal(decoded->begin(), decoded->end(), part.begin(), part.end()));
  }
}

TEST_CASE("base64 decode refuses a length that is not a multiple of 4 (RFC 4648 §4)") {
  CHECK_FALSE(auth::base64Decode("Zg"));
  CHECK_FALSE(auth::base64Decode("Zg="));
  CHECK_FALSE(auth::base64Decode("Zm9vY"));
  CHECK_FALSE(auth::base64Decode("Zm9vYmFy="));
}

TEST_CASE("base64 decode refuses characters outside the alphabet (RFC 4648 §3.3)") {
  CHECK_FALSE(auth::base64Decode("Zm9v\nYmFy"));
  CHECK_FALSE(auth::base64Decode("Zm9 "));
  CHECK_FALSE(auth::base64Decode("Zm-v"));  // base64url, not base64
  CHECK_FALSE(auth::base64Decode("Zm_v"));
  CHECK_FALSE(auth::base64Decode(std::string_view{"Zm\0v", 4}));
  CHECK_FALSE(auth::base64Decode("Zm\xC3\xA9"));
}

TEST_CASE("base64 decode refuses padding anywhere but the end of the last group (RFC 4648 §3.3)") {
  CHECK_FALSE(auth::base64Decode("===="));
  CHECK_FALSE(auth::base64Decode("Z==="));
  CHECK_FALSE(auth::base64Decode("Zg==Zm8="));  // padding in the middle
  CHECK_FALSE(auth::base64Decode("Z=g="));
  CHECK_FALSE(auth::base64Decode("=Zm8"));
  CHECK_FALSE(auth::base64Decode("Zm9v===="));
}

TEST_CASE("base64 decode refuses non-zero pad bits, so each text is canonical (RFC 4648 §3.5)") {
  CHECK(decodedText("Zg==") == "f");
  CHECK_FALSE(auth::base64Decode("Zh=="));
  CHECK_FALSE(auth::base64Decode("Zv=="));
  CHECK(decodedText("Zm8=") == "fo");
  CHECK_FALSE(auth::base64Decode("Zm9="));
}

}  // namespace
