// libFuzzer target for RFC 7635 §6.2 access tokens (auth/oauth_token.hpp). Random bytes
// almost never pass the GCM tag, so the target has two modes, chosen by the first byte:
//  - bit 0 clear: the rest is an ACCESS-TOKEN value, decoded as it arrives from a client;
//  - bit 0 set:   the next 12 bytes are a nonce and the rest a plaintext block, which the
//    target seals itself, so the fuzzer reaches what tern does with an authentic token whose
//    contents lie (coturn's pre-authentication overflow, CVE-2026-43994, sat on both paths).
// Bit 1 picks the A128GCM key instead of the A256GCM one; bit 2 decodes under another server
// name. Every authentic token must re-encode to exactly the same bytes.
#include <openssl/evp.h>

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "auth/oauth_token.hpp"
#include "fuzz_check.hpp"

namespace {

namespace auth = tern::auth;
using tern::auth::Bytes;

constexpr std::string_view kServer = "blackdow.carleon.gov";
constexpr std::string_view kOtherServer = "blackdow.carleon.gov.";
// The AS-RS key of coturn's rfc5769check OAuth test; the A128GCM key is its first half.
constexpr std::string_view kSecret = "HGkj32KJGiuy098sdfaqbNjOiaz71923";
// Sealed plaintext beyond any valid block is pointless; the bound keeps runs fast.
constexpr std::size_t kMaxPlain = 128;

const auth::OAuthKey& keyFor(bool a128) {
  static const auth::OAuthKey a256{
      "2783466234", {kSecret.begin(), kSecret.end()}, auth::OAuthAead::kA256Gcm};
  static const auth::OAuthKey a128_key{
      "a128", {kSecret.begin(), kSecret.begin() + 16}, auth::OAuthAead::kA128Gcm};
  return a128 ? a128_key : a256;
}

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* p) const noexcept { EVP_CIPHER_CTX_free(p); }
};

// token = 000c || nonce || AES-GCM(plain, aad = kServer) || tag, sealed without the code
// under test so that the two cannot share a mistake.
std::vector<std::uint8_t> seal(const auth::OAuthKey& key, Bytes nonce, Bytes plain) {
  std::vector<std::uint8_t> token{0x00, 0x0c};
  token.insert(token.end(), nonce.begin(), nonce.end());
  token.resize(token.size() + plain.size() + auth::kTokenTagSize);
  std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter> ctx{EVP_CIPHER_CTX_new()};
  const EVP_CIPHER* cipher =
      key.aead == auth::OAuthAead::kA128Gcm ? EVP_aes_128_gcm() : EVP_aes_256_gcm();
  int n = 0;
  TERN_FUZZ_CHECK(
      ctx && EVP_EncryptInit_ex(ctx.get(), cipher, nullptr, key.key.data(), nonce.data()) == 1);
  TERN_FUZZ_CHECK(EVP_EncryptUpdate(ctx.get(), nullptr, &n,
                                    reinterpret_cast<const std::uint8_t*>(kServer.data()),
                                    static_cast<int>(kServer.size())) == 1);
  std::uint8_t* out = token.data() + 2 + auth::kTokenNonceSize;
  int total = 0;
  if (!plain.empty()) {
    TERN_FUZZ_CHECK(EVP_EncryptUpdate(ctx.get(), out, &total, plain.data(),
                                      static_cast<int>(plain.size())) == 1);
  }
  TERN_FUZZ_CHECK(EVP_EncryptFinal_ex(ctx.get(), out + total, &n) == 1);
  TERN_FUZZ_CHECK(EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG,
                                      static_cast<int>(auth::kTokenTagSize),
                                      out + plain.size()) == 1);
  return token;
}

bool validLayout(Bytes token) {
  return (token.size() == 64 || token.size() == 76) && token[0] == 0 &&
         token[1] == auth::kTokenNonceSize;
}

