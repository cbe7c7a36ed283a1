// Self-contained access tokens of STUN third-party authorization (RFC 7635 §6.2): a MAC key,
// issue time and lifetime sealed with AES-GCM under an AS-RS key named by a kid, in coturn's
// byte layout. No I/O; decoding never throws on bad input.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "auth/crypto.hpp"
#include "relay/wire/expected.hpp"

namespace tern::auth {

// The AEAD that seals tokens (RFC 7635 §6.2 uses RFC 5116 algorithms). Named as coturn and
// JSON Web Algorithms (RFC 7518 §5.1) name them: "A256GCM", "A128GCM".
enum class OAuthAead : std::uint8_t {
  kA256Gcm,  // AEAD_AES_256_GCM (RFC 5116 §5.2): a 32-byte key; what tern mints by default
  kA128Gcm,  // AEAD_AES_128_GCM (RFC 5116 §5.1): a 16-byte key
};

// "A256GCM" or "A128GCM" (the RFC 5116 names AEAD_AES_256_GCM and AEAD_AES_128_GCM too).
std::optional<OAuthAead> parseOAuthAead(std::string_view name) noexcept;
std::string_view oauthAeadName(OAuthAead aead) noexcept;
// RFC 5116 §5.1-5.2: K_LEN is 16 octets for AES-128-GCM, 32 for AES-256-GCM.
std::size_t oauthKeySize(OAuthAead aead) noexcept;

// RFC 5116 §5.1-5.2: GCM nonces (N_MIN = N_MAX) are 12 octets and tags 16.
inline constexpr std::size_t kTokenNonceSize = 12;
inline constexpr std::size_t kTokenTagSize = 16;
// RFC 7635 §6.2: a 160-bit mac_key MUST be supported (HMAC-SHA1, MESSAGE-INTEGRITY); tern
// also takes 256-bit keys, for MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.6). Nothing else.
inline constexpr std::size_t kMacKeySha1Size = 20;
inline constexpr std::size_t kMacKeySha256Size = 32;
// RFC 8489 §14.3: USERNAME, which carries the kid (RFC 7635 §5), is under 513 bytes.
inline constexpr std::size_t kMaxKidSize = 512;
// How far the clocks of the authorization server and tern may disagree; coturn allows the
// same 5 s (OAUTH_TIME_DELTA), so a token accepted by one is accepted by the other.
inline constexpr std::chrono::seconds kTokenClockSkew{5};

// One AS-RS key (RFC 7635 §4.1): shared with an authorization server, found by its kid.
struct OAuthKey {
  std::string kid;
  std::vector<std::uint8_t> key;  // oauthKeySize(aead) bytes
  OAuthAead aead = OAuthAead::kA256Gcm;
};

// What a token carries: RFC 7635 §6.2's encrypted_block.
struct AccessTokenContents {
  std::vector<std::uint8_t> mac_key;  // the client's HMAC key: 20 or 32 bytes
  std::uint64_t timestamp = 0;        // 48 bits of Unix seconds, 16 bits of fraction
  std::uint32_t lifetime = 0;         // seconds from `timestamp`
};

enum class TokenError : std::uint8_t {
  kUnknownKid,    // no key of that kid (OAuthKeyStore::decode only)
  kMalformed,     // not the layout of a token: lengths disagree, another nonce size
  kNotAuthentic,  // the GCM tag fails: another key, another server name, or altered bytes
  kBadContents,   // authentic, but the sealed block is wrong: a bug of the server that minted it
};

// Short snake_case text for logs and metric labels, e.g. "not_authentic".
std::string_view describe(TokenError error) noexcept;

// RFC 7635 §6.2: timestamp = Unix seconds in the high 48 bits, a fraction in the low 16.
// `unix_seconds` must lie in 0 to 2^48 - 1 (mintAccessToken checks it).
constexpr std::uint64_t tokenTimestamp(std::int64_t unix_seconds) noexcept {
  return static_cast<std::uint64_t>(unix_seconds) << 16;
}
constexpr std::int64_t tokenSeconds(std::uint64_t timestamp) noexcept {
  return static_cast<std::int64_t>(timestamp >> 16);  // at most 2^48 - 1: never negative
}
// The first Unix second at which the token is no longer valid (before skew).
constexpr std::int64_t tokenExpiry(const AccessTokenContents& contents) noexcept {
  return tokenSeconds(contents.timestamp) + std::int64_t{contents.lifetime};
}

// True when a token issued at `timestamp` for `lifetime` seconds may be used at `now_unix`:
// from `skew` before its issue time until `skew` after it expires. A zero lifetime is never
// valid (coturn reads 0 as "forever"; a forgotten field must not mint an eternal token), and
// a token from further in the future than `skew` is refused, so a server whose clock runs
// ahead cannot hand out tokens that outlive their lifetime here.
bool tokenValidAt(const AccessTokenContents& contents, std::int64_t now_unix,
                  std::chrono::seconds skew = kTokenClockSkew) noexcept;

// RFC 7635 §6.2: nonce_length (16 bits) and nonce, then the GCM ciphertext of
// { key_length (16 bits), mac_key, timestamp (64 bits), lifetime (32 bits) } and its 16-byte
// tag, with `server_name` (the bytes of the name, no terminator) as associated data.
// Throws std::invalid_argument for a mac_key that is not 20 or 32 bytes or a key whose size
// does not fit its AEAD, std::runtime_error if OpenSSL fails.
std::vector<std::uint8_t> encodeAccessToken(const AccessTokenContents& contents,
                                            const OAuthKey& key, std::string_view server_name,
                                            std::span<const std::uint8_t, kTokenNonceSize> nonce);
// The same with a fresh random nonce: a GCM nonce must never repeat under one key.
std::vector<std::uint8_t> encodeAccessToken(const AccessTokenContents& contents,
                                            const OAuthKey& key, std::string_view server_name);

// Opens a token sealed with `key` for `server_name`. Reads only inside `token`, allocates
// only the returned MAC key, and checks every length before it decrypts: a valid token is
// exactly 64 or 76 bytes, so anything else is refused unread (coturn copied attacker-sized
// nonces and keys into fixed buffers). Bad input never throws; only an OpenSSL failure that
// does not depend on the input (out of memory) does, as std::runtime_error.
Expected<AccessTokenContents, TokenError> decodeAccessToken(Bytes token, const OAuthKey& key,
                                                            std::string_view server_name);

// What an authorization server hands its client in RFC 7635's token response: a fresh MAC
// key, and the token that seals it for the STUN server.
struct MintedAccessToken {
  std::vector<std::uint8_t> mac_key;
  std::vector<std::uint8_t> token;
};

// Mints a token under `key` for `server_name`: a random MAC key of `mac_key_size` bytes (20
// for HMAC-SHA1, 32 for HMAC-SHA256), issued at `now_unix`, valid for `lifetime` seconds.
// Throws std::invalid_argument for another MAC key size, a zero lifetime or a time outside
// 0 to 2^48 - 1 seconds (what the timestamp can hold), like encodeAccessToken otherwise.
MintedAccessToken mintAccessToken(const OAuthKey& key, std::string_view server_name,
                                  std::size_t mac_key_size, std::int64_t now_unix,
                                  std::uint32_t lifetime);

// The AS-RS keys tern accepts, as one immutable snapshot every worker reads without locks; a
// reload builds a new store (like CredentialStore).
class OAuthKeyStore {
 public:
  OAuthKeyStore() = default;  // no keys: every token is refused
  // Throws std::invalid_argument, naming every problem at once (never a key), for an empty
  // kid, a kid longer than kMaxKidSize, a key of the wrong size for its AEAD, or a kid given
  // twice.
  explicit OAuthKeyStore(std::vector<OAuthKey> keys);

  bool empty() const noexcept { return keys_.empty(); }
  std::size_t size() const noexcept { return keys_.size(); }
  // The key named `kid`, or null. The kid is no secret (it travels as USERNAME), so an
  // ordinary comparison is fine here.
  const OAuthKey* find(std::string_view kid) const noexcept;

  // decodeAccessToken with the key named `kid`; kUnknownKid when there is none.
  Expected<AccessTokenContents, TokenError> decode(std::string_view kid, Bytes token,
                                                   std::string_view server_name) const;

 private:
  std::map<std::string, OAuthKey, std::less<>> keys_;
};

}  // namespace tern::auth
