// libFuzzer target for the long-term credential path of auth/ (RFC 8489 §9.2.4): TURN REST
// usernames (draft-uberti-behave-turn-rest-00 §2.2), the CredentialStore's look-up, stateless
// nonces and the Authenticator's verdict on a request. Random bytes never carry one of our
// nonces or a valid MAC, so the first byte picks a mode; bits 0-1:
//  0: the rest is a request, authenticated as it arrives (forged nonces, hostile lengths);
//  1: the rest is a request that the harness re-signs: its NONCE (if any) is replaced by a
//     fresh one of ours and MESSAGE-INTEGRITY(-SHA256)/FINGERPRINT are recomputed for its own
//     USERNAME, so fuzzer-chosen attributes reach the user and algorithm checks;
//  2: the rest describes a request the harness builds and signs itself (see BuiltSpec), whose
//     exact outcome is known; optionally one bit of it is flipped, after which it must fail;
//  3: the rest is text: a REST username checked against a reference parser, a minted
//     credential, the store's keys for it, and a nonce that is checked after being altered.
// Properties hold for every mode: no outcome kOk without a key that verifies the request, and
// never for an expired REST username.
#include <algorithm>
#include <array>
#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "auth/authenticator.hpp"
#include "auth/credential_store.hpp"
#include "auth/crypto.hpp"
#include "auth/message_integrity.hpp"
#include "auth/nonce.hpp"
#include "auth/oauth_token.hpp"
#include "auth/rest_credentials.hpp"
#include "fuzz_check.hpp"
#include "relay/wire/address.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "relay/wire/bytes.hpp"
#include "relay/wire/message.hpp"

