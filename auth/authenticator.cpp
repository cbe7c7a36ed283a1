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
    case AuthOutcome::kStaleNonce:
      return wire::error_code::kStaleNonce;
    case AuthOutcome::kNoIntegrity:
    case AuthOutcome::kWrongRealm:
    case AuthOutcome::kInvalidNonce:
    case AuthOutcome::kUnknownUser:
    case AuthOutcome::kExpiredUser:
    case AuthOutcome::kBadIntegrity:
      return wire::error_code::kUnauthenticated;
  }
  return wire::error_code::kUnauthenticated;
}

Authenticator::Authenticator(std::shared_ptr<const CredentialStore> credentials,
                             std::shared_ptr<const NonceIssuer> nonces)
    : credentials_(std::move(credentials)), nonces_(std::move(nonces)) {
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
}

AuthResult Authenticator::authenticate(const wire::MessageView& request,
                                       const wire::SocketAddress& client, SteadyTime now,
                                       std::int64_t now_unix) const {
  AuthResult result;
  const auto username = request.get<attr::Username>();
  if (username) result.username = std::string{username->value};

  // RFC 8489 §9.2.4: no MESSAGE-INTEGRITY(-SHA256) earns a 401 carrying REALM and NONCE.
  // RFC 8489 §9.2.4: with both, the SHA-256 one is checked and answered in kind.
  if (request.has(AttributeType::kMessageIntegritySha256)) {
    result.integrity = AttributeType::kMessageIntegritySha256;
  } else if (request.has(AttributeType::kMessageIntegrity)) {
    result.integrity = AttributeType::kMessageIntegrity;
  } else {
    result.outcome = AuthOutcome::kNoIntegrity;
    return result;
  }

  // RFC 8489 §9.2.4: integrity without USERNAME (or USERHASH), REALM or NONCE is a 400. A
  // value over its length limit (get() returns nothing) counts as missing.
  const auto userhash = request.get<attr::Userhash>();
  const auto realm = request.get<attr::Realm>();
  const auto nonce = request.get<attr::Nonce>();
  if ((!username && !userhash) || !realm || !nonce) {
    result.outcome = AuthOutcome::kMissingAttributes;
    return result;
  }

  // RFC 8489 §9.2.3: the client copies REALM from our 401, and §9.2.2 puts the realm into
  // the key, so a request for another realm cannot hold one of our keys.
  if (realm->value != credentials_->realm()) {
    result.outcome = AuthOutcome::kWrongRealm;
    return result;
  }

  // A nonce we did not issue to this address is refused before any key is derived, so a
  // flood of forged requests costs one HMAC each (DESIGN.md §4).
  const NonceCheck nonce_state = nonces_->check(nonce->value, client, now);
  if (nonce_state == NonceCheck::kInvalid) {
    result.outcome = AuthOutcome::kInvalidNonce;
    return result;
  }

  const auto algorithm = negotiatedAlgorithm(request, NonceIssuer::featuresOf(nonce->value));
  if (!algorithm) {
    result.outcome = AuthOutcome::kBadPasswordAlgorithm;
    return result;
  }
  result.algorithm = *algorithm;

  // RFC 8489 §9.2.4: a USERHASH stands for the user whose SHA-256(name ":" realm) it is.
  if (!username) {
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

  // RFC 8489 §9.2.4: the integrity computed with the user's key must match, else 401.
  // Every candidate (one per REST secret during rotation) is tried, each in constant time.
  for (std::vector<std::uint8_t>& key : *keys) {
    if (verifyIntegrity(request, result.integrity, key)) {
      result.key = std::move(key);
      // RFC 8489 §9.2.4 checks staleness last: only a client that proved the key is told to
      // retry with a new nonce.
      result.outcome =
          nonce_state == NonceCheck::kStale ? AuthOutcome::kStaleNonce : AuthOutcome::kOk;
      return result;
    }
  }
  result.outcome = AuthOutcome::kBadIntegrity;
  return result;
}

}  // namespace tern::auth
