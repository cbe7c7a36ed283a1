// OpenSSL-backed hashing and MACs; see crypto.hpp.
#include "auth/crypto.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <memory>
#include <stdexcept>

namespace tern::auth {

namespace {

struct MacDeleter {
  void operator()(EVP_MAC* p) const noexcept { EVP_MAC_free(p); }
};
struct MacCtxDeleter {
  void operator()(EVP_MAC_CTX* p) const noexcept { EVP_MAC_CTX_free(p); }
};
struct MdCtxDeleter {
  void operator()(EVP_MD_CTX* p) const noexcept { EVP_MD_CTX_free(p); }
};

[[noreturn]] void fail(const char* what) { throw std::runtime_error(what); }

// Fetching an algorithm is costly in OpenSSL 3; do it once per process.
EVP_MAC* hmacAlgorithm() {
  static const std::unique_ptr<EVP_MAC, MacDeleter> mac{EVP_MAC_fetch(nullptr, "HMAC", nullptr)};
  if (!mac) fail("OpenSSL: HMAC is not available");
  return mac.get();
}

template <std::size_t N>
std::array<std::uint8_t, N> hmac(const char* digest, Bytes key, std::initializer_list<Bytes> parts) {
  std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> ctx{EVP_MAC_CTX_new(hmacAlgorithm())};
  if (!ctx) fail("OpenSSL: EVP_MAC_CTX_new failed");
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string("digest", const_cast<char*>(digest), 0),
      OSSL_PARAM_construct_end(),
  };
  // A zero-length key is legal for HMAC but OpenSSL wants a non-null pointer.
  static const std::uint8_t kEmpty = 0;
  if (EVP_MAC_init(ctx.get(), key.empty() ? &kEmpty : key.data(), key.size(), params) != 1) {
    fail("OpenSSL: EVP_MAC_init failed");
  }
  for (Bytes part : parts) {
    if (!part.empty() && EVP_MAC_update(ctx.get(), part.data(), part.size()) != 1) {
      fail("OpenSSL: EVP_MAC_update failed");
    }
  }
  std::array<std::uint8_t, N> out{};
  std::size_t len = 0;
  if (EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) != 1 || len != N) {
    fail("OpenSSL: EVP_MAC_final failed");
  }
  return out;
}

template <std::size_t N>
std::array<std::uint8_t, N> digest(const EVP_MD* md, std::initializer_list<Bytes> parts) {
  std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx{EVP_MD_CTX_new()};
  if (!ctx || EVP_DigestInit_ex(ctx.get(), md, nullptr) != 1) fail("OpenSSL: digest init failed");
  for (Bytes part : parts) {
    if (!part.empty() && EVP_DigestUpdate(ctx.get(), part.data(), part.size()) != 1) {
      fail("OpenSSL: digest update failed");
    }
  }
  std::array<std::uint8_t, N> out{};
  unsigned len = 0;
  if (EVP_DigestFinal_ex(ctx.get(), out.data(), &len) != 1 || len != N) {
    fail("OpenSSL: digest final failed");
  }
  return out;
}

}  // namespace

Sha1Digest hmacSha1(Bytes key, std::initializer_list<Bytes> parts) { return hmac<20>("SHA1", key, parts); }
Sha256Digest hmacSha256(Bytes key, std::initializer_list<Bytes> parts) {
  return hmac<32>("SHA256", key, parts);
}
Md5Digest md5(std::initializer_list<Bytes> parts) { return digest<16>(EVP_md5(), parts); }
Sha256Digest sha256(std::initializer_list<Bytes> parts) { return digest<32>(EVP_sha256(), parts); }

bool constantTimeEqual(Bytes a, Bytes b) noexcept {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void randomBytes(std::span<std::uint8_t> out) {
  if (out.empty()) return;
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) fail("OpenSSL: RAND_bytes failed");
}

}  // namespace tern::auth
