// The server side of the long-term credential mechanism (RFC 8489 §9.2.4): decides whether a
// parsed request is authenticated and, if not, which error the caller must answer with.
// Sans-I/O: the caller passes the client's address and both clocks' readings.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/credential_store.hpp"
#include "auth/nonce.hpp"
#include "auth/oauth_token.hpp"
#include "relay/wire/address.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "relay/wire/message.hpp"

namespace tern::auth {

enum class AuthOutcome : std::uint8_t {
  kOk,
  kNoIntegrity,        // no MESSAGE-INTEGRITY: 401 with REALM and NONCE
  kMissingAttributes,  // MESSAGE-INTEGRITY but no (valid) USERNAME, REALM or NONCE: 400
  kWrongRealm,         // REALM differs from ours: 401
  kStaleNonce,         // our nonce, but too old: 438 with a fresh NONCE
  kInvalidNonce,       // not our nonce, or issued to another address: 438 with a fresh NONCE
  kUnknownUser,        // 401
  kExpiredUser,        // TURN REST username whose expiry passed: 401
  kBadIntegrity,       // MESSAGE-INTEGRITY(-SHA256) verifies with no candidate key: 401
  // RFC 8489 §9.2.4: PASSWORD-ALGORITHMS missing or not the list we sent with the nonce (a
  // bid-down attempt), PASSWORD-ALGORITHM not one of them, or an algorithm tern lacks: 400
  kBadPasswordAlgorithm,
  // RFC 7635 §9.2: an ACCESS-TOKEN that does not decrypt with the key its kid (USERNAME)
  // names, or carries no usable mac_key: 401 (with THIRD-PARTY-AUTHORIZATION)
  kBadToken,
  kExpiredToken,  // RFC 7635 §9.2: the token's timestamp + lifetime has passed: 401
};

// Short snake_case text for logs and metric labels, e.g. "stale_nonce".
std::string_view describe(AuthOutcome outcome) noexcept;
// The STUN error code to answer with (RFC 8489 §9.2.4): 0 for kOk, else 400, 401 or 438.
std::uint16_t errorCodeFor(AuthOutcome outcome) noexcept;

// RFC 8489 §9.2.4: the PASSWORD-ALGORITHMS tern offers in every 401 and 438, in order of
// preference. A request must copy this list exactly once it names an algorithm.
inline constexpr std::array<wire::attr::PasswordAlgorithmId, 2> kOfferedPasswordAlgorithms = {
    wire::attr::PasswordAlgorithmId::kSha256, wire::attr::PasswordAlgorithmId::kMd5};

struct AuthResult {
  AuthOutcome outcome = AuthOutcome::kNoIntegrity;
  // The USERNAME, whenever the request carried a valid one, or the static user its USERHASH
  // names.
  std::string username;
  // The key that verified the message integrity, for signing the response: set for kOk only.
  std::vector<std::uint8_t> key;
  // Which integrity attribute verified; RFC 8489 §9.2.4 signs the response with the same.
  wire::AttributeType integrity = wire::AttributeType::kMessageIntegrity;
  wire::attr::PasswordAlgorithmId algorithm = wire::attr::PasswordAlgorithmId::kMd5;
  // RFC 7635: set when an ACCESS-TOKEN authenticated the request (its mac_key is `key`), to
  // the Unix second the token expires; allocations must not outlive it.
  std::optional<std::int64_t> token_expiry_unix;
};

// RFC 7635 third-party authorization: the AS-RS keys by kid and the server name tokens are
// sealed for (their AEAD associated data, sent in THIRD-PARTY-AUTHORIZATION).
struct OAuthSettings {
  std::shared_ptr<const OAuthKeyStore> keys;
  std::string server_name;
};

class Authenticator {
 public:
  // Both must be non-null (std::invalid_argument otherwise). Immutable and shared by all
  // workers; a reload builds a new Authenticator around the new CredentialStore.
  Authenticator(std::shared_ptr<const CredentialStore> credentials,
                std::shared_ptr<const NonceIssuer> nonces, OAuthSettings oauth = {});

  // RFC 8489 §9.2.4's checks: MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 present (with
  // both, only the SHA-256 one counts); USERNAME or USERHASH, REALM and NONCE present; REALM
  // ours; the NONCE ours, for `client` and not expired, else 438 (see checkEnvelope for why
  // before the key, as RFC 5389 §10.2.2 and coturn order it); the password algorithm
  // negotiated as the nonce cookie demands (bid-down protection); the user known and not
  // expired; the integrity verifies with one of its keys.
  // `now` is the steady time for the nonce, `now_unix` wall-clock seconds for REST expiry.
  AuthResult authenticate(const wire::MessageView& request, const wire::SocketAddress& client,
                          SteadyTime now, std::int64_t now_unix) const;

  // RFC 7635 §9.2: requests on an allocation an ACCESS-TOKEN made (CreatePermission,
  // ChannelBind, a Refresh without a new token) are signed with that token's mac_key and carry
  // no token: the same checks as authenticate(), with `key` as the only candidate and
  // `username` (the kid) as the only valid USERNAME.
  AuthResult authenticateWithSessionKey(const wire::MessageView& request, const wire::SocketAddress& client,
                                        SteadyTime now, std::string_view username, Bytes key) const;
  bool oauthEnabled() const noexcept { return oauth_.keys && !oauth_.keys->empty(); }

  // RFC 8489 §9.2.4: what a 401 or 438 carries for the client to (re)compute its key: REALM,
  // a fresh NONCE whose cookie announces password algorithms (and username anonymity when
  // static users exist) and PASSWORD-ALGORITHMS; with OAuth keys, RFC 7635 §6.1's
  // THIRD-PARTY-AUTHORIZATION naming the server.
  void addChallenge(wire::MessageBuilder& builder, const wire::SocketAddress& client, SteadyTime now) const;
  // The security feature bits this server's nonces announce.
  std::uint32_t securityFeatures() const noexcept;

  const CredentialStore& credentials() const noexcept { return *credentials_; }
  const NonceIssuer& nonces() const noexcept { return *nonces_; }

 private:
  AuthResult authenticateToken(const wire::MessageView& request, std::int64_t now_unix,
                               AuthResult result) const;

  std::shared_ptr<const CredentialStore> credentials_;
  std::shared_ptr<const NonceIssuer> nonces_;
  OAuthSettings oauth_;
};

}  // namespace tern::auth
