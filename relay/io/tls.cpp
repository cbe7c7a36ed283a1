// See tls.hpp.
#include "relay/io/tls.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include <chrono>
#include <cstring>
#include <stdexcept>

#include "auth/crypto.hpp"

namespace tern::io {

namespace {

std::string opensslError(const char* what) {
  std::string out = what;
  if (const unsigned long e = ERR_get_error(); e != 0) {
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    out += ": ";
    out += buf;
  }
  ERR_clear_error();
  return out;
}

// RFC 6347 §4.2.1: a DTLS server answers a ClientHello without the right cookie with a
// HelloVerifyRequest (about 60 bytes) instead of its whole first flight (certificate chain
// included: six times the ClientHello, and retransmitted), so a ClientHello from a spoofed
// address cannot make tern send a victim kilobytes, nor cost it a session: DTLSv1_listen
// answers without state and OpenSSL asks these callbacks about the datagram being judged.
int generateCookie(SSL* ssl, unsigned char* cookie, unsigned int* length) {
  const auto* subject = static_cast<const DtlsCookieSubject*>(SSL_get_app_data(ssl));
  if (subject == nullptr || subject->key == nullptr) return 0;
  const DtlsCookieKey::Cookie made = subject->key->make(subject->client, subject->now_seconds);
  std::memcpy(cookie, made.data(), made.size());
  *length = static_cast<unsigned int>(made.size());
  return 1;
}

int verifyCookie(SSL* ssl, const unsigned char* cookie, unsigned int length) {
  const auto* subject = static_cast<const DtlsCookieSubject*>(SSL_get_app_data(ssl));
  return subject != nullptr && subject->key != nullptr && subject->key->verify(subject->client, {cookie, length}, subject->now_seconds) ? 1 : 0;
}

std::uint64_t steadySeconds() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

}  // namespace

std::shared_ptr<const TlsContext> TlsContext::load(const std::string& chain_file, const std::string& key_file,
                                                   Kind kind) {
  auto context = std::shared_ptr<TlsContext>(new TlsContext());
  context->ctx_.reset(SSL_CTX_new(kind == Kind::kDtls ? DTLS_server_method() : TLS_server_method()));
  SSL_CTX* ctx = context->ctx_.get();
  if (ctx == nullptr) throw std::runtime_error(opensslError("SSL_CTX_new"));
  // TLS 1.2 and 1.3, DTLS 1.2 only; older versions have known weaknesses and no TURN client
  // needs them.
  if (SSL_CTX_set_min_proto_version(ctx, kind == Kind::kDtls ? DTLS1_2_VERSION : TLS1_2_VERSION) != 1) {
    throw std::runtime_error(opensslError("SSL_CTX_set_min_proto_version"));
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  // Partial writes and a moving buffer would break the memory-BIO write path.
  SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(ctx, chain_file.c_str()) != 1) {
    throw std::runtime_error(opensslError(("certificate chain '" + chain_file + "'").c_str()));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key_file.c_str(), SSL_FILETYPE_PEM) != 1) {
    throw std::runtime_error(opensslError(("private key '" + key_file + "'").c_str()));
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    throw std::runtime_error(opensslError("the private key does not match the certificate"));
  }
  if (kind == Kind::kDtls) {
    SSL_CTX_set_cookie_generate_cb(ctx, generateCookie);
    SSL_CTX_set_cookie_verify_cb(ctx, verifyCookie);
    SSL_CTX_set_options(ctx, SSL_OP_COOKIE_EXCHANGE);
  }
  return context;
}

TlsSession::TlsSession(std::shared_ptr<const TlsContext> context) : context_(std::move(context)) {
  ssl_.reset(SSL_new(context_->get()));
  if (!ssl_) throw std::runtime_error(opensslError("SSL_new"));
  in_ = BIO_new(BIO_s_mem());
  out_ = BIO_new(BIO_s_mem());
  if (in_ == nullptr || out_ == nullptr) {
    BIO_free(in_);
    BIO_free(out_);
    throw std::runtime_error("BIO_new failed");
  }
  // A memory BIO that runs dry must say "retry", not "end of file".
  BIO_set_mem_eof_return(in_, -1);
  BIO_set_mem_eof_return(out_, -1);
  SSL_set_bio(ssl_.get(), in_, out_);  // ssl_ owns both BIOs from here
  SSL_set_accept_state(ssl_.get());
  if (SSL_is_dtls(ssl_.get()) == 1) {
    SSL_set_app_data(ssl_.get(), &cookie_subject_);  // TlsSession is neither copied nor moved
    // A memory BIO knows no path MTU: keep records within a conservative datagram size.
    SSL_set_options(ssl_.get(), SSL_OP_NO_QUERY_MTU);
    SSL_set_mtu(ssl_.get(), 1200);
    DTLS_set_link_mtu(ssl_.get(), 1200);
  }
}

