// See secure_client.hpp.
#include "support/secure_client.hpp"

#include <openssl/err.h>
#include <sys/socket.h>

#include <algorithm>
#include <stdexcept>
#include <vector>

#include "support/stun_socket.hpp"

namespace tern::test {

SecureClient::SecureClient(const wire::SocketAddress& server, bool dtls,
                           const wire::SocketAddress& local, std::chrono::seconds timeout)
    : ctx_(SSL_CTX_new(dtls ? DTLS_client_method() : TLS_client_method())),
      fd_(connectedSocket(!dtls, local, server)) {
  if (!ctx_) throw std::runtime_error("SSL_CTX_new failed");
  timeval wait{static_cast<time_t>(timeout.count()), 0};
  if (::setsockopt(fd_.get(), SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof wait) != 0) {
    throw std::runtime_error("SO_RCVTIMEO failed");
  }
  ssl_.reset(SSL_new(ctx_.get()));
  BIO* bio = dtls ? BIO_new_dgram(fd_.get(), BIO_NOCLOSE) : BIO_new_socket(fd_.get(), BIO_NOCLOSE);
  if (!ssl_ || bio == nullptr) throw std::runtime_error("SSL_new or BIO_new failed");
  if (dtls) {
    sockaddr_storage to{};
    io::toSockaddr(server, to);
    (void)BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_CONNECTED, 0, &to);
    (void)BIO_ctrl(bio, BIO_CTRL_DGRAM_SET_RECV_TIMEOUT, 0, &wait);
  }
  SSL_set_bio(ssl_.get(), bio, bio);
  SSL_set_connect_state(ssl_.get());
}

bool SecureClient::handshake() {
  const bool ok = SSL_do_handshake(ssl_.get()) == 1;
  ERR_clear_error();
  return ok;
}

int SecureClient::readError() {
  char byte = 0;
  ERR_clear_error();
  const int n = SSL_read(ssl_.get(), &byte, 1);
  const int error = n > 0 ? SSL_ERROR_NONE : SSL_get_error(ssl_.get(), n);
  ERR_clear_error();
  return error;
}

namespace {

// OpenSSL's DTLS client over memory BIOs: a real ClientHello, then its echo of a cookie.
class HelloWriter {
 public:
  explicit HelloWriter(SSL_CTX* ctx) : ssl_(SSL_new(ctx)) {
    BIO* in = BIO_new(BIO_s_mem());
    BIO* out = BIO_new(BIO_s_mem());
    if (!ssl_ || in == nullptr || out == nullptr) {
      BIO_free(in);
      BIO_free(out);
      throw std::runtime_error("SSL_new or BIO_new failed");
    }
    BIO_set_mem_eof_return(in, -1);
    BIO_set_mem_eof_return(out, -1);
    SSL_set_bio(ssl_.get(), in, out);
    SSL_set_connect_state(ssl_.get());
    in_ = in;
    out_ = out;
  }
  // Takes what the server sent (if anything) and returns what the client sends next.
  std::vector<std::uint8_t> step(const std::vector<std::uint8_t>& from_server = {}) {
    if (!from_server.empty())
      (void)BIO_write(in_, from_server.data(), static_cast<int>(from_server.size()));
    (void)SSL_do_handshake(ssl_.get());
    ERR_clear_error();
    std::vector<std::uint8_t> bytes(static_cast<std::size_t>(BIO_ctrl_pending(out_)));
    if (!bytes.empty()) (void)BIO_read(out_, bytes.data(), static_cast<int>(bytes.size()));
    return bytes;
  }

 private:
  std::unique_ptr<SSL, io::SslFree> ssl_;
  BIO* in_ = nullptr;   // owned by ssl_
  BIO* out_ = nullptr;  // owned by ssl_
};

}  // namespace

SilentDtlsHandshakes::SilentDtlsHandshakes(const wire::SocketAddress& server, const char* host,
                                           std::size_t count, std::chrono::milliseconds timeout) {
  std::unique_ptr<SSL_CTX, io::SslCtxFree> ctx(SSL_CTX_new(DTLS_client_method()));
  if (!ctx) throw std::runtime_error("SSL_CTX_new failed");
  // A hundred ClientHellos leave before their answers are read: the round trips overlap, and
  // the relay's receive buffer holds them.
  constexpr std::size_t kChunk = 100;
  echoes_.resize(count);
  for (std::size_t first = 0; first < count; first += kChunk) {
    const std::size_t end = std::min(count, first + kChunk);
    std::vector<std::unique_ptr<HelloWriter>> writers;
    for (std::size_t i = first; i < end; ++i) {
      sockets_.push_back(connectedSocket(false, socketAddress(host, 0), server));
      writers.push_back(std::make_unique<HelloWriter>(ctx.get()));
      sendRaw(sockets_.back().get(), writers.back()->step());
    }
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    for (std::size_t i = first; i < end; ++i) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          give_up - std::chrono::steady_clock::now());
      const auto verify_request =
          receiveDatagram(sockets_[i].get(), std::max(left, std::chrono::milliseconds(1)));
      if (verify_request.empty()) continue;
      echoes_[i] = writers[i - first]->step(verify_request);
      sendRaw(sockets_[i].get(), echoes_[i]);  // then nothing more
      ++echoed_;
    }
  }
}

void SilentDtlsHandshakes::repeat() const {
  for (std::size_t i = 0; i < echoes_.size(); ++i) {
    if (!echoes_[i].empty()) sendRaw(sockets_[i].get(), echoes_[i]);
  }
}

}  // namespace tern::test
