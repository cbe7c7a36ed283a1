// The long-term credential checks of RFC 8489 §9.2.4, driven with real requests built by
// wire::MessageBuilder and signed with auth::addIntegrity: every AuthOutcome, the RFC 5769 §2.4
// message shape and vector, REST credentials of both rotated-in secrets, and the order of the
// checks (the nonce before the key: a 438 for a stale or foreign nonce, issue 18).
#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "auth/authenticator.hpp"
#include "auth/credential_store.hpp"
#include "auth/message_integrity.hpp"
#include "auth/nonce.hpp"
#include "auth/oauth_token.hpp"
#include "auth/rest_credentials.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "relay/wire/message.hpp"
#include "support/hex.hpp"
#include "vectors/stun_vectors.hpp"

namespace doctest {
template <>
struct StringMaker<tern::auth::AuthOutcome> {
  static String convert(tern::auth::AuthOutcome o) {
    const std::string_view text = tern::auth::describe(o);
    return String(text.data(), static_cast<String::size_type>(text.size()));
  }
};
}  // namespace doctest

namespace {

namespace auth = tern::auth;
namespace attr = tern::wire::attr;
namespace vectors = tern::test::vectors;
using auth::AuthOutcome;
using auth::AuthResult;
using auth::SteadyTime;
using tern::test::fromHex;
using tern::wire::AttributeType;
using tern::wire::Bytes;
using tern::wire::MessageBuilder;
using tern::wire::MessageClass;
using tern::wire::MessageView;
using tern::wire::Method;
using tern::wire::SocketAddress;
using namespace std::chrono_literals;

constexpr std::array<std::uint8_t, 32> kNonceKey{0xA5, 0x5A, 1, 2, 3, 4, 5, 6};
constexpr tern::wire::TransactionId kTid{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
constexpr auto kNonceLifetime = 600s;
const SteadyTime kT0 = SteadyTime{} + 1'000'000s;
constexpr std::int64_t kNowUnix = 1699999400;

SocketAddress address(std::string_view text) {
  auto a = SocketAddress::parse(text);
  REQUIRE(a.has_value());
  return *a;
}

std::vector<std::uint8_t> md5Key(std::string_view user, std::string_view password,
                                 std::string_view realm = "tern") {
  return auth::longTermKey(auth::PasswordAlgorithmId::kMd5, user, realm, password);
}

// What goes into a request; absent fields are left out. Attributes are written in the order
// of RFC 5769 §2.4: USERNAME, NONCE, REALM, then MESSAGE-INTEGRITY.
struct RequestSpec {
  std::optional<std::string> username;
  std::optional<std::string> nonce;
  std::optional<std::string> realm;
  std::optional<std::vector<std::uint8_t>> key;         // MESSAGE-INTEGRITY with this key
  std::optional<std::vector<std::uint8_t>> sha256_key;  // MESSAGE-INTEGRITY-SHA256
  bool fingerprint = false;
  std::optional<std::vector<std::uint8_t>> userhash;      // USERHASH
  std::optional<std::vector<std::uint16_t>> offered;      // PASSWORD-ALGORITHMS
  std::optional<std::uint16_t> chosen;                    // PASSWORD-ALGORITHM
};

std::vector<std::uint8_t> build(const RequestSpec& spec, Method method = Method::kAllocate) {
  std::array<std::uint8_t, 1024> buffer{};
  MessageBuilder b(buffer, method, MessageClass::kRequest, kTid);
  if (method == Method::kAllocate) b.add(attr::RequestedTransport{});
  if (spec.username) b.add(attr::Username{*spec.username});
  if (spec.userhash) b.add(attr::Userhash{Bytes{spec.userhash->data(), spec.userhash->size()}});
  if (spec.nonce) b.add(attr::Nonce{*spec.nonce});
  if (spec.realm) b.add(attr::Realm{*spec.realm});
  if (spec.offered) {
    attr::PasswordAlgorithms list;
    for (std::uint16_t id : *spec.offered) list.algorithms.push(attr::PasswordAlgorithm{id, {}});
    b.add(list);
  }
  if (spec.chosen) b.add(attr::PasswordAlgorithm{*spec.chosen, {}});
  if (spec.key) auth::addIntegrity(b, AttributeType::kMessageIntegrity, *spec.key);
  if (spec.sha256_key)
    auth::addIntegrity(b, AttributeType::kMessageIntegritySha256, *spec.sha256_key);
  if (spec.fingerprint) b.addFingerprint();
  auto done = b.finish();
  REQUIRE(done.has_value());
  return {done->begin(), done->end()};
}

// Realm "tern", two REST secrets (the newer first) and one static user.
std::shared_ptr<const auth::CredentialStore> makeStore() {
  auth::CredentialOptions options;
  options.realm = "tern";
  options.rest_secrets = {"new-secret", "old-secret"};
  options.static_users = {{"bob", "hunter2"}};
  return std::make_shared<const auth::CredentialStore>(std::move(options));
}

struct Fixture {
  AuthResult run(const std::vector<std::uint8_t>& bytes, SteadyTime now = kT0,
                 std::int64_t now_unix = kNowUnix) const {
    return run(bytes, client, now, now_unix);
  }
  AuthResult run(const std::vector<std::uint8_t>& bytes, const SocketAddress& from, SteadyTime now,
                 std::int64_t now_unix) const {
    auto message = MessageView::parse(bytes);
    REQUIRE(message.has_value());
    return authenticator.authenticate(*message, from, now, now_unix);
  }

  std::string nonce(SteadyTime at = kT0) const { return nonces->issue(client, at); }

  // A request from `client` signed for static user bob, unless the test changes it.
  RequestSpec bob() const {
    return {"bob", nonce(), "tern", md5Key("bob", "hunter2"), std::nullopt, false, {}, {}, {}};
  }

  std::shared_ptr<const auth::CredentialStore> store = makeStore();
  std::shared_ptr<const auth::NonceIssuer> nonces =
      std::make_shared<const auth::NonceIssuer>(kNonceKey, kNonceLifetime);
  auth::Authenticator authenticator{store, nonces};
  SocketAddress client = address("192.0.2.1:5000");
};

TEST_CASE_FIXTURE(
    Fixture,
    "a request of RFC 5769 §2.4's shape with a static user's key is ok (RFC 8489 §9.2.4)") {
  const auto bytes = build(bob(), Method::kBinding);
  const AuthResult r = run(bytes);
  CHECK(r.outcome == AuthOutcome::kOk);
  CHECK(r.username == "bob");
  CHECK(r.key == md5Key("bob", "hunter2"));
  CHECK(r.key.size() == 16);
  CHECK(auth::errorCodeFor(r.outcome) == 0);

  // The key verifies the very request it came from, so a response can be signed with it.
  auto message = MessageView::parse(bytes);
  REQUIRE(message.has_value());
  CHECK(auth::verifyIntegrity(*message, AttributeType::kMessageIntegrity, r.key));
}

TEST_CASE_FIXTURE(
    Fixture,
    "FINGERPRINT after MESSAGE-INTEGRITY does not disturb authentication (RFC 8489 §14.7)") {
  RequestSpec spec = bob();
  spec.fingerprint = true;
  CHECK(run(build(spec)).outcome == AuthOutcome::kOk);
}

TEST_CASE_FIXTURE(Fixture,
                  "REST credentials of either configured secret authenticate "
                  "(draft-uberti-behave-turn-rest-00, rotation)") {
  for (const char* secret : {"new-secret", "old-secret"}) {
    CAPTURE(secret);
    const auto credential = auth::mintRestCredential(secret, "alice", kNowUnix, 86400);
    const auto key = md5Key(credential.username, credential.password);
    const AuthResult r =
        run(build({credential.username, nonce(), "tern", key, std::nullopt, false, {}, {}, {}}));
    CHECK(r.outcome == AuthOutcome::kOk);
    CHECK(r.username == credential.username);
    CHECK(r.key == key);
  }
}

TEST_CASE_FIXTURE(Fixture,
                  "a REST credential of a retired secret fails integrity: 401 (RFC 8489 §9.2.4)") {
  const auto credential = auth::mintRestCredential("retired-secret", "alice", kNowUnix, 86400);
  const AuthResult r =
      run(build({credential.username, nonce(), "tern",
                 md5Key(credential.username, credential.password), std::nullopt, false, {}, {}, {}}));
  CHECK(r.outcome == AuthOutcome::kBadIntegrity);
  CHECK(r.key.empty());
  CHECK(auth::errorCodeFor(r.outcome) == 401);
}

TEST_CASE_FIXTURE(Fixture,
                  "a request without MESSAGE-INTEGRITY is challenged: 401 with REALM and NONCE "
                  "(RFC 8489 §9.2.4)") {
  const AuthResult bare = run(build({}));
  CHECK(bare.outcome == AuthOutcome::kNoIntegrity);
  CHECK(bare.username.empty());
  CHECK(auth::errorCodeFor(bare.outcome) == 401);

  // USERNAME, REALM and NONCE without MESSAGE-INTEGRITY are still unauthenticated.
  RequestSpec spec = bob();
  spec.key.reset();
  const AuthResult unsigned_request = run(build(spec));
  CHECK(unsigned_request.outcome == AuthOutcome::kNoIntegrity);
  CHECK(unsigned_request.username == "bob");
  CHECK(unsigned_request.key.empty());
}

std::vector<std::uint8_t> sha256Key(std::string_view user, std::string_view password,
                                    std::string_view realm = "tern") {
  return auth::longTermKey(auth::PasswordAlgorithmId::kSha256, user, realm, password);
}

constexpr std::uint16_t kMd5 = 1;
constexpr std::uint16_t kSha256 = 2;

// bob as an RFC 8489 client: SHA-256 key, PASSWORD-ALGORITHMS echoed, MESSAGE-INTEGRITY-SHA256.
RequestSpec sha256Bob(const Fixture& f) {
  RequestSpec spec = f.bob();
  spec.key.reset();
  spec.sha256_key = sha256Key("bob", "hunter2");
  spec.offered = std::vector<std::uint16_t>{kSha256, kMd5};
  spec.chosen = kSha256;
  return spec;
}

TEST_CASE_FIXTURE(Fixture, "MESSAGE-INTEGRITY-SHA256 alone, MD5 key, no algorithm named: ok and answered in kind") {
  RequestSpec spec = bob();
  spec.sha256_key = spec.key;
  spec.key.reset();
  const AuthResult r = run(build(spec));
  CHECK(r.outcome == AuthOutcome::kOk);
  CHECK(r.integrity == AttributeType::kMessageIntegritySha256);
  CHECK(r.algorithm == auth::PasswordAlgorithmId::kMd5);
}

TEST_CASE_FIXTURE(Fixture, "with both integrity attributes only MESSAGE-INTEGRITY-SHA256 counts (RFC 8489 §9.2.4)") {
  RequestSpec both = bob();
  both.sha256_key = both.key;
  CHECK(run(build(both)).outcome == AuthOutcome::kOk);
  CHECK(run(build(both)).integrity == AttributeType::kMessageIntegritySha256);
  RequestSpec bad_sha = bob();
  bad_sha.sha256_key = md5Key("bob", "wrong");
  CHECK(run(build(bad_sha)).outcome == AuthOutcome::kBadIntegrity);
  RequestSpec bad_sha1 = bob();
  bad_sha1.sha256_key = bad_sha1.key;
  bad_sha1.key = md5Key("bob", "wrong");
  CHECK(run(build(bad_sha1)).outcome == AuthOutcome::kOk);
}

TEST_CASE_FIXTURE(Fixture, "PASSWORD-ALGORITHM SHA-256 with the offered list echoed: SHA-256 key (RFC 8489 §9.2.4)") {
  const AuthResult r = run(build(sha256Bob(*this)));
  CHECK(r.outcome == AuthOutcome::kOk);
  CHECK(r.algorithm == auth::PasswordAlgorithmId::kSha256);
  CHECK(r.key == sha256Key("bob", "hunter2"));
  // MD5 chosen from the same list works too, with the MD5 key; and classic MESSAGE-INTEGRITY.
  RequestSpec md5 = sha256Bob(*this);
  md5.chosen = kMd5;
  md5.sha256_key.reset();
  md5.key = md5Key("bob", "hunter2");
  CHECK(run(build(md5)).outcome == AuthOutcome::kOk);
  // The SHA-256 key does not verify when MD5 was named, nor the MD5 key for SHA-256.
  RequestSpec mismatch = sha256Bob(*this);
  mismatch.sha256_key = md5Key("bob", "hunter2");
  CHECK(run(build(mismatch)).outcome == AuthOutcome::kBadIntegrity);
  // A TURN REST user's SHA-256 key comes from the same password.
  const auto minted = auth::mintRestCredential("new-secret", "carol", kNowUnix, 600);
  RequestSpec rest = sha256Bob(*this);
  rest.username = minted.username;
  rest.sha256_key = sha256Key(minted.username, minted.password);
  CHECK(run(build(rest)).outcome == AuthOutcome::kOk);
}

TEST_CASE_FIXTURE(Fixture, "bid-down protection: the algorithms must be those our nonce was sent with (RFC 8489 §9.2.4)") {
  SUBCASE("PASSWORD-ALGORITHM without PASSWORD-ALGORITHMS") {
    RequestSpec spec = sha256Bob(*this);
    spec.offered.reset();
    CHECK(run(build(spec)).outcome == AuthOutcome::kBadPasswordAlgorithm);
  }
  SUBCASE("PASSWORD-ALGORITHMS without PASSWORD-ALGORITHM") {
    RequestSpec spec = sha256Bob(*this);
    spec.chosen.reset();
    CHECK(run(build(spec)).outcome == AuthOutcome::kBadPasswordAlgorithm);
  }
  SUBCASE("SHA-256 stripped from the list by a man in the middle") {
    RequestSpec spec = bob();
    spec.offered = std::vector<std::uint16_t>{kMd5};
    spec.chosen = kMd5;
    CHECK(run(build(spec)).outcome == AuthOutcome::kBadPasswordAlgorithm);
  }
  SUBCASE("the list reordered") {
    RequestSpec spec = sha256Bob(*this);
    spec.offered = std::vector<std::uint16_t>{kMd5, kSha256};
    CHECK(run(build(spec)).outcome == AuthOutcome::kBadPasswordAlgorithm);
  }
  SUBCASE("an algorithm not in the list") {
    RequestSpec spec = sha256Bob(*this);
    spec.chosen = 3;
    CHECK(run(build(spec)).outcome == AuthOutcome::kBadPasswordAlgorithm);
  }
  CHECK(auth::errorCodeFor(AuthOutcome::kBadPasswordAlgorithm) == 400);
}

TEST_CASE_FIXTURE(Fixture, "without the password-algorithms bit a PASSWORD-ALGORITHM alone is honoured (RFC 8489 B.1)") {
  RequestSpec spec = sha256Bob(*this);
  spec.nonce = nonces->issue(client, kT0, auth::security_feature::kUsernameAnonymity);
  spec.offered.reset();
  CHECK(run(build(spec)).outcome == AuthOutcome::kOk);
  spec.chosen = 9;  // an algorithm tern does not know
  CHECK(run(build(spec)).outcome == AuthOutcome::kBadPasswordAlgorithm);
}

TEST_CASE_FIXTURE(Fixture, "USERHASH names a static user, unknown hashes get 401 (RFC 8489 §9.2.4)") {
  RequestSpec spec = sha256Bob(*this);
  spec.username.reset();
  const auto hash = auth::userhash("bob", "tern");
  spec.userhash = std::vector<std::uint8_t>(hash.begin(), hash.end());
  const AuthResult r = run(build(spec));
  CHECK(r.outcome == AuthOutcome::kOk);
  CHECK(r.username == "bob");
  const auto other = auth::userhash("mallory", "tern");
  spec.userhash = std::vector<std::uint8_t>(other.begin(), other.end());
  CHECK(run(build(spec)).outcome == AuthOutcome::kUnknownUser);
  // Neither USERNAME nor USERHASH: 400.
  spec.userhash.reset();
  CHECK(run(build(spec)).outcome == AuthOutcome::kMissingAttributes);
}

TEST_CASE_FIXTURE(Fixture, "a challenge carries REALM, a cookie nonce with both features, and PASSWORD-ALGORITHMS") {
  std::array<std::uint8_t, 512> buffer{};
  MessageBuilder b(buffer, Method::kAllocate, MessageClass::kErrorResponse, kTid);
  authenticator.addChallenge(b, client, kT0);
  auto bytes = b.finish();
  REQUIRE(bytes.has_value());
  auto message = MessageView::parse(*bytes);
  REQUIRE(message.has_value());
  const auto nonce = message->get<attr::Nonce>();
  REQUIRE(nonce.has_value());
  CHECK(nonce->value.substr(0, 13) == "obMatJos2AAAD");  // password algorithms, username anonymity
  CHECK(nonces->check(nonce->value, client, kT0) == auth::NonceCheck::kValid);
  CHECK(message->get<attr::Realm>()->value == "tern");
  const auto offered = message->get<attr::PasswordAlgorithms>();
  REQUIRE(offered.has_value());
  REQUIRE(offered->algorithms.size() == 2);
  CHECK(offered->algorithms[0].algorithm == kSha256);
  CHECK(offered->algorithms[1].algorithm == kMd5);
  // Without static users USERHASH could name nobody, so username anonymity is not offered.
  auth::CredentialOptions rest_only;
  rest_only.rest_secrets = {"s"};
  const auth::Authenticator rest_authenticator{std::make_shared<const auth::CredentialStore>(rest_only), nonces};
  CHECK(rest_authenticator.securityFeatures() == auth::security_feature::kPasswordAlgorithms);
}

TEST_CASE("RFC 8489 B.1: USERHASH finds the user and SHA-256 of its password verifies the request") {
  auth::CredentialOptions options;
  options.realm = std::string(vectors::kLongTermRealm);
  options.static_users = {{std::string(vectors::kLongTermUsername), std::string(vectors::kLongTermPassword)}};
  const auth::CredentialStore store{options};
  const auto bytes = fromHex(vectors::kRfc8489B1Request);
  auto message = MessageView::parse(bytes);
  REQUIRE(message.has_value());
  const auto hash = message->get<attr::Userhash>();
  REQUIRE(hash.has_value());
  const std::string* name = store.userByHash(hash->value);
  REQUIRE(name != nullptr);
  CHECK(*name == vectors::kLongTermUsername);
  auto keys = store.keysFor(*name, auth::PasswordAlgorithmId::kSha256, kNowUnix);
  REQUIRE(keys.has_value());
  REQUIRE(keys->size() == 1);
  CHECK(auth::verifyIntegrity(*message, AttributeType::kMessageIntegritySha256, keys->front()));
  CHECK_FALSE(auth::verifyIntegrity(*message, AttributeType::kMessageIntegritySha256,
                                    *store.keysFor(*name, auth::PasswordAlgorithmId::kMd5, kNowUnix)->begin()));
}

TEST_CASE_FIXTURE(Fixture,
                  "MESSAGE-INTEGRITY without USERNAME, REALM or NONCE is a 400 (RFC 8489 §9.2.4)") {
  SUBCASE("no USERNAME") {
    RequestSpec spec = bob();
    spec.username.reset();
    CHECK(run(build(spec)).outcome == AuthOutcome::kMissingAttributes);
  }
  SUBCASE("no NONCE") {
    RequestSpec spec = bob();
    spec.nonce.reset();
    const AuthResult r = run(build(spec));
    CHECK(r.outcome == AuthOutcome::kMissingAttributes);
    CHECK(r.username == "bob");
  }
  SUBCASE("no REALM") {
    RequestSpec spec = bob();
    spec.realm.reset();
    CHECK(run(build(spec)).outcome == AuthOutcome::kMissingAttributes);
  }
  CHECK(auth::errorCodeFor(AuthOutcome::kMissingAttributes) == 400);
}

TEST_CASE_FIXTURE(Fixture, "a USERNAME over RFC 8489 §14.3's 508 bytes counts as missing: 400") {
  std::array<std::uint8_t, 1024> buffer{};
  MessageBuilder b(buffer, Method::kAllocate, MessageClass::kRequest, kTid);
  const std::string long_name(509, 'u');
  b.addRaw(static_cast<std::uint16_t>(AttributeType::kUsername), tern::wire::asBytes(long_name));
  b.add(attr::Nonce{nonce()});
  b.add(attr::Realm{"tern"});
  auth::addIntegrity(b, AttributeType::kMessageIntegrity, md5Key(long_name, "x"));
  auto done = b.finish();
  REQUIRE(done.has_value());
  const AuthResult r = run(std::vector<std::uint8_t>(done->begin(), done->end()));
  CHECK(r.outcome == AuthOutcome::kMissingAttributes);
  CHECK(r.username.empty());
}

TEST_CASE_FIXTURE(Fixture, "a REALM other than ours is refused: 401 (RFC 8489 §9.2)") {
  RequestSpec spec = bob();
  spec.realm = "example.org";
  spec.key = md5Key("bob", "hunter2", "example.org");
  CHECK(run(build(spec)).outcome == AuthOutcome::kWrongRealm);
  spec.realm = "Tern";  // realms compare exactly
  CHECK(run(build(spec)).outcome == AuthOutcome::kWrongRealm);
  CHECK(auth::errorCodeFor(AuthOutcome::kWrongRealm) == 401);
}

// Issue 18: this was a 401, which tells a client its credentials are wrong (RFC 8489 §9.2.5
// forbids retrying a 401 unchanged), so a call lost its allocation's next Refresh after a
// restart or behind a new NAT mapping. A nonce that is not valid earns 438, as coturn answers.
TEST_CASE_FIXTURE(Fixture,
                  "a NONCE not issued by us, or issued to another IP address, is invalid: 438") {
  SUBCASE("someone else's nonce") {
    RequestSpec spec = bob();
    spec.nonce = std::string{vectors::kRfc5769Nonce};
    CHECK(run(build(spec)).outcome == AuthOutcome::kInvalidNonce);
  }
  SUBCASE("our nonce from another port of the same host is fine (an RFC 6062 data connection)") {
    CHECK(run(build(bob()), address("192.0.2.1:5001"), kT0, kNowUnix).outcome == AuthOutcome::kOk);
  }
  SUBCASE("our nonce replayed from another IP") {
    const AuthResult r = run(build(bob()), address("198.51.100.7:5000"), kT0, kNowUnix);
    CHECK(r.outcome == AuthOutcome::kInvalidNonce);
    CHECK(r.key.empty());
  }
  SUBCASE("a nonce from an issuer with another key (before a restart)") {
    const auth::NonceIssuer previous{std::array<std::uint8_t, 32>{}, kNonceLifetime};
    RequestSpec spec = bob();
    spec.nonce = previous.issue(client, kT0);
    CHECK(run(build(spec)).outcome == AuthOutcome::kInvalidNonce);
  }
  SUBCASE("an invalid nonce is refused before the user is looked up") {
    RequestSpec spec = bob();
    spec.username = "nobody";
    spec.nonce = "0000000000000000000000000000000000000000";
    CHECK(run(build(spec)).outcome == AuthOutcome::kInvalidNonce);
  }
  CHECK(auth::errorCodeFor(AuthOutcome::kInvalidNonce) == 438);
}

TEST_CASE_FIXTURE(Fixture, "an unknown USERNAME is refused: 401 (RFC 8489 §9.2.4)") {
  RequestSpec spec = bob();
  spec.username = "mallory";
  spec.key = md5Key("mallory", "hunter2");
  const AuthResult r = run(build(spec));
  CHECK(r.outcome == AuthOutcome::kUnknownUser);
  CHECK(r.username == "mallory");
  CHECK(auth::errorCodeFor(r.outcome) == 401);
}

TEST_CASE_FIXTURE(Fixture,
                  "a TURN REST username past its expiry is refused: 401 "
                  "(draft-uberti-behave-turn-rest-00 §2.2)") {
  const auto credential = auth::mintRestCredential("new-secret", "alice", kNowUnix - 700, 600);
  const RequestSpec spec{
      credential.username, nonce(), "tern", md5Key(credential.username, credential.password),
      std::nullopt,        false, {}, {}, {}};
  const AuthResult r = run(build(spec));
  CHECK(r.outcome == AuthOutcome::kExpiredUser);
  CHECK(r.key.empty());
  CHECK(auth::errorCodeFor(r.outcome) == 401);
  // The same request a moment before the expiry was fine.
  CHECK(run(build(spec), kT0, kNowUnix - 100).outcome == AuthOutcome::kOk);
}

TEST_CASE_FIXTURE(Fixture,
                  "a MESSAGE-INTEGRITY that does not verify is refused: 401 (RFC 8489 §9.2.4)") {
  SUBCASE("wrong password") {
    RequestSpec spec = bob();
    spec.key = md5Key("bob", "hunter3");
    CHECK(run(build(spec)).outcome == AuthOutcome::kBadIntegrity);
  }
  SUBCASE("a byte covered by the MAC changed in transit") {
    auto bytes = build(bob());
    // The first byte of the USERNAME's value is at 20 (header) + 8 (REQUESTED-TRANSPORT) + 4.
    REQUIRE(bytes[32] == 'b');
    bytes[32] = 'B';
    const AuthResult r = run(bytes);
    CHECK(r.outcome == AuthOutcome::kUnknownUser);  // "Bob" is nobody
    auto nonce_changed = build(bob());
    nonce_changed[20 + 8 + 8 + 4 + 16 + 3] ^= 0x01;  // a hex digit of the NONCE's tag
    CHECK(run(nonce_changed).outcome == AuthOutcome::kInvalidNonce);
    auto mac_changed = build(bob());
    mac_changed[mac_changed.size() - 1] ^= 0x80;  // the last byte of MESSAGE-INTEGRITY
    CHECK(run(mac_changed).outcome == AuthOutcome::kBadIntegrity);
  }
  SUBCASE("a REST username signed with a static user's password") {
    const auto credential = auth::mintRestCredential("new-secret", "alice", kNowUnix, 600);
    RequestSpec spec = bob();
    spec.username = credential.username;
    spec.key = md5Key(credential.username, "hunter2");
    CHECK(run(build(spec)).outcome == AuthOutcome::kBadIntegrity);
  }
}

TEST_CASE_FIXTURE(Fixture, "a stale NONCE earns 438, and no key: the answer is unsigned (RFC 8489 §9.2.4)") {
  const SteadyTime later = kT0 + kNonceLifetime + 1s;
  const AuthResult r = run(build(bob()), later, kNowUnix);
  CHECK(r.outcome == AuthOutcome::kStaleNonce);
  CHECK(r.key.empty());
  CHECK(auth::errorCodeFor(r.outcome) == 438);
  // Still valid at the end of the lifetime.
  CHECK(run(build(bob()), kT0 + kNonceLifetime, kNowUnix).outcome == AuthOutcome::kOk);
  // A fresh nonce issued then makes the retry succeed.
  RequestSpec retry = bob();
  retry.nonce = nonce(later);
  CHECK(run(build(retry), later, kNowUnix).outcome == AuthOutcome::kOk);
}

// Issue 18: staleness used to be checked last, after the key (RFC 8489 §9.2.4's list order),
// so a forged nonce was a 401. The nonce now comes first, as in RFC 5389 §10.2.2 and coturn:
// cheaper under forged floods, and every client with a nonce that is not valid recovers.
TEST_CASE_FIXTURE(Fixture,
                  "a stale or foreign NONCE earns 438 before the user or the integrity is checked") {
  const SteadyTime later = kT0 + kNonceLifetime + 1s;
  RequestSpec wrong_key = bob();
  wrong_key.key = md5Key("bob", "guess");
  CHECK(run(build(wrong_key), later, kNowUnix).outcome == AuthOutcome::kStaleNonce);
  RequestSpec unknown = bob();
  unknown.username = "mallory";
  CHECK(run(build(unknown), later, kNowUnix).outcome == AuthOutcome::kStaleNonce);
  // With a valid nonce the user and the key decide, as before: 401.
  CHECK(run(build(wrong_key)).outcome == AuthOutcome::kBadIntegrity);
  CHECK(run(build(unknown)).outcome == AuthOutcome::kUnknownUser);
  CHECK(auth::errorCodeFor(AuthOutcome::kUnknownUser) == 401);
}

TEST_CASE("the RFC 5769 §2.4 vector verifies its key but carries a nonce that is not ours") {
  auth::CredentialOptions options;
  options.realm = std::string{vectors::kLongTermRealm};
  options.static_users = {
      {std::string{vectors::kLongTermUsername}, std::string{vectors::kLongTermPassword}}};
  const auth::Authenticator authenticator{
      std::make_shared<const auth::CredentialStore>(options),
      std::make_shared<const auth::NonceIssuer>(kNonceKey, kNonceLifetime)};
  const SocketAddress client = address("192.0.2.1:5000");
  const auto key =
      md5Key(vectors::kLongTermUsername, vectors::kLongTermPassword, vectors::kLongTermRealm);

  const auto vector = fromHex(vectors::kRfc5769LongTermRequest);
  auto message = MessageView::parse(vector);
  REQUIRE(message.has_value());
  REQUIRE(auth::verifyIntegrity(*message, AttributeType::kMessageIntegrity, key));
  const AuthResult r = authenticator.authenticate(*message, client, kT0, kNowUnix);
  CHECK(r.outcome == AuthOutcome::kInvalidNonce);
  CHECK(r.username == vectors::kLongTermUsername);

  // The same message with a nonce we issued authenticates.
  std::array<std::uint8_t, 256> buffer{};
  MessageBuilder b(buffer, Method::kBinding, MessageClass::kRequest, message->transactionId());
  b.add(attr::Username{vectors::kLongTermUsername});
  const std::string nonce = authenticator.nonces().issue(client, kT0);
  b.add(attr::Nonce{nonce});
  b.add(attr::Realm{vectors::kLongTermRealm});
  auth::addIntegrity(b, AttributeType::kMessageIntegrity, key);
  auto rebuilt = b.finish();
  REQUIRE(rebuilt.has_value());
  auto ours = MessageView::parse(*rebuilt);
  REQUIRE(ours.has_value());
  const AuthResult ok = authenticator.authenticate(*ours, client, kT0, kNowUnix);
  CHECK(ok.outcome == AuthOutcome::kOk);
  CHECK(ok.key == key);
}

TEST_CASE("every outcome has a distinct label and the error code RFC 8489 §9.2.4 gives it") {
  struct Row {
    AuthOutcome outcome;
    std::string_view label;
    std::uint16_t code;
  };
  constexpr Row kRows[] = {
      {AuthOutcome::kOk, "ok", 0},
      {AuthOutcome::kNoIntegrity, "no_integrity", 401},
      {AuthOutcome::kMissingAttributes, "missing_attributes", 400},
      {AuthOutcome::kWrongRealm, "wrong_realm", 401},
      {AuthOutcome::kStaleNonce, "stale_nonce", 438},
      {AuthOutcome::kInvalidNonce, "invalid_nonce", 438},
      {AuthOutcome::kUnknownUser, "unknown_user", 401},
      {AuthOutcome::kExpiredUser, "expired_user", 401},
      {AuthOutcome::kBadIntegrity, "bad_integrity", 401},
  };
  for (const Row& row : kRows) {
    CAPTURE(row.label);
    CHECK(auth::describe(row.outcome) == row.label);
    CHECK(auth::errorCodeFor(row.outcome) == row.code);
  }
}

TEST_CASE("an authenticator needs both a credential store and a nonce issuer") {
  auto store = std::make_shared<const auth::CredentialStore>(auth::CredentialOptions{});
  auto nonces = std::make_shared<const auth::NonceIssuer>(kNonceKey, kNonceLifetime);
  CHECK_THROWS_AS(auth::Authenticator(nullptr, nonces), std::invalid_argument);
  CHECK_THROWS_AS(auth::Authenticator(store, nullptr), std::invalid_argument);
  const auth::Authenticator a{store, nonces};
  CHECK(&a.credentials() == store.get());
  CHECK(&a.nonces() == nonces.get());
}

TEST_CASE("with no credentials configured nobody authenticates") {
  const auth::Authenticator a{
      std::make_shared<const auth::CredentialStore>(auth::CredentialOptions{}),
      std::make_shared<const auth::NonceIssuer>(kNonceKey, kNonceLifetime)};
  CHECK(a.credentials().empty());
  const SocketAddress client = address("192.0.2.1:5000");
  std::array<std::uint8_t, 256> buffer{};
  MessageBuilder b(buffer, Method::kAllocate, MessageClass::kRequest, kTid);
  b.add(attr::Username{"1700000000:alice"});
  const std::string nonce = a.nonces().issue(client, kT0);
  b.add(attr::Nonce{nonce});
  b.add(attr::Realm{"tern"});
  auth::addIntegrity(b, AttributeType::kMessageIntegrity,
                     md5Key("1700000000:alice", auth::restPassword("", "1700000000:alice")));
  auto bytes = b.finish();
  REQUIRE(bytes.has_value());
  auto message = MessageView::parse(*bytes);
  REQUIRE(message.has_value());
  CHECK(a.authenticate(*message, client, kT0, kNowUnix).outcome == AuthOutcome::kUnknownUser);
}

}  // namespace

// --- RFC 7635 third-party authorization ---------------------------------------------------

namespace {

const auth::OAuthKey kNorth{"north", std::vector<std::uint8_t>(32, 0x42), auth::OAuthAead::kA256Gcm};

struct OAuthFixture : Fixture {
  std::shared_ptr<const auth::OAuthKeyStore> keys =
      std::make_shared<const auth::OAuthKeyStore>(std::vector<auth::OAuthKey>{kNorth});
  auth::Authenticator oauth{store, nonces, auth::OAuthSettings{keys, "relay.example"}};