namespace {

namespace auth = tern::auth;
namespace wire = tern::wire;
namespace attr = tern::wire::attr;
using auth::AuthOutcome;
using auth::AuthResult;
using auth::PasswordAlgorithmId;
using auth::SteadyTime;
using wire::AttributeType;
using wire::Bytes;
using namespace std::chrono_literals;

constexpr std::string_view kRealm = "tern";
// The secrets the store accepts (newest first, as during a rotation) and one it no longer does.
constexpr std::array<std::string_view, 2> kSecrets = {"new-secret", "old-secret"};
constexpr std::string_view kRetiredSecret = "retired-secret";
// Static users; "1000:dave" has the REST form but expired long ago: static users take
// precedence, so it still authenticates (CredentialStore::keysFor).
struct User {
  std::string_view name;
  std::string_view password;
};
constexpr std::array<User, 2> kStaticUsers = {User{"bob", "hunter2"}, User{"1000:dave", "pw"}};
constexpr std::int64_t kNowUnix = 1'700'000'000;
constexpr auto kNonceLifetime = 600s;
const SteadyTime kNow = SteadyTime{} + 1'000'000s;
// Sealed for ACCESS-TOKENs, so raw requests that carry one reach RFC 7635's path too.
constexpr std::string_view kOAuthSecret = "HGkj32KJGiuy098sdfaqbNjOiaz71923";

wire::SocketAddress address(std::string_view text) {
  auto a = wire::SocketAddress::parse(text);
  TERN_FUZZ_CHECK(a.has_value());
  return *a;
}

struct World {
  // `rest`: whether the store holds the REST secrets; both stores hold the static users.
  explicit World(bool rest) {
    auth::CredentialOptions options;
    options.realm = std::string{kRealm};
    if (rest) {
      for (std::string_view s : kSecrets) options.rest_secrets.emplace_back(s);
    }
    for (const User& u : kStaticUsers) {
      options.static_users.push_back({std::string{u.name}, std::string{u.password}});
    }
    store = std::make_shared<const auth::CredentialStore>(std::move(options));
    std::array<std::uint8_t, 32> nonce_key{};
    for (std::size_t i = 0; i < nonce_key.size(); ++i) nonce_key[i] = static_cast<std::uint8_t>(i * 7 + 1);
    nonces = std::make_shared<const auth::NonceIssuer>(nonce_key, kNonceLifetime);
    auth::OAuthSettings oauth;
    oauth.keys = std::make_shared<const auth::OAuthKeyStore>(std::vector<auth::OAuthKey>{
        {"2783466234", {kOAuthSecret.begin(), kOAuthSecret.end()}, auth::OAuthAead::kA256Gcm}});
    oauth.server_name = "blackdow.carleon.gov";
    authenticator = std::make_unique<auth::Authenticator>(store, nonces, std::move(oauth));
  }
  std::shared_ptr<const auth::CredentialStore> store;
  std::shared_ptr<const auth::NonceIssuer> nonces;
  std::unique_ptr<auth::Authenticator> authenticator;
};

const World& world(bool rest) {
  static const World with_rest(true);
  static const World static_only(false);
  return rest ? with_rest : static_only;
}

const wire::SocketAddress& client() {
  static const wire::SocketAddress a = address("192.0.2.1:5000");
  return a;
}
const wire::SocketAddress& otherClient() {
  static const wire::SocketAddress a = address("192.0.2.2:5000");
  return a;
}

const User* staticUser(std::string_view name) {
  for (const User& u : kStaticUsers) {
    if (u.name == name) return &u;
  }
  return nullptr;
}

// The REST form as the draft defines it, written independently of auth/: 1-19 digits that fit
// in int64, then ':' and anything, or the digits alone.
std::optional<std::int64_t> referenceExpiry(std::string_view username) {
  const std::string_view digits = username.substr(0, username.find(':'));
  if (digits.empty() || digits.size() > 19) return std::nullopt;
  if (!std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return std::nullopt;
  }
  std::int64_t value = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
  if (ec != std::errc{} || end != digits.data() + digits.size()) return std::nullopt;
  return value;
}

// Properties of every verdict, whatever the request.
void checkVerdict(const wire::MessageView& request, const World& w, const AuthResult& r) {
  TERN_FUZZ_CHECK(auth::describe(r.outcome) != "unknown");
  const std::uint16_t code = auth::errorCodeFor(r.outcome);
  const bool proven = r.outcome == AuthOutcome::kOk;
  TERN_FUZZ_CHECK((code == 0) == (r.outcome == AuthOutcome::kOk));
  TERN_FUZZ_CHECK(code == 0 || code == 400 || code == 401 || code == 438);
  if (!proven) {
    TERN_FUZZ_CHECK(r.outcome != AuthOutcome::kBadIntegrity || r.key.empty());
    return;
  }
  // RFC 8489 §9.2.4: only a key holder gets kOk, and the key signs the response.
  TERN_FUZZ_CHECK(!r.key.empty());
  TERN_FUZZ_CHECK(request.has(r.integrity));
  TERN_FUZZ_CHECK(auth::verifyIntegrity(request, r.integrity, r.key));
  // With both integrity attributes, only MESSAGE-INTEGRITY-SHA256 counts.
  if (request.has(AttributeType::kMessageIntegritySha256)) {
    TERN_FUZZ_CHECK(r.integrity == AttributeType::kMessageIntegritySha256);
  }
  if (r.token_expiry_unix) {
    TERN_FUZZ_CHECK(*r.token_expiry_unix + auth::kTokenClockSkew.count() >= kNowUnix);
    return;
  }
  // The key is the user's long-term key: a static user's, else one of a REST secret, and a
  // REST username that has expired never gets here.
  TERN_FUZZ_CHECK(!r.username.empty());
  if (const User* u = staticUser(r.username)) {
    TERN_FUZZ_CHECK(r.key == auth::longTermKey(r.algorithm, u->name, kRealm, u->password));
    return;
  }
  const auto expiry = referenceExpiry(r.username);
  TERN_FUZZ_CHECK(expiry.has_value());
  TERN_FUZZ_CHECK(!auth::restExpired(*expiry, kNowUnix));
  TERN_FUZZ_CHECK(w.store == world(true).store);
  bool secret_key = false;
  for (std::string_view s : kSecrets) {
    secret_key = secret_key || r.key == auth::longTermKey(r.algorithm, r.username, kRealm,
                                                          auth::restPassword(s, r.username));
  }
  TERN_FUZZ_CHECK(secret_key);
}

AuthResult authenticate(Bytes bytes, const World& w, const wire::SocketAddress& from) {
  auto request = wire::MessageView::parse(bytes);
  if (!request) return {};
  AuthResult r = w.authenticator->authenticate(*request, from, kNow, kNowUnix);
  checkVerdict(*request, w, r);
  return r;
}

// --- Mode 0 and 1: requests from the fuzzer ---------------------------------------------------

void fuzzRaw(std::uint8_t flags, Bytes bytes) {
  const World& w = world((flags & 0x04) == 0);
  tern::fuzz::touch(bytes);
  const AuthResult r = authenticate(bytes, w, client());
  // Nothing the fuzzer writes carries one of our nonces, so it cannot get past the nonce.
  TERN_FUZZ_CHECK(r.outcome != AuthOutcome::kOk && r.outcome != AuthOutcome::kStaleNonce);
  // The session-key path (RFC 7635 §9.2) must be as careful with any request.
  if (auto request = wire::MessageView::parse(bytes)) {
    const std::array<std::uint8_t, 20> key{};
    const AuthResult s =
        w.authenticator->authenticateWithSessionKey(*request, client(), kNow, "2783466234", key);
    TERN_FUZZ_CHECK(s.outcome != AuthOutcome::kOk && s.outcome != AuthOutcome::kStaleNonce);
  }
}

// Mode 1. Flags bit 2: static-only store; bit 3: the nonce's feature set is empty (as a nonce
// from before the cookie); bits 4-5: MESSAGE-INTEGRITY, -SHA256, both, or -SHA256 truncated to
// 16 bytes; bit 6: sign REST usernames with the retired secret; bit 7: sign them with the older
// secret and add FINGERPRINT.
void fuzzResigned(std::uint8_t flags, Bytes bytes) {
  const World& w = world((flags & 0x04) == 0);
  auto parsed = wire::MessageView::parse(bytes);
  if (!parsed) return;
  // The key an honest client of this user would hold, for the algorithm it names.
  std::string username;
  if (auto u = parsed->get<attr::Username>()) username = std::string{u->value};
  PasswordAlgorithmId algorithm = PasswordAlgorithmId::kMd5;
  if (auto a = parsed->get<attr::PasswordAlgorithm>();
      a && a->algorithm == static_cast<std::uint16_t>(PasswordAlgorithmId::kSha256)) {
    algorithm = PasswordAlgorithmId::kSha256;
  }
  std::string password;
  const bool retired = (flags & 0x40) != 0;
  if (const User* u = staticUser(username)) {
    password = std::string{u->password};
  } else {
    password = auth::restPassword(retired ? kRetiredSecret : kSecrets[flags >> 7], username);
  }
  const auto key = auth::longTermKey(algorithm, username, kRealm, password);

  const std::uint32_t features = (flags & 0x08) != 0 ? 0 : w.authenticator->securityFeatures();
  const std::string nonce = w.nonces->issue(client(), kNow, features);
  std::vector<std::uint8_t> out(bytes.size() + 256);
  wire::MessageBuilder b(out, static_cast<wire::Method>(parsed->method()), parsed->messageClass(),
                         parsed->transactionId());
  bool stop = false;
  parsed->forEachAttribute([&](const wire::RawAttribute& a) {
    const auto type = static_cast<AttributeType>(a.type);
    if (stop) return;
    // Everything after an integrity attribute is outside its MAC: left out.
    if (type == AttributeType::kMessageIntegrity || type == AttributeType::kMessageIntegritySha256 ||
        type == AttributeType::kFingerprint) {
      stop = true;
      return;
    }
    if (type == AttributeType::kNonce) {
      b.add(attr::Nonce{nonce});
    } else {
      b.addRaw(a.type, a.value);
    }
  });
  const unsigned integrity = (flags >> 4) & 3;
  if (integrity == 0 || integrity == 2) auth::addIntegrity(b, AttributeType::kMessageIntegrity, key);
  if (integrity == 1 || integrity == 2) auth::addIntegrity(b, AttributeType::kMessageIntegritySha256, key);
  if (integrity == 3) {
    b.addIntegrity(AttributeType::kMessageIntegritySha256, 16, [&](Bytes input, wire::MutableBytes mac) {
      const auto full = auth::hmacSha256(key, {input});
      std::copy_n(full.begin(), mac.size(), mac.begin());
    });
  }
  if ((flags & 0x80) != 0) b.addFingerprint();
  auto done = b.finish();
  if (!done) return;
  const AuthResult r = authenticate(*done, w, client());
  // A request signed correctly authenticates: when the verdict was about the very user and
  // algorithm the harness signed for, with a key the store holds, the MAC must verify.
  const bool honest_key = staticUser(username) != nullptr || !retired;
  if (honest_key && !username.empty() && r.username == username && r.algorithm == algorithm &&
      !r.token_expiry_unix) {
    TERN_FUZZ_CHECK(r.outcome != AuthOutcome::kBadIntegrity);
  }
  // The same request from another address carries a nonce that is not its own.
  const AuthResult elsewhere = authenticate(*done, w, otherClient());
  if (elsewhere.outcome != AuthOutcome::kNoIntegrity && elsewhere.outcome != AuthOutcome::kMissingAttributes &&
      elsewhere.outcome != AuthOutcome::kWrongRealm) {
    TERN_FUZZ_CHECK(elsewhere.outcome == AuthOutcome::kInvalidNonce);
  }
}

// --- Mode 2: requests the harness builds ------------------------------------------------------

// Mode 2's layout after the flags byte (flags bit 2: static-only store; bit 3: the nonce's
// feature set is empty; bit 4: flip one bit; bit 5: Allocate with REQUESTED-TRANSPORT and
// SOFTWARE instead of a bare Binding; bit 6: pad the REST expiry with leading zeros;
// bit 7: FINGERPRINT):
//   who:       bits 0-1: static user bob, REST of secret 0, of secret 1, of the retired secret;
//              bit 2: the static user "1000:dave" instead of bob; bit 3: USERHASH for USERNAME;
//              bits 4-5: MESSAGE-INTEGRITY, -SHA256, both, -SHA256 truncated (16-28 bytes);
//              bits 6-7: nonce fresh, stale, issued to another address, too far ahead.
//   algorithm: bits 0-2 pick a row of kAlgorithmCases; bits 3-7: the truncated MAC's length;
//   expiry:    2 bytes, signed seconds from now (REST users only);
//   flip:      2 bytes, the bit to flip within the MAC's coverage;
//   user:      the rest, the REST username's text after the colon.
struct AlgorithmCase {
  std::optional<std::uint16_t> chosen;  // PASSWORD-ALGORITHM
  std::vector<std::uint16_t> offered;   // PASSWORD-ALGORITHMS, absent when empty
  bool with_offered;
};
const std::array<AlgorithmCase, 8>& algorithmCases() {
  static const std::array<AlgorithmCase, 8> cases = {{
      {std::nullopt, {}, false},  // nothing: MD5
      {1, {2, 1}, true},          // MD5 from our list
      {2, {2, 1}, true},          // SHA-256 from our list
      {2, {}, false},             // SHA-256 without the list: a bid-down unless the nonce has no bit
      {1, {1}, true},             // our list with SHA-256 stripped: a bid-down
      {3, {2, 1}, true},          // an algorithm we do not have
      {2, {1, 2}, true},          // our list reordered
      {std::nullopt, {2, 1}, true},  // a list without a choice
  }};
  return cases;
}

// RFC 8489 §9.2.4 as the harness reads it: the algorithm, or nothing for a 400.
std::optional<PasswordAlgorithmId> expectedAlgorithm(const AlgorithmCase& c, bool nonce_bit) {
  if (!c.chosen && !c.with_offered) return PasswordAlgorithmId::kMd5;
  if (nonce_bit) {
    const bool ours = c.with_offered && c.offered == std::vector<std::uint16_t>{2, 1};
    if (!c.chosen || !ours) return std::nullopt;
  } else if (!c.chosen) {
    return std::nullopt;
  }
  if (*c.chosen == 1) return PasswordAlgorithmId::kMd5;
  if (*c.chosen == 2) return PasswordAlgorithmId::kSha256;
  return std::nullopt;
}

void fuzzBuilt(std::uint8_t flags, Bytes in) {
  if (in.size() < 6) return;
  const World& w = world((flags & 0x04) == 0);
  const bool rest_store = (flags & 0x04) == 0;
  const std::uint8_t who = in[0];
  const std::uint8_t algo = in[1];
  const auto expiry_offset = static_cast<std::int16_t>((in[2] << 8) | in[3]);
  const auto flip = static_cast<std::size_t>((in[4] << 8) | in[5]);
  std::string_view user_text = wire::asText(in.subspan(6));
  user_text = user_text.substr(0, 400);

  // Who signs, and with which password.
  const unsigned kind = who & 3;
  std::string username;
  std::string password;
  const std::int64_t expiry = kNowUnix + expiry_offset;
  if (kind == 0) {
    const User& u = kStaticUsers[(who >> 2) & 1];
    username = std::string{u.name};
    password = std::string{u.password};
  } else {
    username = std::to_string(expiry);
    if ((flags & 0x40) != 0) username.insert(0, "000");
    username += ':';
    username += user_text;
    password = auth::restPassword(kind == 3 ? kRetiredSecret : kSecrets[kind - 1], username);
  }
  const bool use_userhash = (who & 0x08) != 0;
  const unsigned integrity = (who >> 4) & 3;
  const unsigned nonce_kind = who >> 6;
  const AlgorithmCase& alg_case = algorithmCases()[algo & 7];
  const bool nonce_bit = (flags & 0x08) == 0;
  const std::uint32_t features = nonce_bit ? w.authenticator->securityFeatures()
                                           : w.authenticator->securityFeatures() &
                                                 ~auth::security_feature::kPasswordAlgorithms;
  // The client signs with the algorithm it names (MD5 when it names none or one we lack).
  const PasswordAlgorithmId signing = alg_case.chosen == 2 ? PasswordAlgorithmId::kSha256 : PasswordAlgorithmId::kMd5;
  const auto key = auth::longTermKey(signing, username, kRealm, password);

  SteadyTime issued = kNow;
  const wire::SocketAddress* nonce_for = &client();
  if (nonce_kind == 1) issued = kNow - kNonceLifetime - 1s;
  if (nonce_kind == 2) nonce_for = &otherClient();
  if (nonce_kind == 3) issued = kNow + auth::NonceIssuer::kFutureSkew + 1s;
  const std::string nonce = w.nonces->issue(*nonce_for, issued, features);

  std::array<std::uint8_t, 1024> buffer{};
  const wire::TransactionId tid{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  const bool allocate = (flags & 0x20) != 0;
  wire::MessageBuilder b(buffer, allocate ? wire::Method::kAllocate : wire::Method::kBinding,
                         wire::MessageClass::kRequest, tid);
  if (allocate) b.add(attr::RequestedTransport{}).add(attr::Software{"rest_auth_fuzz"});
  if (use_userhash) {
    const auto hash = auth::userhash(username, kRealm);
    b.add(attr::Userhash{Bytes{hash.data(), hash.size()}});
  } else {
    b.add(attr::Username{username});
  }
  b.add(attr::Realm{kRealm}).add(attr::Nonce{nonce});
  if (alg_case.with_offered) {
    attr::PasswordAlgorithms list;
    for (std::uint16_t id : alg_case.offered) list.algorithms.push(attr::PasswordAlgorithm{id, {}});
    b.add(list);
  }
  if (alg_case.chosen) b.add(attr::PasswordAlgorithm{*alg_case.chosen, {}});
  const std::size_t covered_end_mi = b.size() + 4 + 20;
  std::size_t covered_end = 0;
  if (integrity == 0 || integrity == 2) {
    auth::addIntegrity(b, AttributeType::kMessageIntegrity, key);
    covered_end = covered_end_mi;
  }
  if (integrity == 1 || integrity == 2) {
    const std::size_t end = b.size() + 4 + 32;
    auth::addIntegrity(b, AttributeType::kMessageIntegritySha256, key);
    if (covered_end == 0) covered_end = end;
  }
  AttributeType counted = integrity == 0 ? AttributeType::kMessageIntegrity : AttributeType::kMessageIntegritySha256;
  if (integrity == 3) {
    // RFC 8489 §14.6: truncated to 16-32 bytes, a multiple of 4.
    const std::size_t mac_size = 16 + 4 * static_cast<std::size_t>((algo >> 3) % 5);
    covered_end = b.size() + 4 + mac_size;
    b.addIntegrity(AttributeType::kMessageIntegritySha256, mac_size, [&](Bytes input, wire::MutableBytes mac) {
      const auto full = auth::hmacSha256(key, {input});
      std::copy_n(full.begin(), mac.size(), mac.begin());
    });
  }
  if ((flags & 0x80) != 0) b.addFingerprint();
  auto done = b.finish();
  TERN_FUZZ_CHECK(done.has_value());
  std::vector<std::uint8_t> request(done->begin(), done->end());

  // The outcome RFC 8489 §9.2.4 demands, step by step in tern's order.
  AuthOutcome expected = AuthOutcome::kOk;
  const auto negotiated = expectedAlgorithm(alg_case, nonce_bit);
  const User* as_static = staticUser(username);
  const auto rest = auth::parseRestUsername(username);
  // The NONCE before the key (see checkEnvelope): forged or from elsewhere, then expired.
  if (nonce_kind == 2) {
    expected = AuthOutcome::kInvalidNonce;
  } else if (nonce_kind == 1 || nonce_kind == 3) {
    expected = AuthOutcome::kStaleNonce;
  } else if (!negotiated) {
    expected = AuthOutcome::kBadPasswordAlgorithm;
  } else if (use_userhash && as_static == nullptr) {
    expected = AuthOutcome::kUnknownUser;  // USERHASH names static users only
  } else if (as_static == nullptr && (!rest_store || !rest)) {
    expected = AuthOutcome::kUnknownUser;
  } else if (as_static == nullptr && auth::restExpired(rest->expiry_unix, kNowUnix)) {
    expected = AuthOutcome::kExpiredUser;
  } else if (kind == 3 || *negotiated != signing) {
    expected = AuthOutcome::kBadIntegrity;
  }
  TERN_FUZZ_CHECK(rest.has_value() == (kind != 0 || username == "1000:dave"));
  const AuthResult r = authenticate(request, w, client());
  TERN_FUZZ_CHECK(r.outcome == expected);
  if (expected == AuthOutcome::kOk) {
    TERN_FUZZ_CHECK(r.username == username);
    TERN_FUZZ_CHECK(r.key == key);
    TERN_FUZZ_CHECK(r.algorithm == signing);
    TERN_FUZZ_CHECK(r.integrity == counted);
  }

  if ((flags & 0x10) == 0) return;
  // Any single bit changed within what every integrity attribute covers (the header up to
  // the end of the first MAC) makes the request fail. Bits after it are excluded: with both
  // attributes, changing MESSAGE-INTEGRITY-SHA256 away leaves a valid MESSAGE-INTEGRITY, the
  // downgrade RFC 8489 §9.2.4 accepts by letting clients send both.
  TERN_FUZZ_CHECK(covered_end <= request.size());
  const std::size_t bit = flip % (covered_end * 8);
  request[bit / 8] = static_cast<std::uint8_t>(request[bit / 8] ^ (1u << (bit % 8)));
  const AuthResult flipped = authenticate(request, w, client());
  TERN_FUZZ_CHECK(flipped.outcome != AuthOutcome::kOk);
}

// --- Mode 3: text -----------------------------------------------------------------------------

// Mode 3's layout after the flags byte: 8 bytes of issue time (ms, for the nonce), 2 bytes
// position and 1 byte replacement for altering the nonce, 2 bytes TTL, then the text.
void fuzzText(std::uint8_t flags, Bytes in) {
  if (in.size() < 13) return;
  const World& w = world((flags & 0x04) == 0);
  std::uint64_t time_bits = 0;
  for (std::size_t i = 0; i < 8; ++i) time_bits = (time_bits << 8) | in[i];
  const auto position = static_cast<std::size_t>((in[8] << 8) | in[9]);
  const auto replacement = static_cast<char>(in[10]);
  const std::int64_t ttl = static_cast<std::int16_t>((in[11] << 8) | in[12]);
  const std::string_view text = wire::asText(in.subspan(13));

  // parseRestUsername agrees with the reference, and the user is what follows the colon.
  const auto parsed = auth::parseRestUsername(text);
  const auto reference = referenceExpiry(text);
  TERN_FUZZ_CHECK(parsed.has_value() == reference.has_value());
  if (parsed) {
    TERN_FUZZ_CHECK(parsed->expiry_unix == *reference);
    TERN_FUZZ_CHECK(parsed->expiry_unix >= 0);
    const std::size_t colon = text.find(':');
    TERN_FUZZ_CHECK(parsed->user == (colon == std::string_view::npos ? std::string_view{} : text.substr(colon + 1)));
    TERN_FUZZ_CHECK(parsed->user.empty() || tern::fuzz::within(wire::asBytes(parsed->user), wire::asBytes(text)));
  }

  // The store: a static name finds its own key first; a REST name one key per secret unless
  // expired; anything else nobody.
  for (PasswordAlgorithmId algorithm : {PasswordAlgorithmId::kMd5, PasswordAlgorithmId::kSha256}) {
    const auto keys = w.store->keysFor(text, algorithm, kNowUnix);
    const User* u = staticUser(text);
    const bool rest_store = (flags & 0x04) == 0;
    const bool rest_ok = rest_store && parsed && !auth::restExpired(parsed->expiry_unix, kNowUnix);
    if (u == nullptr && !rest_ok) {
      TERN_FUZZ_CHECK(!keys);
      TERN_FUZZ_CHECK(keys.error() == (rest_store && parsed ? auth::CredentialError::kExpired
                                                            : auth::CredentialError::kUnknownUser));
      continue;
    }
    TERN_FUZZ_CHECK(keys.has_value());
    const std::size_t want = (u != nullptr ? 1u : 0u) + (rest_ok ? kSecrets.size() : 0u);
    TERN_FUZZ_CHECK(keys->size() == want);
    const std::size_t key_size = algorithm == PasswordAlgorithmId::kSha256 ? 32 : 16;
    for (const auto& k : *keys) TERN_FUZZ_CHECK(k.size() == key_size);
    if (u != nullptr) TERN_FUZZ_CHECK(keys->front() == auth::longTermKey(algorithm, u->name, kRealm, u->password));
  }
  // USERHASH finds exactly the static users.
  const auto hash = auth::userhash(text, kRealm);
  const std::string* by_hash = w.store->userByHash(hash);
  TERN_FUZZ_CHECK((by_hash != nullptr) == (staticUser(text) != nullptr));
  (void)w.store->userByHash(in.subspan(13));

  // Minting for this user: the username parses back to its expiry and user.
  const std::int64_t mint_now = static_cast<std::int64_t>(time_bits >> 1) - (flags & 0x08 ? std::int64_t{1} << 62 : 0);
  try {
    const auto credential = auth::mintRestCredential(kSecrets[0], text, mint_now, ttl);
    TERN_FUZZ_CHECK(ttl > 0 && mint_now >= 0);
    const auto back = auth::parseRestUsername(credential.username);
    TERN_FUZZ_CHECK(back.has_value());
    TERN_FUZZ_CHECK(back->expiry_unix == mint_now + ttl);
    TERN_FUZZ_CHECK(back->user == text);
    TERN_FUZZ_CHECK(credential.password.size() == 28);
    TERN_FUZZ_CHECK(credential.password == auth::restPassword(kSecrets[0], credential.username));
  } catch (const std::invalid_argument&) {
    TERN_FUZZ_CHECK(ttl <= 0 || mint_now < 0 || mint_now > std::numeric_limits<std::int64_t>::max() - ttl);
  }

  // Nonces: the text may be one of ours (libFuzzer copies the nonces it sees compared), but then
  // only for the client it was issued to. One of ours is valid for its client from kFutureSkew
  // before its time until its lifetime has passed, stale outside, refused elsewhere and after
  // any change of one character.
  if (w.nonces->check(text, client(), kNow) != auth::NonceCheck::kInvalid) {
    TERN_FUZZ_CHECK(text.size() == auth::NonceIssuer::kNonceSize);
    TERN_FUZZ_CHECK(w.nonces->check(text, otherClient(), kNow) == auth::NonceCheck::kInvalid);
  }
  (void)auth::NonceIssuer::featuresOf(text);
  // Issue times within ±2^42 ms of the clock's epoch, so that they, plus any age below, stay
  // within the nanosecond range of steady_clock and the harness's arithmetic cannot overflow.
  const auto issued_ms =
      static_cast<std::int64_t>(time_bits & ((std::uint64_t{1} << 43) - 1)) - (std::int64_t{1} << 42);
  const SteadyTime issued{
      std::chrono::duration_cast<SteadyTime::duration>(std::chrono::milliseconds{issued_ms})};
  const std::uint32_t features =
      (static_cast<std::uint32_t>(in[10]) << 16) | static_cast<std::uint32_t>(flags >> 4);
  const std::string nonce = w.nonces->issue(client(), issued, features);
  TERN_FUZZ_CHECK(nonce.size() == auth::NonceIssuer::kNonceSize);
  TERN_FUZZ_CHECK(auth::NonceIssuer::featuresOf(nonce) == (features & 0xFFFFFF));
  const auto age = std::chrono::milliseconds{ttl * 1000};
  const auth::NonceCheck at_age = w.nonces->check(nonce, client(), issued + age);
  const bool fresh = age <= kNonceLifetime && age >= -auth::NonceIssuer::kFutureSkew;
  TERN_FUZZ_CHECK(at_age == (fresh ? auth::NonceCheck::kValid : auth::NonceCheck::kStale));
  TERN_FUZZ_CHECK(w.nonces->check(nonce, otherClient(), issued) == auth::NonceCheck::kInvalid);
  std::string altered = nonce;
  altered[position % altered.size()] = replacement;
  if (altered != nonce) {
    TERN_FUZZ_CHECK(w.nonces->check(altered, client(), issued) == auth::NonceCheck::kInvalid);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t flags = data[0];
  const Bytes rest{data + 1, size - 1};
  switch (flags & 3) {
    case 0:
      fuzzRaw(flags, rest);
      break;
    case 1:
      fuzzResigned(flags, rest);
      break;
    case 2:
      fuzzBuilt(flags, rest);
      break;
    default:
      fuzzText(flags, rest);
      break;
  }
  return 0;
}
