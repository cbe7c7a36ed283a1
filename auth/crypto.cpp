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

// OpenSSL 3 looks an algorithm up by name (under a lock, with string compares) every time a
// context is set up from a name, and allocates the context: together the larger part of an
// authenticated Allocate's cost. Algorithms are fetched once per process; each thread keeps
// one context per algorithm and re-keys it per call (EVP_MAC_init with no parameters keeps
// the digest; EVP_DigestInit_ex with the same EVP_MD only resets).
EVP_MAC* hmacAlgorithm() {
  static const std::unique_ptr<EVP_MAC, MacDeleter> mac{EVP_MAC_fetch(nullptr, "HMAC", nullptr)};
  if (!mac) fail("OpenSSL: HMAC is not available");
  return mac.get();
}

struct MdDeleter {
  void operator()(EVP_MD* p) const noexcept { EVP_MD_free(p); }
};

EVP_MD* fetchedDigest(const char* name) {
  EVP_MD* md = EVP_MD_fetch(nullptr, name, nullptr);
  if (md == nullptr) fail("OpenSSL: a digest is not available");
  return md;
}

// A thread's HMAC context bound to one digest.
EVP_MAC_CTX* hmacContext(const char* digest, std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter>& slot) {
  if (slot) return slot.get();
  std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> ctx{EVP_MAC_CTX_new(hmacAlgorithm())};
  if (!ctx) fail("OpenSSL: EVP_MAC_CTX_new failed");
  OSSL_PARAM params[] = {
      OSSL_PARAM_construct_utf8_string("digest", const_cast<char*>(digest), 0),
      OSSL_PARAM_construct_end(),
  };
  if (EVP_MAC_CTX_set_params(ctx.get(), params) != 1) fail("OpenSSL: HMAC digest not accepted");
  slot = std::move(ctx);
  return slot.get();
}

template <std::size_t N>
std::array<std::uint8_t, N> hmac(EVP_MAC_CTX* ctx, Bytes key, std::initializer_list<Bytes> parts) {
  // A zero-length key is legal for HMAC but OpenSSL wants a non-null pointer.
  static const std::uint8_t kEmpty = 0;
  if (EVP_MAC_init(ctx, key.empty() ? &kEmpty : key.data(), key.size(), nullptr) != 1) {
    fail("OpenSSL: EVP_MAC_init failed");
  }
  for (Bytes part : parts) {
    if (!part.empty() && EVP_MAC_update(ctx, part.data(), part.size()) != 1) {
      fail("OpenSSL: EVP_MAC_update failed");
    }
  }
  std::array<std::uint8_t, N> out{};
  std::size_t len = 0;
  if (EVP_MAC_final(ctx, out.data(), &len, out.size()) != 1 || len != N) {
    fail("OpenSSL: EVP_MAC_final failed");
  }
  return out;
}

EVP_MD_CTX* digestContext() {
  thread_local const std::unique_ptr<EVP_MD_CTX, MdCtxDeleter> ctx{EVP_MD_CTX_new()};
  if (!ctx) fail("OpenSSL: EVP_MD_CTX_new failed");
  return ctx.get();
}

template <std::size_t N>
std::array<std::uint8_t, N> digest(const EVP_MD* md, std::initializer_list<Bytes> parts) {
  EVP_MD_CTX* ctx = digestContext();
  if (EVP_DigestInit_ex(ctx, md, nullptr) != 1) fail("OpenSSL: digest init failed");
  for (Bytes part : parts) {
    if (!part.empty() && EVP_DigestUpdate(ctx, part.data(), part.size()) != 1) {
      fail("OpenSSL: digest update failed");
    }
  }
  std::array<std::uint8_t, N> out{};
  unsigned len = 0;
  if (EVP_DigestFinal_ex(ctx, out.data(), &len) != 1 || len != N) {
    fail("OpenSSL: digest final failed");
  }
  return out;
}

}  // namespace

Sha1Digest hmacSha1(Bytes key, std::initializer_list<Bytes> parts) {
  thread_local std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> ctx;
  return hmac<20>(hmacContext("SHA1", ctx), key, parts);
}
Sha256Digest hmacSha256(Bytes key, std::initializer_list<Bytes> parts) {
  thread_local std::unique_ptr<EVP_MAC_CTX, MacCtxDeleter> ctx;
  return hmac<32>(hmacContext("SHA256", ctx), key, parts);
}
Md5Digest md5(std::initializer_list<Bytes> parts) {
  static const std::unique_ptr<EVP_MD, MdDeleter> md{fetchedDigest("MD5")};
  return digest<16>(md.get(), parts);
}
Sha256Digest sha256(std::initializer_list<Bytes> parts) {
  static const std::unique_ptr<EVP_MD, MdDeleter> md{fetchedDigest("SHA256")};
  return digest<32>(md.get(), parts);
}

bool constantTimeEqual(Bytes a, Bytes b) noexcept {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

void randomBytes(std::span<std::uint8_t> out) {
  if (out.empty()) return;
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) fail("OpenSSL: RAND_bytes failed");
}

}  // namespace tern::auth
