// Long-term credential checks of RFC 8489 §9.2.4; see authenticator.hpp.
#include "auth/authenticator.hpp"

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
  }
  return "unknown";
}

std::uint16_t errorCodeFor(AuthOutcome outcome) noexcept {
  switch (outcome) {
    case AuthOutcome::kOk:
      return 0;
    // RFC 8489 §9.2.4: MESSAGE-INTEGRITY without USERNAME, REALM or NONCE is a 400.
    case AuthOutcome::kMissingAttributes:
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

AuthResult Authenticator::authenticate(const wire::MessageView& request,
                                       const wire::SocketAddress& client, SteadyTime now,
                                       std::int64_t now_unix) const {
  AuthResult result;
  const auto username = request.get<attr::Username>();
  if (username) result.username = std::string{username->value};

  // RFC 8489 §9.2.4: no MESSAGE-INTEGRITY(-SHA256) earns a 401 carrying REALM and NONCE.
  // For now only MESSAGE-INTEGRITY (HMAC-SHA1) is checked: a request that carries only
  // MESSAGE-INTEGRITY-SHA256 is treated as unauthenticated until PASSWORD-ALGORITHMS
  // negotiation (and USERHASH) arrive in a later change.
  if (!request.has(AttributeType::kMessageIntegrity)) {
    result.outcome = AuthOutcome::kNoIntegrity;
    return result;
  }

  // RFC 8489 §9.2.4: MESSAGE-INTEGRITY without USERNAME, REALM or NONCE is a 400. A value
  // over its length limit (get() returns nothing) counts as missing.
  const auto realm = request.get<attr::Realm>();
  const auto nonce = request.get<attr::Nonce>();
  if (!username || !realm || !nonce) {
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

  // RFC 8489 §9.2.4: "If the value of the USERNAME ... attribute is not valid", 401.
  auto keys = credentials_->keysFor(username->value, now_unix);
  if (!keys) {
    result.outcome = keys.error() == CredentialError::kExpired ? AuthOutcome::kExpiredUser
                                                               : AuthOutcome::kUnknownUser;
    return result;
  }

  // RFC 8489 §9.2.4: MESSAGE-INTEGRITY computed with the user's key must match, else 401.
  // Every candidate (one per REST secret during rotation) is tried, each in constant time.
  for (std::vector<std::uint8_t>& key : *keys) {
    if (verifyIntegrity(request, AttributeType::kMessageIntegrity, key)) {
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
