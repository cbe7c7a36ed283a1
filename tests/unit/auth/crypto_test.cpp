// Known-answer tests for the hashes and MACs of auth/crypto.hpp (RFC 2202, RFC 4231,
// RFC 1321, FIPS 180-2) and for the long-term key and USERHASH of RFC 8489 §9.2.2, §14.4.
#include <doctest/doctest.h>

#include <cstdint>
#include <string_view>
#include <vector>

#include "auth/crypto.hpp"
#include "auth/message_integrity.hpp"
#include "support/hex.hpp"
#include "vectors/stun_vectors.hpp"

namespace {

using tern::auth::Bytes;
using tern::test::fromHex;
using tern::test::toHex;
namespace auth = tern::auth;
namespace vectors = tern::test::vectors;

Bytes text(std::string_view s) { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

const std::vector<std::uint8_t> kKey0b = std::vector<std::uint8_t>(20, 0x0b);
constexpr std::string_view kHiThere = "Hi There";
constexpr std::string_view kJefe = "Jefe";
constexpr std::string_view kWhatDoYaWant = "what do ya want for nothing?";
constexpr std::string_view kLargeKeyData = "Test Using Larger Than Block-Size Key - Hash Key First";

TEST_CASE("HMAC-SHA1 matches RFC 2202 test cases 1, 2 and 6") {
  CHECK(toHex(auth::hmacSha1(kKey0b, {text(kHiThere)})) ==
        "b617318655057264e28bc0b6fb378c8ef146be00");
  CHECK(toHex(auth::hmacSha1(text(kJefe), {text(kWhatDoYaWant)})) ==
        "effcdf6ae5eb2fa2d27416d5f184df9c259a7c79");
  // Case 6: a key longer than the block size is hashed first.
  const std::vector<std::uint8_t> key80(80, 0xaa);
  CHECK(toHex(auth::hmacSha1(key80, {text(kLargeKeyData)})) ==
        "aa4ae5e15272d00e95705637ce8a3b55ed402112");
}

TEST_CASE("HMAC-SHA256 matches RFC 4231 test cases 1, 2 and 6") {
  CHECK(toHex(auth::hmacSha256(kKey0b, {text(kHiThere)})) ==
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  CHECK(toHex(auth::hmacSha256(text(kJefe), {text(kWhatDoYaWant)})) ==
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  const std::vector<std::uint8_t> key131(131, 0xaa);
  CHECK(toHex(auth::hmacSha256(key131, {text(kLargeKeyData)})) ==
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST_CASE("HMAC accepts an empty key and empty input") {
  CHECK(toHex(auth::hmacSha1({}, {})) == "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d");
  CHECK(toHex(auth::hmacSha1({}, {Bytes{}, Bytes{}})) == "fbdb1d1b18aa6c08324b7d64b71fb76370690e1d");
}

TEST_CASE("MD5 and SHA-256 match their known answers (RFC 1321 §A.5, FIPS 180-2 §B.1)") {
  CHECK(toHex(auth::md5({})) == "d41d8cd98f00b204e9800998ecf8427e");
  CHECK(toHex(auth::md5({text("")})) == "d41d8cd98f00b204e9800998ecf8427e");
  CHECK(toHex(auth::md5({text("abc")})) == "900150983cd24fb0d6963f7d28e17f72");
  CHECK(toHex(auth::sha256({text("abc")})) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(toHex(auth::sha256({})) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("hashing several parts equals hashing their concatenation") {
  const Bytes whole = text(kWhatDoYaWant);
  const Bytes a = whole.first(4);
  const Bytes b = whole.subspan(4, 10);
  const Bytes c = whole.subspan(14);
  CHECK(auth::hmacSha1(text(kJefe), {a, b, c}) == auth::hmacSha1(text(kJefe), {whole}));
  CHECK(auth::hmacSha1(text(kJefe), {Bytes{}, whole, Bytes{}}) ==
        auth::hmacSha1(text(kJefe), {whole}));
  CHECK(auth::hmacSha256(text(kJefe), {a, b, c}) == auth::hmacSha256(text(kJefe), {whole}));
  CHECK(auth::md5({a, b, c}) == auth::md5({whole}));
  CHECK(auth::sha256({a, Bytes{}, b, c}) == auth::sha256({whole}));
  CHECK(toHex(auth::sha256({text("a"), text("b"), text("c")})) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST_CASE("constantTimeEqual compares content and length") {
  const auto a = fromHex("0102030405");
  const auto same = fromHex("0102030405");
  const auto other = fromHex("0102030406");
  CHECK(auth::constantTimeEqual(a, same));
  CHECK_FALSE(auth::constantTimeEqual(a, other));
  // A prefix is not equal, whichever side is shorter.
  CHECK_FALSE(auth::constantTimeEqual(a, Bytes{a}.first(4)));
  CHECK_FALSE(auth::constantTimeEqual(Bytes{a}.first(4), a));
  CHECK_FALSE(auth::constantTimeEqual(a, {}));
  CHECK(auth::constantTimeEqual({}, {}));
}

TEST_CASE("randomBytes fills the buffer and differs between calls") {
  std::vector<std::uint8_t> x(32), y(32);
  auth::randomBytes(x);
  auth::randomBytes(y);
  CHECK(x != y);
  auth::randomBytes({});  // nothing to do, no failure
}

TEST_CASE("long-term keys hash username:realm:password with MD5 or SHA-256 (RFC 8489 §9.2.2)") {
  const auto md5_key = auth::longTermKey(auth::PasswordAlgorithmId::kMd5, "user", "realm", "pass");
  CHECK(toHex(md5_key) == toHex(auth::md5({text("user:realm:pass")})));
  const auto sha_key =
      auth::longTermKey(auth::PasswordAlgorithmId::kSha256, "user", "realm", "pass");
  CHECK(toHex(sha_key) == toHex(auth::sha256({text("user:realm:pass")})));
  // RFC 5769 §2.4's key, computed independently.
  CHECK(toHex(auth::longTermKey(auth::PasswordAlgorithmId::kMd5, vectors::kLongTermUsername,
                                vectors::kLongTermRealm, vectors::kLongTermPassword)) ==
        toHex(auth::md5({text("\xE3\x83\x9E\xE3\x83\x88\xE3\x83\xAA\xE3\x83\x83\xE3\x82\xAF\xE3\x82\xB9"
                              ":example.org:TheMatrIX")})));
}

TEST_CASE("USERHASH is SHA-256 of username:realm (RFC 8489 §14.4)") {
  CHECK(auth::userhash("user", "realm") == auth::sha256({text("user:realm")}));
  CHECK(toHex(auth::userhash(vectors::kLongTermUsername, vectors::kLongTermRealm)) ==
        "4a3cf38fef6992bda952c6780417da0f24819415569e60b205c46e41407f1704");
}

}  // namespace