// An authentic token decodes to contents of the right shape, and sealing them again with
// its nonce gives back the very same bytes.
void checkDecoded(Bytes token, const auth::AccessTokenContents& contents,
                  const auth::OAuthKey& key) {
  TERN_FUZZ_CHECK(validLayout(token));
  TERN_FUZZ_CHECK(contents.mac_key.size() == auth::kMacKeySha1Size ||
                  contents.mac_key.size() == auth::kMacKeySha256Size);
  TERN_FUZZ_CHECK(token.size() == 44 + contents.mac_key.size());
  const auto nonce = token.subspan<2, auth::kTokenNonceSize>();
  const auto again = auth::encodeAccessToken(contents, key, kServer, nonce);
  TERN_FUZZ_CHECK(std::equal(again.begin(), again.end(), token.begin(), token.end()));
}

void fuzzToken(Bytes token, const auth::OAuthKey& key, bool other_server) {
  tern::fuzz::touch(token);
  auto decoded = auth::decodeAccessToken(token, key, other_server ? kOtherServer : kServer);
  if (!decoded) {
    // Framing is judged before decryption, and only framing errors come from bad framing.
    TERN_FUZZ_CHECK(validLayout(token) == (decoded.error() != auth::TokenError::kMalformed));
    TERN_FUZZ_CHECK(decoded.error() != auth::TokenError::kUnknownKid);
    return;
  }
  TERN_FUZZ_CHECK(!other_server);
  checkDecoded(token, *decoded, key);
  // The store gives the same answer through the kid, and no answer for another kid.
  static const auth::OAuthKeyStore store({keyFor(false), keyFor(true)});
  TERN_FUZZ_CHECK(store.decode(key.kid, token, kServer).has_value());
  TERN_FUZZ_CHECK(!store.decode("nobody", token, kServer).has_value());
}

void fuzzSealed(Bytes nonce, Bytes plain, const auth::OAuthKey& key, bool other_server) {
  const auto token = seal(key, nonce, plain);
  auto decoded = auth::decodeAccessToken(token, key, other_server ? kOtherServer : kServer);
  const bool block_size_ok = plain.size() == 34 || plain.size() == 46;
  if (!block_size_ok) {
    TERN_FUZZ_CHECK(!decoded && decoded.error() == auth::TokenError::kMalformed);
    return;
  }
  if (other_server) {
    TERN_FUZZ_CHECK(!decoded && decoded.error() == auth::TokenError::kNotAuthentic);
    return;
  }
  // Authentic: it decodes exactly when the sealed key_length matches the block's size.
  const std::size_t key_length = static_cast<std::size_t>((plain[0] << 8) | plain[1]);
  const bool consistent = key_length + 14 == plain.size();
  TERN_FUZZ_CHECK(decoded.has_value() == consistent);
  if (!decoded) {
    TERN_FUZZ_CHECK(decoded.error() == auth::TokenError::kBadContents);
    return;
  }
  TERN_FUZZ_CHECK(std::equal(decoded->mac_key.begin(), decoded->mac_key.end(), plain.begin() + 2,
                             plain.begin() + 2 + static_cast<std::ptrdiff_t>(key_length)));
  checkDecoded(token, *decoded, key);
  // Validity must be total: no timestamp or lifetime makes it misbehave.
  (void)auth::tokenValidAt(*decoded, 1700000000);
  (void)auth::tokenValidAt(*decoded, auth::tokenExpiry(*decoded));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 1) return 0;
  const std::uint8_t flags = data[0];
  const Bytes rest{data + 1, size - 1};
  const auth::OAuthKey& key = keyFor((flags & 0x02) != 0);
  const bool other_server = (flags & 0x04) != 0;
  if ((flags & 0x01) == 0) {
    fuzzToken(rest, key, other_server);
  } else if (rest.size() >= auth::kTokenNonceSize &&
             rest.size() - auth::kTokenNonceSize <= kMaxPlain) {
    fuzzSealed(rest.first(auth::kTokenNonceSize), rest.subspan(auth::kTokenNonceSize), key,
               other_server);
  }
  return 0;
}
