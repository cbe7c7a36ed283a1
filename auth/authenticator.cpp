// Long-term credential checks of RFC 8489 §9.2.4; see authenticator.hpp.
#include "auth/authenticator.hpp"

#include <optional>
#include <stdexcept>
#include <utility>

#include "auth/message_integrity.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/stun_constants.hpp"

namespace tern::auth {

using wire::AttributeType;
namespace attr = wire::attr;

std::string_view describe(AuthOutcome outcome) noexcept {
  switch (outcome) {
    case AuthOutcome::kOk:
      return "ok";
    case AuthOutcome::kNoIntegrity:
      return "no_integrity";
    case AuthOutcome::kMissingAttributes:
      return "missing_attributes";
    case AuthOutcome::kWrongRealm:
      return "wrong_realm";
    case AuthOutcome::kStaleNonce:
      return "stale_nonce";
    case AuthOutcome::kInvalidNonce:
      return "invalid_nonce";
    case AuthOutcome::kUnknownUser:
      return "unknown_user";
    case AuthOutcome::kExpiredUser:
      return "expired_user";
    case AuthOutcome::kBadIntegrity:
      return "bad_integrity";
    case AuthOutcome::kBadPasswordAlgorithm:
      return "bad_password_algorithm";
    case AuthOutcome::kBadToken:
      return "bad_token";
    case AuthOutcome::kExpiredToken:
      return "expired_token";
  }
  return "unknown";
}

std::uint16_t errorCodeFor(AuthOutcome outcome) noexcept {
  switch (outcome) {
    case AuthOutcome::kOk:
      return 0;
    // RFC 8489 §9.2.4: MESSAGE-INTEGRITY without USERNAME, REALM or NONCE is a 400.
    case AuthOutcome::kMissingAttributes:
    case AuthOutcome::kBadPasswordAlgorithm:
      return wire::error_code::kBadRequest;
    // RFC 8489 §9.2.4: a NONCE that is "no longer valid" earns 438, which tells the client to
    // retry with the fresh one (§9.2.5); a 401 would tell it its credentials are wrong, and a
    // client must not retry a 401 without changing them.
    case AuthOutcome::kStaleNonce:
    case AuthOutcome::kInvalidNonce:
      return wire::error_code::kStaleNonce;
    case AuthOutcome::kNoIntegrity:
    case AuthOutcome::kWrongRealm:
    case AuthOutcome::kUnknownUser:
    case AuthOutcome::kExpiredUser:
    case AuthOutcome::kBadIntegrity:
    case AuthOutcome::kBadToken:
    case AuthOutcome::kExpiredToken:
      return wire::error_code::kUnauthenticated;
  }
  return wire::error_code::kUnauthenticated;
}

Authenticator::Authenticator(std::shared_ptr<const CredentialStore> credentials,
                             std::shared_ptr<const NonceIssuer> nonces, OAuthSettings oauth)
    : credentials_(std::move(credentials)), nonces_(std::move(nonces)), oauth_(std::move(oauth)) {
  if (!credentials_ || !nonces_) {
    throw std::invalid_argument("Authenticator needs a credential store and a nonce issuer");
  }
}

namespace {

using wire::attr::PasswordAlgorithmId;

// RFC 8489 §9.2.4's algorithm checks. With the password-algorithms bit in the nonce cookie,
// a request naming no algorithm means MD5, and one naming any must carry PASSWORD-ALGORITHMS
// exactly as we sent it (so an attacker who stripped SHA-256 from our 401 is caught) and a
// PASSWORD-ALGORITHM from that list. Without the bit (a nonce that predates the cookie, or
// RFC 8489 Appendix B.1's), a PASSWORD-ALGORITHM alone is honoured.
std::optional<PasswordAlgorithmId> negotiatedAlgorithm(const wire::MessageView& request,
                                                       std::uint32_t nonce_features) {
  const auto chosen = request.get<attr::PasswordAlgorithm>();
  const auto offered = request.get<attr::PasswordAlgorithms>();
  const bool has_chosen = request.has(AttributeType::kPasswordAlgorithm);
  const bool has_offered = request.has(AttributeType::kPasswordAlgorithms);
  if (!has_chosen && !has_offered) return PasswordAlgorithmId::kMd5;
  if (nonce_features & security_feature::kPasswordAlgorithms) {
    if (!chosen || !offered || offered->algorithms.size() != kOfferedPasswordAlgorithms.size()) {
      return std::nullopt;
    }
    bool listed = false;
    for (std::size_t i = 0; i < kOfferedPasswordAlgorithms.size(); ++i) {
      const attr::PasswordAlgorithm& entry = offered->algorithms[i];
      if (entry.algorithm != static_cast<std::uint16_t>(kOfferedPasswordAlgorithms[i]) ||
          !entry.parameters.empty()) {
        return std::nullopt;
      }
      listed = listed || entry == *chosen;
    }
    if (!listed) return std::nullopt;
  } else if (!chosen) {
    return std::nullopt;
  }
  // MD5 and SHA-256 take no parameters (RFC 8489 §18.5).
  if (!chosen->parameters.empty()) return std::nullopt;
  if (chosen->algorithm == static_cast<std::uint16_t>(PasswordAlgorithmId::kMd5)) return PasswordAlgorithmId::kMd5;
  if (chosen->algorithm == static_cast<std::uint16_t>(PasswordAlgorithmId::kSha256)) {
    return PasswordAlgorithmId::kSha256;
  }
  return std::nullopt;
}

}  // namespace

std::uint32_t Authenticator::securityFeatures() const noexcept {
  // USERHASH can only name static users (CredentialStore::userByHash); announcing username
  // anonymity without any would invite clients into certain failure.
  return security_feature::kPasswordAlgorithms |
         (credentials_->hasStaticUsers() ? security_feature::kUsernameAnonymity : 0u);
}

void Authenticator::addChallenge(wire::MessageBuilder& builder, const wire::SocketAddress& client,
                                 SteadyTime now) const {
  attr::PasswordAlgorithms offered;
  for (PasswordAlgorithmId id : kOfferedPasswordAlgorithms) {
    offered.algorithms.push(attr::PasswordAlgorithm{static_cast<std::uint16_t>(id), {}});
  }
  // The builder copies each value, so the nonce text may die with this scope.
  const std::string nonce = nonces_->issue(client, now, securityFeatures());
  builder.add(attr::Realm{credentials_->realm()}).add(attr::Nonce{nonce}).add(offered);
  if (oauthEnabled()) builder.add(attr::ThirdPartyAuthorization{oauth_.server_name});
}

namespace {

// RFC 8489 §9.2.4's first steps, shared by every way of authenticating: the integrity
// attribute present; USERNAME (or USERHASH), REALM and NONCE present; REALM ours; NONCE ours,
// for `client` and not expired. Fills result.integrity and result.username; kOk to go on.
struct Envelope {
  AuthOutcome outcome = AuthOutcome::kOk;
  std::uint32_t nonce_features = 0;
};

Envelope checkEnvelope(const wire::MessageView& request, const wire::SocketAddress& client, SteadyTime now,
                       const CredentialStore& credentials, const NonceIssuer& nonces, AuthResult& result) {
  const auto username = request.get<attr::Username>();
  if (username) result.username = std::string{username->value};
  // RFC 8489 §9.2.4: no MESSAGE-INTEGRITY(-SHA256) earns a 401 carrying REALM and NONCE; with
  // both, the SHA-256 one is checked and answered in kind.
  if (request.has(AttributeType::kMessageIntegritySha256)) {
    result.integrity = AttributeType::kMessageIntegritySha256;
  } else if (request.has(AttributeType::kMessageIntegrity)) {
    result.integrity = AttributeType::kMessageIntegrity;
  } else {
    return {AuthOutcome::kNoIntegrity};
  }
  // RFC 8489 §9.2.4: integrity without USERNAME (or USERHASH), REALM or NONCE is a 400. A
  // value over its length limit (get() returns nothing) counts as missing.
  const auto realm = request.get<attr::Realm>();
  const auto nonce = request.get<attr::Nonce>();
  if ((!username && !request.get<attr::Userhash>()) || !realm || !nonce) return {AuthOutcome::kMissingAttributes};
  // RFC 8489 §9.2.3: the client copies REALM from our 401, and §9.2.2 puts the realm into
  // the key, so a request for another realm cannot hold one of our keys.
  if (realm->value != credentials.realm()) return {AuthOutcome::kWrongRealm};
  // RFC 8489 §9.2.4: a NONCE that is not valid (not ours, issued to another address: a
  // restart, another node of the fleet, a NAT rebinding; or expired) earns 438 with a fresh
  // one. RFC 8489 lists this check after the integrity's; tern makes it here, before any key
  // is derived, as RFC 5389 §10.2.2 did and coturn does: a flood of forged requests then costs
  // one HMAC each (DESIGN.md §4), and the 438, unsigned and limited per source like a 401,
  // tells nobody more than a 401 would. The only difference a client can see is that one
  // with a stale nonce and a wrong password learns of the password on its retry.
  const NonceCheck state = nonces.check(nonce->value, client, now);
  if (state == NonceCheck::kInvalid) return {AuthOutcome::kInvalidNonce};
  if (state == NonceCheck::kStale) return {AuthOutcome::kStaleNonce};
  return {AuthOutcome::kOk, NonceIssuer::featuresOf(nonce->value)};
}

// RFC 8489 §9.2.4's last step: the integrity verifies with one of `keys` (each in constant
// time).
void verifyWithKeys(const wire::MessageView& request, std::vector<std::vector<std::uint8_t>>& keys,
                    AuthResult& result) {
  for (std::vector<std::uint8_t>& key : keys) {
    if (verifyIntegrity(request, result.integrity, key)) {
      result.key = std::move(key);
      result.outcome = AuthOutcome::kOk;
      return;
    }
  }
  result.key.clear();
  result.outcome = AuthOutcome::kBadIntegrity;
}

}  // namespace

AuthResult Authenticator::authenticate(const wire::MessageView& request,
                                       const wire::SocketAddress& client, SteadyTime now,
                                       std::int64_t now_unix) const {
  AuthResult result;
  const Envelope envelope = checkEnvelope(request, client, now, *credentials_, *nonces_, result);
  if (envelope.outcome != AuthOutcome::kOk) {
    result.outcome = envelope.outcome;
    return result;
  }
  const auto algorithm = negotiatedAlgorithm(request, envelope.nonce_features);
  if (!algorithm) {
    result.outcome = AuthOutcome::kBadPasswordAlgorithm;
    return result;
  }
  result.algorithm = *algorithm;

  // RFC 7635 §9.2: with an ACCESS-TOKEN, USERNAME is the kid of the key that sealed it and
  // the token's mac_key is the message-integrity key itself.
  if (request.has(AttributeType::kAccessToken) && oauthEnabled()) return authenticateToken(request, now_unix, std::move(result));

  // RFC 8489 §9.2.4: a USERHASH stands for the user whose SHA-256(name ":" realm) it is.
  if (!request.has(AttributeType::kUsername)) {
    const auto userhash = request.get<attr::Userhash>();
    const std::string* name = credentials_->userByHash(userhash->value);
    if (name == nullptr) {
      result.outcome = AuthOutcome::kUnknownUser;
      return result;
    }
    result.username = *name;
  }

  // RFC 8489 §9.2.4: "If the value of the USERNAME ... attribute is not valid", 401.
  auto keys = credentials_->keysFor(result.username, *algorithm, now_unix);
  if (!keys) {
    result.outcome = keys.error() == CredentialError::kExpired ? AuthOutcome::kExpiredUser
                                                               : AuthOutcome::kUnknownUser;
    return result;
  }
  // RFC 8489 §9.2.4: the integrity computed with the user's key must match, else 401. Every
  // candidate (one per REST secret during rotation) is tried.
  verifyWithKeys(request, *keys, result);
  return result;
}

AuthResult Authenticator::authenticateToken(const wire::MessageView& request, std::int64_t now_unix,
                                            AuthResult result) const {
  const auto token = request.get<attr::AccessToken>();
  if (!token || !request.has(AttributeType::kUsername)) {
    result.outcome = AuthOutcome::kBadToken;
    return result;
  }
  auto contents = oauth_.keys->decode(result.username, token->value, oauth_.server_name);
  if (!contents) {
    result.outcome = AuthOutcome::kBadToken;
    return result;
  }
  if (!tokenValidAt(*contents, now_unix)) {
    result.outcome = AuthOutcome::kExpiredToken;
    return result;
  }
  result.token_expiry_unix = tokenExpiry(*contents);
  std::vector<std::vector<std::uint8_t>> keys;
  keys.push_back(contents->mac_key);
  // coturn (4.6, turnutils_uclient -J) signs with only the first 16 bytes of a 20-byte
  // HMAC-SHA-1 mac_key, the size of its MD5 long-term keys. RFC 7635 §4.1 means the whole
  // key, which is tried first; the prefix lets coturn's clients in, at one more HMAC.
  if (contents->mac_key.size() == kMacKeySha1Size) {
    keys.emplace_back(contents->mac_key.begin(), contents->mac_key.begin() + 16);
  }
  verifyWithKeys(request, keys, result);
  return result;
}

AuthResult Authenticator::authenticateWithSessionKey(const wire::MessageView& request,
                                                     const wire::SocketAddress& client, SteadyTime now,
                                                     std::string_view username, Bytes key) const {
  AuthResult result;
  const Envelope envelope = checkEnvelope(request, client, now, *credentials_, *nonces_, result);
  if (envelope.outcome != AuthOutcome::kOk) {
    result.outcome = envelope.outcome;
    return result;
  }
  if (result.username != username) {
    result.outcome = AuthOutcome::kUnknownUser;
    return result;
  }
  std::vector<std::vector<std::uint8_t>> keys;
  keys.emplace_back(key.begin(), key.end());
  verifyWithKeys(request, keys, result);
  return result;
}

}  // namespace tern::auth
