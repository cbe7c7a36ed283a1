// The stateless DTLS cookie exchange (RFC 6347 §4.2.1) of relay/io/tls against OpenSSL's own
// DTLS client: a listening session answers a ClientHello without the cookie with a
// HelloVerifyRequest and admits the one that echoes it, keeping nothing in between, and the
// admitted session finishes the handshake.
#include <doctest/doctest.h>
#include <openssl/ssl.h>

#include <memory>
#include <vector>

#include "relay/io/tls.hpp"
#include "support/test_certificates.hpp"

using namespace tern;
using io::DtlsCookieKey;
using io::TlsSession;

namespace {

wire::SocketAddress at(const char* text) { return *wire::SocketAddress::parse(text); }

// OpenSSL's DTLS client over memory BIOs: what a real client sends and reads.
class DtlsClient {
 public:
  DtlsClient() : ctx_(SSL_CTX_new(DTLS_client_method())) {
    REQUIRE(ctx_);
    ssl_.reset(SSL_new(ctx_.get()));
    in_ = BIO_new(BIO_s_mem());
    out_ = BIO_new(BIO_s_mem());
    BIO_set_mem_eof_return(in_, -1);
    BIO_set_mem_eof_return(out_, -1);
    SSL_set_bio(ssl_.get(), in_, out_);
    SSL_set_connect_state(ssl_.get());
  }
  // Takes what the server sent (if anything), moves the handshake on and returns what the
  // client sends next.
  std::vector<std::uint8_t> step(const std::vector<std::uint8_t>& from_server = {}) {
    if (!from_server.empty())
      BIO_write(in_, from_server.data(), static_cast<int>(from_server.size()));
    (void)SSL_do_handshake(ssl_.get());
    std::vector<std::uint8_t> out(static_cast<std::size_t>(BIO_ctrl_pending(out_)));
    if (!out.empty()) BIO_read(out_, out.data(), static_cast<int>(out.size()));
    return out;
  }
  bool done() const { return SSL_is_init_finished(ssl_.get()) == 1; }

 private:
  std::unique_ptr<SSL_CTX, io::SslCtxFree> ctx_;
  std::unique_ptr<SSL, io::SslFree> ssl_;
  BIO* in_ = nullptr;
  BIO* out_ = nullptr;
};

std::shared_ptr<const io::TlsContext> dtlsContext() {
  const auto& certs = test::testCertificates();
  return io::TlsContext::load(certs.chain, certs.key, io::TlsContext::Kind::kDtls);
}

}  // namespace

TEST_CASE(
    "a listening DTLS session answers a ClientHello with a HelloVerifyRequest and admits the one "
    "that echoes it") {
  const DtlsCookieKey key;
  const auto client_address = at("203.0.113.5:40000");
  TlsSession listener(dtlsContext());
  DtlsClient client;

  const auto hello = client.step();
  REQUIRE(listener.listen(key, client_address, hello) == TlsSession::ListenResult::kAnswered);
  std::vector<std::uint8_t> verify_request;
  listener.takeCiphertext(verify_request);
  CHECK(verify_request.size() < hello.size());  // no amplification (RFC 6347 §4.2.1)

  // Judging the next datagram keeps nothing of the last: a spoofer's ClientHellos cost
  // nothing after their answer, and garbage is ignored.
  CHECK(listener.listen(key, at("198.51.100.9:5000"), hello) ==
        TlsSession::ListenResult::kAnswered);
  std::vector<std::uint8_t> discard;
  listener.takeCiphertext(discard);
  CHECK(listener.listen(key, client_address, std::vector<std::uint8_t>{0x16, 0xfe, 0xfd, 0x00}) ==
        TlsSession::ListenResult::kIgnored);

  const auto hello_with_cookie = client.step(verify_request);
  REQUIRE_FALSE(hello_with_cookie.empty());
  // The cookie is bound to the address: the same ClientHello from elsewhere is not admitted.
  CHECK(listener.listen(key, at("203.0.113.5:40001"), hello_with_cookie) ==
        TlsSession::ListenResult::kAnswered);
  listener.takeCiphertext(discard);
  REQUIRE(listener.listen(key, client_address, hello_with_cookie) ==
          TlsSession::ListenResult::kAdmitted);

  // The admitted session carries the handshake on to the end.
  std::vector<std::uint8_t> plaintext(2048);
  std::vector<std::uint8_t> to_client, to_server;
  for (int round = 0; round < 10 && !(client.done() && listener.handshakeDone()); ++round) {
    if (!to_server.empty()) listener.feed(to_server);
    INFO(listener.error());
    CHECK(listener.readPlaintext(plaintext) == 0);
    listener.takeCiphertext(to_client);
    to_server = client.step(to_client);
  }
  CHECK(listener.handshakeDone());
  CHECK(client.done());
}
