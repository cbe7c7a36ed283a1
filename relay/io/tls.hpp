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

#include "relay/wire/address.hpp"
#include "relay/wire/bytes.hpp"

namespace tern::io {

struct SslCtxFree {
  void operator()(SSL_CTX* p) const noexcept { SSL_CTX_free(p); }
};
struct SslFree {
  void operator()(SSL* p) const noexcept { SSL_free(p); }
};
struct BioAddrFree {
  void operator()(BIO_ADDR* p) const noexcept { BIO_ADDR_free(p); }
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

// The DTLS cookie (RFC 6347 §4.2.1): HMAC-SHA256 of the client's address and port and a
// 30-second epoch under a random key, cut to 16 bytes. Nothing is stored per client: a
// cookie verifies in the epoch that made it and the next, so a client has 30 to 60 seconds
// to echo it, and a replayed cookie is worth nothing from any other address.
class DtlsCookieKey {
 public:
  static constexpr std::size_t kCookieSize = 16;
  using Cookie = std::array<std::uint8_t, kCookieSize>;

  DtlsCookieKey();  // a fresh random key; throws if the generator fails

  Cookie make(const wire::SocketAddress& client, std::uint64_t now_seconds) const noexcept;
  bool verify(const wire::SocketAddress& client, wire::Bytes cookie, std::uint64_t now_seconds) const noexcept;

 private:
  static constexpr std::uint64_t kEpochSeconds = 30;
  Cookie forEpoch(const wire::SocketAddress& client, std::uint64_t epoch) const noexcept;
  std::array<std::uint8_t, 32> key_{};
};

// What OpenSSL's DTLS cookie callbacks judge (the SSL's app data): the datagram's sender and
// the time it arrived, under the worker's key.
struct DtlsCookieSubject {
  const DtlsCookieKey* key = nullptr;
  wire::SocketAddress client{};
  std::uint64_t now_seconds = 0;
};

class TlsSession {
 public:
  explicit TlsSession(std::shared_ptr<const TlsContext> context);
  // The SSL keeps a pointer to cookie_subject_: a session stays where it was made.
  TlsSession(const TlsSession&) = delete;
  TlsSession& operator=(const TlsSession&) = delete;

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
  // An orderly close: queues the close_notify alert (RFC 8446 §6.1; DTLS alike, RFC 6347
  // §4.1) for takeCiphertext, once. Nothing after the session failed (OpenSSL forbids it) or
  // before its handshake finished. The peer's close_notify is not awaited. True if queued.
  bool closeNotify() noexcept;
  // DTLS: retransmits a handshake flight whose timer ran out (RFC 6347 §4.2.4).
  void handleTimeout() noexcept { DTLSv1_handle_timeout(ssl_.get()); }
  const std::string& error() const noexcept { return error_; }

  // DTLS, before a client has a session: RFC 6347 §4.2.1 without keeping state
  // (DTLSv1_listen). Judges one datagram from `from`: kAdmitted when it is a ClientHello that
  // echoes a valid cookie (the client proved it receives at `from`; this session now carries
  // on that handshake), kAnswered when it earned a HelloVerifyRequest (in takeCiphertext),
  // kIgnored for anything else. A session that did not admit can listen again.
  enum class ListenResult : std::uint8_t { kIgnored, kAnswered, kAdmitted };
  ListenResult listen(const DtlsCookieKey& key, const wire::SocketAddress& from, wire::Bytes datagram) noexcept;

 private:
  std::shared_ptr<const TlsContext> context_;  // kept alive while the session uses it
  // The SSL's app data. Once a ClientHello is admitted it keeps naming that ClientHello's
  // sender and time: OpenSSL verifies the cookie once more when the handshake takes the
  // ClientHello up, and it must verify then as it did in listen().
  DtlsCookieSubject cookie_subject_;
  std::unique_ptr<SSL, SslFree> ssl_;
  BIO* in_ = nullptr;   // owned by ssl_
  BIO* out_ = nullptr;  // owned by ssl_
  std::unique_ptr<BIO_ADDR, BioAddrFree> listen_peer_;  // listen()'s scratch
  std::string error_;
  bool failed_ = false;  // a fatal TLS error: no close_notify may follow
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
