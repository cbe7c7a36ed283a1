// TLS for TURN over TLS (RFC 8656 §3.1): OpenSSL over memory BIOs, so the connection's
// libuv stream stays the only I/O. The context holds the certificate chain and key (TLS 1.2
// and 1.3 only); a session is one connection's TLS state. Every OpenSSL object has one RAII
// owner.
#pragma once

#include <openssl/ssl.h>

#include <array>
#include <memory>
#include <string>
#include <vector>

#include "relay/wire/bytes.hpp"

namespace tern::io {

struct SslCtxFree {
  void operator()(SSL_CTX* p) const noexcept { SSL_CTX_free(p); }
};
struct SslFree {
  void operator()(SSL* p) const noexcept { SSL_free(p); }
};

class TlsContext {
 public:
  enum class Kind : std::uint8_t { kTls, kDtls };  // TLS 1.2+ over TCP, DTLS 1.2+ over UDP
  // Loads a PEM certificate chain and private key; throws std::runtime_error saying what is
  // wrong (unreadable file, no certificate, key that does not match).
  static std::shared_ptr<const TlsContext> load(const std::string& chain_file, const std::string& key_file,
                                                Kind kind = Kind::kTls);
  SSL_CTX* get() const noexcept { return ctx_.get(); }

 private:
  std::unique_ptr<SSL_CTX, SslCtxFree> ctx_;
};

class TlsSession {
 public:
  explicit TlsSession(std::shared_ptr<const TlsContext> context);

  // Ciphertext from the socket.
  void feed(wire::Bytes ciphertext) noexcept;
  // Decrypts into `out`: bytes written, 0 when more ciphertext is needed, -1 when the
  // session failed or the peer closed it (then error() says why).
  long readPlaintext(wire::MutableBytes out) noexcept;
  // Encrypts `plaintext` (after the handshake); false on failure.
  bool writePlaintext(wire::Bytes plaintext) noexcept;
  // Ciphertext to send (handshake records, encrypted data); empties the outgoing buffer.
  void takeCiphertext(std::vector<std::uint8_t>& out);
  bool handshakeDone() const noexcept { return SSL_is_init_finished(ssl_.get()) == 1; }
  // DTLS: retransmits a handshake flight whose timer ran out (RFC 6347 §4.2.4).
  void handleTimeout() noexcept { DTLSv1_handle_timeout(ssl_.get()); }
  const std::string& error() const noexcept { return error_; }

  // DTLS: the cookie this session's HelloVerifyRequest carries (RFC 6347 §4.2.1). A session
  // serves one client address, so a random value per session binds it to that address.
  static constexpr std::size_t kCookieSize = 16;
  const std::array<std::uint8_t, kCookieSize>& cookie() const noexcept { return cookie_; }

 private:
  std::shared_ptr<const TlsContext> context_;  // kept alive while the session uses it
  std::array<std::uint8_t, kCookieSize> cookie_{};
  std::unique_ptr<SSL, SslFree> ssl_;
  BIO* in_ = nullptr;   // owned by ssl_
  BIO* out_ = nullptr;  // owned by ssl_
  std::string error_;
};

// True if `first` is the first byte of a TLS record carrying a handshake (ClientHello), so a
// TCP port can serve plain TURN and TLS alike (RFC 8656 §3.1: STUN starts with 0x00-0x03).
constexpr bool looksLikeTls(std::uint8_t first) noexcept { return first == 0x16; }

// Splits DTLS output into its records (13-byte header with a 16-bit length, RFC 6347 §4.1),
// so each goes out in its own datagram and a flight never exceeds a datagram's size.
template <class F>
void forEachDtlsRecord(wire::Bytes ciphertext, F&& f) {
  std::size_t pos = 0;
  while (ciphertext.size() - pos >= 13) {
    const std::size_t length = (std::size_t{ciphertext[pos + 11]} << 8) | ciphertext[pos + 12];
    const std::size_t size = std::min(13 + length, ciphertext.size() - pos);
    f(ciphertext.subspan(pos, size));
    pos += size;
  }
}

}  // namespace tern::io
