// RFC 7635 §6.2 self-contained access tokens on OpenSSL 3's EVP AES-GCM; see oauth_token.hpp.
#include "auth/oauth_token.hpp"

#include <openssl/evp.h>

#include <climits>
#include <memory>
#include <stdexcept>
#include <utility>

#include "relay/wire/bytes.hpp"

namespace tern::auth {

namespace {

struct CipherDeleter {
  void operator()(EVP_CIPHER* p) const noexcept { EVP_CIPHER_free(p); }
};
struct CipherCtxDeleter {
  void operator()(EVP_CIPHER_CTX* p) const noexcept { EVP_CIPHER_CTX_free(p); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxDeleter>;

[[noreturn]] void fail(const char* what) { throw std::runtime_error(what); }

// The sealed block: key_length (2), mac_key, timestamp (8), lifetime (4).
constexpr std::size_t kBlockFixedSize = 2 + 8 + 4;
constexpr std::size_t kMaxBlockSize = kBlockFixedSize + kMacKeySha256Size;
// nonce_length (2) and the nonce come before the block, the tag after it.
constexpr std::size_t kTokenOverhead = 2 + kTokenNonceSize + kTokenTagSize;

bool isMacKeySize(std::size_t n) noexcept { return n == kMacKeySha1Size || n == kMacKeySha256Size; }

// Looked up by name once per process, as crypto.cpp does for HMAC: OpenSSL 3 takes a lock and
// compares strings on every fetch.
const EVP_CIPHER* cipherFor(OAuthAead aead) {
  static const std::unique_ptr<EVP_CIPHER, CipherDeleter> aes256{
      EVP_CIPHER_fetch(nullptr, "AES-256-GCM", nullptr)};
  static const std::unique_ptr<EVP_CIPHER, CipherDeleter> aes128{
      EVP_CIPHER_fetch(nullptr, "AES-128-GCM", nullptr)};
  const EVP_CIPHER* cipher = aead == OAuthAead::kA128Gcm ? aes128.get() : aes256.get();
  if (cipher == nullptr) fail("OpenSSL: AES-GCM is not available");
  return cipher;
}

// One context per thread, algorithm and direction, bound to its cipher on first use; each
// call then sets only key and nonce, which restarts GCM without allocating.
EVP_CIPHER_CTX* cipherContext(OAuthAead aead, bool encrypt) {
  thread_local CipherCtx contexts[2][2];
  CipherCtx& slot = contexts[aead == OAuthAead::kA128Gcm ? 1 : 0][encrypt ? 1 : 0];
  if (slot) return slot.get();
  CipherCtx ctx{EVP_CIPHER_CTX_new()};
  if (!ctx) fail("OpenSSL: EVP_CIPHER_CTX_new failed");
  const int enc = encrypt ? 1 : 0;
  if (EVP_CipherInit_ex2(ctx.get(), cipherFor(aead), nullptr, nullptr, enc, nullptr) != 1) {
    fail("OpenSSL: AES-GCM init failed");
  }
  slot = std::move(ctx);
  return slot.get();
}

// Sets key and nonce (GCM's default IV length is the 12 bytes RFC 5116 wants) and feeds the
// associated data.
void start(EVP_CIPHER_CTX* ctx, const OAuthKey& key, Bytes nonce, std::string_view server_name,
           bool encrypt) {
  const int enc = encrypt ? 1 : 0;
  if (EVP_CipherInit_ex2(ctx, nullptr, key.key.data(), nonce.data(), enc, nullptr) != 1) {
    fail("OpenSSL: AES-GCM key setup failed");
  }
  int ignored = 0;
  // RFC 7635 §6.2: the STUN server's name is the associated data, so a token minted for one
  // server does not open on another that shares the key.
  if (!server_name.empty() &&
      EVP_CipherUpdate(ctx, nullptr, &ignored, wire::asBytes(server_name).data(),
                       static_cast<int>(server_name.size())) != 1) {
    fail("OpenSSL: AES-GCM associated data failed");
  }
}

std::array<std::uint8_t, 8> bigEndian64(std::uint64_t v) noexcept {
  std::array<std::uint8_t, 8> out{};
  wire::storeU32(out.data(), static_cast<std::uint32_t>(v >> 32));
  wire::storeU32(out.data() + 4, static_cast<std::uint32_t>(v));
  return out;
}

// The encrypted_block in the clear: key_length, mac_key, timestamp, lifetime.
std::vector<std::uint8_t> plainBlock(const AccessTokenContents& contents) {
  std::vector<std::uint8_t> block(kBlockFixedSize + contents.mac_key.size());
  wire::ByteWriter w(block);
  w.u16(static_cast<std::uint16_t>(contents.mac_key.size()));
  w.bytes(contents.mac_key);
  w.bytes(bigEndian64(contents.timestamp));
  w.u32(contents.lifetime);
  return block;
}

void checkEncodable(const AccessTokenContents& contents, const OAuthKey& key) {
  if (!isMacKeySize(contents.mac_key.size())) {
    throw std::invalid_argument("access token: the MAC key must be 20 or 32 bytes");
  }
  if (key.key.size() != oauthKeySize(key.aead)) {
    // Appends, not operator+ chains: GCC 12 at -O3 raises a false -Wrestrict on those.
    std::string message = "access token: key '";
    message.append(key.kid).append("' does not fit ").append(oauthAeadName(key.aead));
    throw std::invalid_argument(message);
  }
}

// Parses the decrypted block; anything but exactly one 20- or 32-byte key and the two
// numbers is the minting server's mistake.
Expected<AccessTokenContents, TokenError> parseBlock(Bytes block) {
  wire::ByteReader r(block);
  const std::size_t key_length = r.u16();
  if (!isMacKeySize(key_length) || r.remaining() != key_length + 8 + 4) {
    return Unexpected{TokenError::kBadContents};
  }
  AccessTokenContents out;
  const Bytes mac_key = r.bytes(key_length);
  out.mac_key.assign(mac_key.begin(), mac_key.end());
  const std::uint64_t high = r.u32();
  out.timestamp = (high << 32) | r.u32();
  out.lifetime = r.u32();
  return out;
}

}  // namespace

std::optional<OAuthAead> parseOAuthAead(std::string_view name) noexcept {
  if (name == "A256GCM" || name == "AEAD_AES_256_GCM") return OAuthAead::kA256Gcm;
  if (name == "A128GCM" || name == "AEAD_AES_128_GCM") return OAuthAead::kA128Gcm;
  return std::nullopt;
}

std::string_view oauthAeadName(OAuthAead aead) noexcept {
  return aead == OAuthAead::kA128Gcm ? "A128GCM" : "A256GCM";
}

std::size_t oauthKeySize(OAuthAead aead) noexcept { return aead == OAuthAead::kA128Gcm ? 16 : 32; }

std::string_view describe(TokenError error) noexcept {
  switch (error) {
    case TokenError::kUnknownKid:
      return "unknown_kid";
    case TokenError::kMalformed:
      return "malformed";
    case TokenError::kNotAuthentic:
      return "not_authentic";
    case TokenError::kBadContents:
      return "bad_contents";
  }
  return "unknown";
}

bool tokenValidAt(const AccessTokenContents& contents, std::int64_t now_unix,
                  std::chrono::seconds skew) noexcept {
  if (contents.lifetime == 0) return false;
  // Seconds fit in 48 bits and the lifetime in 32, so none of these sums overflows int64 for
  // any skew a caller would pass.
  const std::int64_t issued = tokenSeconds(contents.timestamp);
  const std::int64_t slack = skew.count();
  return now_unix >= issued - slack && now_unix < tokenExpiry(contents) + slack;
}

std::vector<std::uint8_t> encodeAccessToken(const AccessTokenContents& contents,
                                            const OAuthKey& key, std::string_view server_name,
                                            std::span<const std::uint8_t, kTokenNonceSize> nonce) {
  checkEncodable(contents, key);
  if (server_name.size() > INT_MAX) {
    throw std::invalid_argument("access token: server name too long");
  }
  const std::vector<std::uint8_t> block = plainBlock(contents);

  std::vector<std::uint8_t> token(kTokenOverhead + block.size());
  wire::ByteWriter w(token);
  w.u16(static_cast<std::uint16_t>(kTokenNonceSize));
  w.bytes(nonce);
  std::uint8_t* sealed = w.reserve(block.size());
  std::uint8_t* tag = w.reserve(kTokenTagSize);

  EVP_CIPHER_CTX* ctx = cipherContext(key.aead, true);
  start(ctx, key, nonce, server_name, true);
  int written = 0;
  int final_written = 0;
  if (EVP_EncryptUpdate(ctx, sealed, &written, block.data(), static_cast<int>(block.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx, sealed + written, &final_written) != 1 ||
      static_cast<std::size_t>(written + final_written) != block.size() ||
      EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, static_cast<int>(kTokenTagSize), tag) != 1) {
    fail("OpenSSL: AES-GCM encryption failed");
  }
  return token;
}

std::vector<std::uint8_t> encodeAccessToken(const AccessTokenContents& contents,
                                            const OAuthKey& key, std::string_view server_name) {
  std::array<std::uint8_t, kTokenNonceSize> nonce{};
  randomBytes(nonce);
  return encodeAccessToken(contents, key, server_name, nonce);
}

Expected<AccessTokenContents, TokenError> decodeAccessToken(Bytes token, const OAuthKey& key,
                                                            std::string_view server_name) {
  // RFC 7635 §6.2, as laid out on the wire:
  //  0                   1                   2                   3
  //  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
  // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
  // |      nonce_length (12)        |  nonce (12 bytes) ...         |
  // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
  // | encrypted_block: key_length, mac_key, timestamp, lifetime ... |
  // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
  // |                     GCM tag (16 bytes)                        |
  // +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
  wire::ByteReader r(token);
  // RFC 5116 §5.1-5.2: a GCM nonce is exactly 12 bytes; coturn's decoder trusted any length.
  if (r.u16() != kTokenNonceSize) return Unexpected{TokenError::kMalformed};
  const Bytes nonce = r.bytes(kTokenNonceSize);
  if (!r.ok() || r.remaining() < kTokenTagSize) return Unexpected{TokenError::kMalformed};
  const std::size_t sealed_size = r.remaining() - kTokenTagSize;
  // Only a 20- or 32-byte MAC key makes a block tern accepts, so every other size is refused
  // before any decryption, and the plaintext fits a fixed buffer.
  if (sealed_size < kBlockFixedSize || !isMacKeySize(sealed_size - kBlockFixedSize)) {
    return Unexpected{TokenError::kMalformed};
  }
  const Bytes sealed = r.bytes(sealed_size);
  const Bytes tag = r.bytes(kTokenTagSize);
  // A key of the wrong size would make OpenSSL read past it: the store refuses those, and a
  // caller with a hand-made key gets the same answer as for a wrong key.
  if (key.key.size() != oauthKeySize(key.aead)) return Unexpected{TokenError::kNotAuthentic};

  EVP_CIPHER_CTX* ctx = cipherContext(key.aead, false);
  start(ctx, key, nonce, server_name, false);
  std::array<std::uint8_t, kMaxBlockSize> plain{};
  int written = 0;
  if (EVP_DecryptUpdate(ctx, plain.data(), &written, sealed.data(),
                        static_cast<int>(sealed.size())) != 1) {
    return Unexpected{TokenError::kNotAuthentic};
  }
  // The tag is compared inside OpenSSL in constant time (CRYPTO_memcmp).
  int final_written = 0;
  if (EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, static_cast<int>(kTokenTagSize),
                          const_cast<std::uint8_t*>(tag.data())) != 1 ||
      EVP_DecryptFinal_ex(ctx, plain.data() + written, &final_written) != 1) {
    return Unexpected{TokenError::kNotAuthentic};
  }
  return parseBlock(Bytes{plain.data(), sealed.size()});
}

MintedAccessToken mintAccessToken(const OAuthKey& key, std::string_view server_name,
                                  std::size_t mac_key_size, std::int64_t now_unix,
                                  std::uint32_t lifetime) {
  if (!isMacKeySize(mac_key_size)) {
    throw std::invalid_argument("access token: the MAC key must be 20 or 32 bytes");
  }
  if (lifetime == 0) throw std::invalid_argument("access token: the lifetime must be positive");
  if (now_unix < 0 || now_unix >= (std::int64_t{1} << 48)) {
    throw std::invalid_argument("access token: the time does not fit 48 bits of seconds");
  }
  MintedAccessToken out;
  out.mac_key.resize(mac_key_size);
  randomBytes(out.mac_key);
  out.token =
      encodeAccessToken({out.mac_key, tokenTimestamp(now_unix), lifetime}, key, server_name);
  return out;
}

OAuthKeyStore::OAuthKeyStore(std::vector<OAuthKey> keys) {
  std::string problems;
  for (std::size_t i = 0; i < keys.size(); ++i) {
    const OAuthKey& key = keys[i];
    // Named by position when the kid is empty, and cut short when it is absurdly long.
    // Appends, not operator+ chains: GCC 12 at -O3 raises a false -Wrestrict on those.
    std::string name;
    if (key.kid.empty()) {
      name.append("#").append(std::to_string(i + 1));
    } else {
      name.append("'").append(key.kid.substr(0, 40)).append(key.kid.size() > 40 ? "...'" : "'");
    }
    if (key.kid.empty()) problems.append("\n  OAuth key ").append(name).append(" has an empty kid");
    if (key.kid.size() > kMaxKidSize) {
      problems.append("\n  OAuth kid ").append(name).append(" is longer than ");
      problems.append(std::to_string(kMaxKidSize)).append(" bytes (it travels as USERNAME)");
    }
    if (key.key.size() != oauthKeySize(key.aead)) {
      problems.append("\n  OAuth key ").append(name).append(" is ").append(std::to_string(key.key.size()));
      problems.append(" bytes; ").append(oauthAeadName(key.aead)).append(" needs ");
      problems.append(std::to_string(oauthKeySize(key.aead)));
    }
    if (!key.kid.empty() && !keys_.emplace(key.kid, key).second) {
      problems.append("\n  OAuth kid ").append(name).append(" is given more than once");
    }
  }
  if (!problems.empty()) throw std::invalid_argument("invalid OAuth keys:" + problems);
}

const OAuthKey* OAuthKeyStore::find(std::string_view kid) const noexcept {
  auto it = keys_.find(kid);
  return it == keys_.end() ? nullptr : &it->second;
}

Expected<AccessTokenContents, TokenError> OAuthKeyStore::decode(
    std::string_view kid, Bytes token, std::string_view server_name) const {
  const OAuthKey* key = find(kid);
  if (key == nullptr) return Unexpected{TokenError::kUnknownKid};
  return decodeAccessToken(token, *key, server_name);
}

}  // namespace tern::auth
