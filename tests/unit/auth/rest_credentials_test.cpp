// TURN REST API credentials (draft-uberti-behave-turn-rest-00 §2.2): the password against a
// value computed with openssl, the "<expiry>:<user>" username grammar and its edge cases, and
// minting.
#include <doctest/doctest.h>

#include <cstdint>
#include <limits>
#include <stdexcept>
#include <string>

#include "auth/base64.hpp"
#include "auth/crypto.hpp"
#include "auth/rest_credentials.hpp"
#include "support/hex.hpp"

namespace {

namespace auth = tern::auth;
using tern::test::toHex;

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();

TEST_CASE(
    "REST password is base64(HMAC-SHA1(secret, username)) (draft-uberti-behave-turn-rest-00 "
    "§2.2)") {
  // printf '%s' '1700000000:alice' | openssl dgst -sha1 -hmac north -binary | base64
  const std::string password = auth::restPassword("north", "1700000000:alice");
  CHECK(password == "Cd/49soE35ICqcJF/bCTn8Z4OyE=");
  auto raw = auth::base64Decode(password);
  REQUIRE(raw.has_value());
  CHECK(toHex(*raw) == "09dff8f6ca04df9202a9c245fdb0939fc6783b21");
  // The whole username is signed: another expiry or secret gives another password.
  CHECK(auth::restPassword("north", "1700000001:alice") != password);
  CHECK(auth::restPassword("south", "1700000000:alice") != password);
}

TEST_CASE(
    "REST username splits at the first colon into expiry and user "
    "(draft-uberti-behave-turn-rest-00 §2.2)") {
  auto parsed = auth::parseRestUsername("1700000000:alice");
  REQUIRE(parsed.has_value());
  CHECK(parsed->expiry_unix == 1700000000);
  CHECK(parsed->user == "alice");

  SUBCASE("the user may contain colons") {
    auto p = auth::parseRestUsername("1700000000:app:alice:42");
    REQUIRE(p.has_value());
    CHECK(p->expiry_unix == 1700000000);
    CHECK(p->user == "app:alice:42");
  }
  SUBCASE("the user may be empty") {
    auto p = auth::parseRestUsername("1700000000:");
    REQUIRE(p.has_value());
    CHECK(p->expiry_unix == 1700000000);
    CHECK(p->user.empty());
  }
  SUBCASE("a bare expiry without a colon is accepted, as coturn does") {
    auto p = auth::parseRestUsername("1700000000");
    REQUIRE(p.has_value());
    CHECK(p->expiry_unix == 1700000000);
    CHECK(p->user.empty());
  }
  SUBCASE("leading zeros and zero are plain decimal") {
    auto p = auth::parseRestUsername("0000000042:bob");
    REQUIRE(p.has_value());
    CHECK(p->expiry_unix == 42);
    auto zero = auth::parseRestUsername("0");
    REQUIRE(zero.has_value());
    CHECK(zero->expiry_unix == 0);
  }
}

TEST_CASE(
    "REST username expiry must be unsigned decimal digits (draft-uberti-behave-turn-rest-00 "
    "§2.2)") {
  CHECK_FALSE(auth::parseRestUsername(""));
  CHECK_FALSE(auth::parseRestUsername(":alice"));            // no expiry
  CHECK_FALSE(auth::parseRestUsername("alice"));             // a plain static-user name
  CHECK_FALSE(auth::parseRestUsername("alice:1700000000"));  // user first is not the format
  CHECK_FALSE(auth::parseRestUsername("-5:alice"));
  CHECK_FALSE(auth::parseRestUsername("+5:alice"));
  CHECK_FALSE(auth::parseRestUsername(" 5:alice"));
  CHECK_FALSE(auth::parseRestUsername("5 :alice"));
  CHECK_FALSE(auth::parseRestUsername("0x10:alice"));
  CHECK_FALSE(auth::parseRestUsername("1.5:alice"));
  CHECK_FALSE(auth::parseRestUsername("1e9:alice"));
  CHECK_FALSE(auth::parseRestUsername("\xD9\xA1:alice"));  // ARABIC-INDIC DIGIT ONE
}

TEST_CASE(
    "REST username expiry must fit in 19 digits and int64 (draft-uberti-behave-turn-rest-00 "
    "§2.2)") {
  auto max = auth::parseRestUsername("9223372036854775807:alice");
  REQUIRE(max.has_value());
  CHECK(max->expiry_unix == kInt64Max);
  CHECK_FALSE(auth::parseRestUsername("9223372036854775808:alice"));   // INT64_MAX + 1
  CHECK_FALSE(auth::parseRestUsername("9999999999999999999:alice"));   // 19 digits, too big
  CHECK_FALSE(auth::parseRestUsername("18446744073709551617:alice"));  // wraps uint64 to 1
  CHECK_FALSE(auth::parseRestUsername("00000000000000000001:alice"));  // 20 digits
}

TEST_CASE("REST credentials stay valid through their expiry second (as coturn's ts < now)") {
  CHECK_FALSE(auth::restExpired(1000, 999));
  CHECK_FALSE(auth::restExpired(1000, 1000));
  CHECK(auth::restExpired(1000, 1001));
}

TEST_CASE(
    "minted REST credentials are now+ttl:user with the matching password "
    "(draft-uberti-behave-turn-rest-00 §2.2)") {
  const auth::RestCredential c = auth::mintRestCredential("north", "alice", 1699999400, 600);
  CHECK(c.username == "1700000000:alice");
  CHECK(c.password == "Cd/49soE35ICqcJF/bCTn8Z4OyE=");
  auto parsed = auth::parseRestUsername(c.username);
  REQUIRE(parsed.has_value());
  CHECK(parsed->expiry_unix == 1700000000);
  CHECK(parsed->user == "alice");

  const auth::RestCredential anonymous = auth::mintRestCredential("north", "", 100, 1);
  CHECK(anonymous.username == "101:");
  CHECK(anonymous.password == auth::restPassword("north", "101:"));
}

TEST_CASE("minting refuses a non-positive ttl, a negative time and an overflowing expiry") {
  CHECK_THROWS_AS(auth::mintRestCredential("north", "alice", 1700000000, 0), std::invalid_argument);
  CHECK_THROWS_AS(auth::mintRestCredential("north", "alice", 1700000000, -1),
                  std::invalid_argument);
  CHECK_THROWS_AS(auth::mintRestCredential("north", "alice", -10, 60), std::invalid_argument);
  CHECK_THROWS_AS(auth::mintRestCredential("north", "alice", kInt64Max, 1), std::invalid_argument);
  const auto edge = auth::mintRestCredential("north", "alice", kInt64Max - 1, 1);
  CHECK(edge.username == "9223372036854775807:alice");
}

}  // namespace
