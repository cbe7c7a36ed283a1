// The hashes and MACs STUN needs (RFC 8489 §9.2, §14.4-14.6), on OpenSSL 3's EVP interface
// with every OpenSSL object owned by RAII. Control path only: the first call of a thread
// allocates its contexts; later calls reuse them.
#pragma once

#include <array>
#include <cstdint>
#include <initializer_list>
#include <span>

namespace tern::auth {

using Bytes = std::span<const std::uint8_t>;
using Sha1Digest = std::array<std::uint8_t, 20>;
using Sha256Digest = std::array<std::uint8_t, 32>;
using Md5Digest = std::array<std::uint8_t, 16>;

// Each function hashes the concatenation of `parts`, so callers never copy a message together.
Sha1Digest hmacSha1(Bytes key, std::initializer_list<Bytes> parts);
Sha256Digest hmacSha256(Bytes key, std::initializer_list<Bytes> parts);
Md5Digest md5(std::initializer_list<Bytes> parts);
Sha256Digest sha256(std::initializer_list<Bytes> parts);

// Compares in time that depends only on the lengths (CRYPTO_memcmp), so a forger learns
// nothing from how long a rejection takes.
bool constantTimeEqual(Bytes a, Bytes b) noexcept;

// Cryptographically random bytes (RAND_bytes); throws if the generator fails.
void randomBytes(std::span<std::uint8_t> out);

}  // namespace tern::auth
