// Long-term credential keys and the MESSAGE-INTEGRITY / MESSAGE-INTEGRITY-SHA256 MACs of
// RFC 8489 §9.2, §14.4-14.6: the codec finds the bytes, this file owns the keys and HMACs.
#pragma once

#include <string_view>
#include <vector>

#include "auth/crypto.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "relay/wire/message.hpp"

namespace tern::auth {

using PasswordAlgorithmId = wire::attr::PasswordAlgorithmId;

// RFC 8489 §9.2.2: key = MD5(username ":" OpaqueString(realm) ":" OpaqueString(password)) or
// SHA-256 of the same. Inputs must already be OpaqueString-prepared (RFC 8265); tern's own
// credentials are ASCII, for which that preparation is the identity.
std::vector<std::uint8_t> longTermKey(PasswordAlgorithmId algorithm, std::string_view username,
                                      std::string_view realm, std::string_view password);

// RFC 8489 §14.4: USERHASH = SHA-256(OpaqueString(username) ":" OpaqueString(realm)).
Sha256Digest userhash(std::string_view username, std::string_view realm);

// Checks MESSAGE-INTEGRITY (HMAC-SHA1) or MESSAGE-INTEGRITY-SHA256 (HMAC-SHA256, possibly
// truncated to 16-32 bytes) of a parsed message, in constant time.
bool verifyIntegrity(const wire::MessageView& message, wire::AttributeType type, Bytes key);

// Adds MESSAGE-INTEGRITY (20 bytes) or MESSAGE-INTEGRITY-SHA256 (32 bytes) computed over
// what the builder has written so far.
void addIntegrity(wire::MessageBuilder& builder, wire::AttributeType type, Bytes key);

}  // namespace tern::auth