  // A request with USERNAME = kid, the token, and MESSAGE-INTEGRITY keyed with `mac_key`.
  std::vector<std::uint8_t> tokenRequest(const std::vector<std::uint8_t>& token, const std::vector<std::uint8_t>& mac_key,
                                         std::string kid = "north") const {
    std::array<std::uint8_t, 1024> buffer{};
    MessageBuilder b(buffer, Method::kAllocate, MessageClass::kRequest, kTid);
    b.add(attr::RequestedTransport{}).add(attr::Username{kid}).add(attr::Nonce{nonce()}).add(attr::Realm{"tern"});
    b.add(attr::AccessToken{Bytes{token.data(), token.size()}});
    auth::addIntegrity(b, AttributeType::kMessageIntegrity, mac_key);
    auto done = b.finish();
    REQUIRE(done.has_value());
    return {done->begin(), done->end()};
  }
  AuthResult runOAuth(const std::vector<std::uint8_t>& bytes, std::int64_t now_unix = kNowUnix) const {
    auto message = MessageView::parse(bytes);
    REQUIRE(message.has_value());
    return oauth.authenticate(*message, client, kT0, now_unix);
  }
};

}  // namespace

TEST_CASE_FIXTURE(OAuthFixture, "an ACCESS-TOKEN sealed under a known kid authenticates with its mac_key (RFC 7635 §9.2)") {
  const auto minted = auth::mintAccessToken(kNorth, "relay.example", auth::kMacKeySha1Size, kNowUnix, 600);
  const AuthResult r = runOAuth(tokenRequest(minted.token, minted.mac_key));
  CHECK(r.outcome == AuthOutcome::kOk);
  CHECK(r.username == "north");
  CHECK(r.key == minted.mac_key);
  REQUIRE(r.token_expiry_unix.has_value());
  CHECK(*r.token_expiry_unix == kNowUnix + 600);
  // coturn's clients sign with the first 16 bytes of a 20-byte mac_key.
  const std::vector<std::uint8_t> prefix(minted.mac_key.begin(), minted.mac_key.begin() + 16);
  CHECK(runOAuth(tokenRequest(minted.token, prefix)).outcome == AuthOutcome::kOk);
  // Another key signs nothing.
  CHECK(runOAuth(tokenRequest(minted.token, md5Key("bob", "hunter2"))).outcome == AuthOutcome::kBadIntegrity);
}

TEST_CASE_FIXTURE(OAuthFixture, "tokens for another server, under an unknown kid, altered or expired get 401 (RFC 7635 §9.2)") {
  const auto other_server = auth::mintAccessToken(kNorth, "other.example", auth::kMacKeySha1Size, kNowUnix, 600);
  CHECK(runOAuth(tokenRequest(other_server.token, other_server.mac_key)).outcome == AuthOutcome::kBadToken);
  const auto minted = auth::mintAccessToken(kNorth, "relay.example", auth::kMacKeySha1Size, kNowUnix, 600);
  CHECK(runOAuth(tokenRequest(minted.token, minted.mac_key, "south")).outcome == AuthOutcome::kBadToken);
  auto altered = minted.token;
  altered[20] ^= 1;
  CHECK(runOAuth(tokenRequest(altered, minted.mac_key)).outcome == AuthOutcome::kBadToken);
  CHECK(runOAuth(tokenRequest(minted.token, minted.mac_key), kNowUnix + 700).outcome == AuthOutcome::kExpiredToken);
  CHECK(auth::errorCodeFor(AuthOutcome::kBadToken) == 401);
  CHECK(auth::errorCodeFor(AuthOutcome::kExpiredToken) == 401);
  // Without OAuth keys an ACCESS-TOKEN is just an unknown user's request.
  const auto bytes = tokenRequest(minted.token, minted.mac_key);
  auto message = MessageView::parse(bytes);
  REQUIRE(message.has_value());
  CHECK(authenticator.authenticate(*message, client, kT0, kNowUnix).outcome == AuthOutcome::kUnknownUser);
}

TEST_CASE_FIXTURE(OAuthFixture, "requests without a token on a token's allocation verify with its mac_key and kid only") {
  const auto minted = auth::mintAccessToken(kNorth, "relay.example", auth::kMacKeySha1Size, kNowUnix, 600);
  RequestSpec spec = bob();
  spec.username = "north";
  spec.key = minted.mac_key;
  const auto bytes = build(spec, Method::kCreatePermission);
  auto message = MessageView::parse(bytes);
  REQUIRE(message.has_value());
  CHECK(oauth.authenticateWithSessionKey(*message, client, kT0, "north", minted.mac_key).outcome == AuthOutcome::kOk);
  CHECK(oauth.authenticateWithSessionKey(*message, client, kT0, "south", minted.mac_key).outcome ==
        AuthOutcome::kUnknownUser);
  CHECK(oauth.authenticateWithSessionKey(*message, client, kT0, "north", md5Key("bob", "hunter2")).outcome ==
        AuthOutcome::kBadIntegrity);
}

TEST_CASE_FIXTURE(OAuthFixture, "with OAuth keys a challenge names the server in THIRD-PARTY-AUTHORIZATION (RFC 7635 §6.1)") {
  for (const auth::Authenticator* a : {&oauth, &authenticator}) {
    std::array<std::uint8_t, 512> buffer{};
    MessageBuilder b(buffer, Method::kAllocate, MessageClass::kErrorResponse, kTid);
    a->addChallenge(b, client, kT0);
    auto bytes = b.finish();
    REQUIRE(bytes.has_value());
    auto message = MessageView::parse(*bytes);
    REQUIRE(message.has_value());
    const auto third_party = message->get<attr::ThirdPartyAuthorization>();
    CHECK(third_party.has_value() == (a == &oauth));
    if (third_party) CHECK(third_party->value == "relay.example");
  }
}