DtlsCookieKey::DtlsCookieKey() {
  if (RAND_bytes(key_.data(), static_cast<int>(key_.size())) != 1) throw std::runtime_error(opensslError("RAND_bytes"));
}

DtlsCookieKey::Cookie DtlsCookieKey::forEpoch(const wire::SocketAddress& client, std::uint64_t epoch) const noexcept {
  std::array<std::uint8_t, 10> tail{};  // port, then the epoch, big-endian
  wire::storeU16(tail.data(), client.port);
  wire::storeU32(tail.data() + 2, static_cast<std::uint32_t>(epoch >> 32));
  wire::storeU32(tail.data() + 6, static_cast<std::uint32_t>(epoch));
  const std::uint8_t family = client.ip.isV4() ? 4 : 6;
  const auth::Sha256Digest mac =
      auth::hmacSha256(key_, {{&family, 1}, {client.ip.data(), client.ip.size()}, tail});
  Cookie cookie{};
  std::memcpy(cookie.data(), mac.data(), cookie.size());
  return cookie;
}

DtlsCookieKey::Cookie DtlsCookieKey::make(const wire::SocketAddress& client, std::uint64_t now_seconds) const noexcept {
  return forEpoch(client, now_seconds / kEpochSeconds);
}

bool DtlsCookieKey::verify(const wire::SocketAddress& client, wire::Bytes cookie,
                           std::uint64_t now_seconds) const noexcept {
  const std::uint64_t epoch = now_seconds / kEpochSeconds;
  for (const std::uint64_t e : {epoch, epoch - 1}) {
    if (auth::constantTimeEqual(forEpoch(client, e), cookie)) return true;
  }
  return false;
}

TlsSession::ListenResult TlsSession::listen(const DtlsCookieKey& key, const wire::SocketAddress& from,
                                            wire::Bytes datagram) noexcept {
  // Whatever an earlier datagram left unread must not run into this one.
  (void)BIO_reset(in_);
  (void)BIO_reset(out_);
  feed(datagram);
  cookie_subject_ = DtlsCookieSubject{&key, from, steadySeconds()};
  // DTLSv1_listen wants somewhere to put the peer's address, which a memory BIO does not
  // know (the caller does): one, kept for every judgement.
  if (!listen_peer_) listen_peer_.reset(BIO_ADDR_new());
  const int verdict = listen_peer_ ? DTLSv1_listen(ssl_.get(), listen_peer_.get()) : -1;
  ERR_clear_error();
  if (verdict > 0) return ListenResult::kAdmitted;
  (void)BIO_reset(in_);
  return BIO_ctrl_pending(out_) > 0 ? ListenResult::kAnswered : ListenResult::kIgnored;
}

void TlsSession::feed(wire::Bytes ciphertext) noexcept {
  if (!ciphertext.empty()) BIO_write(in_, ciphertext.data(), static_cast<int>(ciphertext.size()));
}

long TlsSession::readPlaintext(wire::MutableBytes out) noexcept {
  if (out.empty()) return 0;
  const int n = SSL_read(ssl_.get(), out.data(), static_cast<int>(std::min<std::size_t>(out.size(), 1 << 30)));
  if (n > 0) return n;
  switch (SSL_get_error(ssl_.get(), n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE: return 0;  // handshake records are waiting in out_
    case SSL_ERROR_ZERO_RETURN: error_ = "closed by client (TLS close_notify)"; return -1;
    default:
      failed_ = true;
      error_ = opensslError("TLS");
      return -1;
  }
}

bool TlsSession::writePlaintext(wire::Bytes plaintext) noexcept {
  std::size_t done = 0;
  while (done < plaintext.size()) {
    const int n = SSL_write(ssl_.get(), plaintext.data() + done, static_cast<int>(plaintext.size() - done));
    if (n <= 0) {
      failed_ = true;
      error_ = opensslError("TLS write");
      return false;
    }
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool TlsSession::closeNotify() noexcept {
  if (failed_ || !handshakeDone() || (SSL_get_shutdown(ssl_.get()) & SSL_SENT_SHUTDOWN) != 0) {
    return false;
  }
  // 0: sent, the peer's not yet received (and not waited for); 1: both; below 0: failed.
  const int rc = SSL_shutdown(ssl_.get());
  ERR_clear_error();
  return rc >= 0 && BIO_ctrl_pending(out_) > 0;
}

void TlsSession::takeCiphertext(std::vector<std::uint8_t>& out) {
  out.clear();
  const auto pending = BIO_ctrl_pending(out_);
  if (pending == 0) return;
  out.resize(pending);
  const int n = BIO_read(out_, out.data(), static_cast<int>(pending));
  out.resize(n > 0 ? static_cast<std::size_t>(n) : 0);
}

}  // namespace tern::io
