// CredentialStore (RFC 8489 §9.2.2 keys over static users and TURN REST secrets,
// draft-uberti-behave-turn-rest-00 §2.2): rotation with several secrets, expiry, static users'
// precomputed keys and precedence, and refusal of unsafe options.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "auth/credential_store.hpp"
#include "auth/message_integrity.hpp"
#include "auth/rest_credentials.hpp"
#include "support/hex.hpp"

namespace {

namespace auth = tern::auth;
using auth::CredentialError;
using auth::PasswordAlgorithmId;
using tern::test::toHex;

constexpr std::int64_t kNow = 1699999400;

auth::CredentialStore store(std::vector<std::string> secrets,
                            std::vector<auth::StaticUser> users = {}) {
  auth::CredentialOptions options;
  options.rest_secrets = std::move(secrets);
  options.static_users = std::move(users);
  return auth::CredentialStore{std::move(options)};
}

std::vector<std::uint8_t> md5Key(const std::string& user, const std::string& password,
                                 const std::string& realm = "tern") {
  return auth::longTermKey(PasswordAlgorithmId::kMd5, user, realm, password);
}

bool contains(const std::vector<std::vector<std::uint8_t>>& keys,
              const std::vector<std::uint8_t>& key) {
  return std::find(keys.begin(), keys.end(), key) != keys.end();
}

TEST_CASE(
    "a REST key is MD5(username:realm:base64(HMAC-SHA1(secret, username))) (RFC 8489 §9.2.2)") {
  const auto s = store({"north"});
  auto keys = s.keysFor("1700000000:alice", auth::PasswordAlgorithmId::kMd5, kNow);
  REQUIRE(keys.has_value());
  REQUIRE(keys->size() == 1);
  // printf '%s' '1700000000:alice:tern:Cd/49soE35ICqcJF/bCTn8Z4OyE=' | openssl dgst -md5
  CHECK(toHex(keys->front()) == "333cfa406fd1640b1ffa9493d6821c3b");
  CHECK(keys->front().size() == 16);
}

TEST_CASE(
    "with two secrets a credential minted with either one has a matching key (secret rotation)") {
  const auto s = store({"new-secret", "old-secret"});
  const auto minted_new = auth::mintRestCredential("new-secret", "alice", kNow, 600);
  const auto minted_old = auth::mintRestCredential("old-secret", "alice", kNow, 600);

  auto keys = s.keysFor(minted_new.username, auth::PasswordAlgorithmId::kMd5, kNow);
  REQUIRE(keys.has_value());
  CHECK(keys->size() == 2);  // one candidate per secret, in configuration order
  CHECK(keys->at(0) == md5Key(minted_new.username, minted_new.password));
  CHECK(keys->at(1) ==
        md5Key(minted_new.username, auth::restPassword("old-secret", minted_new.username)));

  auto old_keys = s.keysFor(minted_old.username, auth::PasswordAlgorithmId::kMd5, kNow);
  REQUIRE(old_keys.has_value());
  CHECK(contains(*old_keys, md5Key(minted_old.username, minted_old.password)));

  // A secret that was rotated out no longer yields a matching key.
  const auto minted_retired = auth::mintRestCredential("retired", "alice", kNow, 600);
  auto retired_keys = s.keysFor(minted_retired.username, auth::PasswordAlgorithmId::kMd5, kNow);
  REQUIRE(retired_keys.has_value());
  CHECK_FALSE(contains(*retired_keys, md5Key(minted_retired.username, minted_retired.password)));
}

TEST_CASE(
    "a REST username whose expiry has passed is kExpired (draft-uberti-behave-turn-rest-00 §2.2)") {
  const auto s = store({"north"});
  CHECK(s.keysFor("1700000000:alice", auth::PasswordAlgorithmId::kMd5, 1700000000).has_value());  // the expiry second counts
  auto expired = s.keysFor("1700000000:alice", auth::PasswordAlgorithmId::kMd5, 1700000001);
  REQUIRE_FALSE(expired.has_value());
  CHECK(expired.error() == CredentialError::kExpired);
  auto bare = s.keysFor("1700000000", auth::PasswordAlgorithmId::kMd5, 1700000001);
  REQUIRE_FALSE(bare.has_value());
  CHECK(bare.error() == CredentialError::kExpired);
}

TEST_CASE("a name that is neither a static user nor a REST username is kUnknownUser") {
  const auto s = store({"north"}, {{"bob", "hunter2"}});
  for (const char* name : {"alice", "", ":alice", "-1:alice", "Bob", "bob "}) {
    CAPTURE(name);
    auto keys = s.keysFor(name, auth::PasswordAlgorithmId::kMd5, kNow);
    REQUIRE_FALSE(keys.has_value());
    CHECK(keys.error() == CredentialError::kUnknownUser);
  }
}

TEST_CASE("REST usernames are unknown when no secret is configured, even expired ones") {
  const auto s = store({}, {{"bob", "hunter2"}});
  for (std::int64_t now : {kNow, std::int64_t{1800000000}}) {
    auto keys = s.keysFor("1700000000:alice", auth::PasswordAlgorithmId::kMd5, now);
    REQUIRE_FALSE(keys.has_value());
    CHECK(keys.error() == CredentialError::kUnknownUser);
  }
}

TEST_CASE("a static user's key is the precomputed longTermKey MD5 (RFC 8489 §9.2.2)") {
  const auto s = store({}, {{"bob", "hunter2"}, {"carol", "s3cret"}});
  auto keys = s.keysFor("bob", auth::PasswordAlgorithmId::kMd5, kNow);
  REQUIRE(keys.has_value());
  REQUIRE(keys->size() == 1);
  CHECK(keys->front() == md5Key("bob", "hunter2"));
  // printf '%s' 'bob:tern:hunter2' | openssl dgst -md5
  CHECK(toHex(keys->front()) == "05676444313c1c5cd71e5f7bf5827df9");
  auto carol = s.keysFor("carol", auth::PasswordAlgorithmId::kMd5, kNow);
  REQUIRE(carol.has_value());
  CHECK(carol->front() == md5Key("carol", "s3cret"));
}

TEST_CASE("the realm is part of every key (RFC 8489 §9.2.2)") {
  auth::CredentialOptions options;
  options.realm = "example.org";
  options.rest_secrets = {"north"};
  options.static_users = {{"bob", "hunter2"}};
  const auth::CredentialStore s{options};
  CHECK(s.realm() == "example.org");
  auto bob = s.keysFor("bob", auth::PasswordAlgorithmId::kMd5, kNow);
  REQUIRE(bob.has_value());
  CHECK(bob->front() == md5Key("bob", "hunter2", "example.org"));
  auto rest = s.keysFor("1700000000:alice", auth::PasswordAlgorithmId::kMd5, kNow);
  REQUIRE(rest.has_value());
  CHECK(rest->front() == md5Key("1700000000:alice", "Cd/49soE35ICqcJF/bCTn8Z4OyE=", "example.org"));
}

TEST_CASE("a static user comes first and outlives the expiry of a REST-shaped name") {
  const std::string name = "1700000000:alice";
  const auto s = store({"north"}, {{name, "static-password"}});
  auto fresh = s.keysFor(name, auth::PasswordAlgorithmId::kMd5, kNow);
  REQUIRE(fresh.has_value());
  REQUIRE(fresh->size() == 2);
  CHECK(fresh->at(0) == md5Key(name, "static-password"));
  CHECK(fresh->at(1) == md5Key(name, auth::restPassword("north", name)));
  auto later = s.keysFor(name, auth::PasswordAlgorithmId::kMd5, 1800000000);
  REQUIRE(later.has_value());
  REQUIRE(later->size() == 1);
  CHECK(later->front() == md5Key(name, "static-password"));
}

TEST_CASE("empty() tells whether anyone at all can authenticate") {
  CHECK(store({}).empty());
  CHECK_FALSE(store({"north"}).empty());
  CHECK_FALSE(store({}, {{"bob", "hunter2"}}).empty());
  CHECK(auth::CredentialStore{auth::CredentialOptions{}}.realm() == "tern");
}

TEST_CASE("the store refuses empty secrets, nameless and duplicate static users, naming each") {
  CHECK_THROWS_AS(store({""}), std::invalid_argument);
  CHECK_THROWS_AS(store({}, {{"", "pw"}}), std::invalid_argument);
  CHECK_THROWS_AS(store({}, {{"bob", "a"}, {"bob", "b"}}), std::invalid_argument);
  try {
    store({"ok", ""}, {{"bob", "pw-one"}, {"bob", "pw-two"}, {"bob", "pw-three"}, {"", "pw-x"}});
    FAIL("expected std::invalid_argument");
  } catch (const std::invalid_argument& e) {
    const std::string what = e.what();
    CHECK(what.find("REST secret #2 is empty") != std::string::npos);
    CHECK(what.find("'bob' is listed more than once") != std::string::npos);
    CHECK(what.find("empty name") != std::string::npos);
    // A name listed three times is reported once; passwords never appear in the message.
    CHECK(what.find("'bob'") == what.rfind("'bob'"));
    CHECK(what.find("pw-") == std::string::npos);
  }
}

}  // namespace
