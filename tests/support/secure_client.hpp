// OpenSSL clients for tests that need TLS or DTLS below TURN: a blocking client over a real
// socket (TCP for TLS, connected UDP for DTLS), and a DTLS client that stops right after its
// cookie echo (RFC 6347 §4.2.1), as a flooder would.
#pragma once

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <vector>

#include "relay/io/socket_util.hpp"
#include "relay/io/tls.hpp"
#include "relay/wire/address.hpp"

namespace tern::test {

class SecureClient {
 public:
  // Connects from `local` (port 0 for any) to `server`; every read waits `timeout` at most.
  SecureClient(const wire::SocketAddress& server, bool dtls, const wire::SocketAddress& local,
               std::chrono::seconds timeout = std::chrono::seconds(15));
  SecureClient(const SecureClient&) = delete;
  SecureClient& operator=(const SecureClient&) = delete;

  bool handshake();
  // Waits for what the server sends next: the SSL_get_error of a read that found no data
  // (SSL_ERROR_ZERO_RETURN: a close_notify; SSL_ERROR_SSL or _SYSCALL: the connection ended
  // without one, or the wait timed out), SSL_ERROR_NONE if data came.
  int readError();

 private:
  std::unique_ptr<SSL_CTX, io::SslCtxFree> ctx_;
  io::FileDescriptor fd_;
  std::unique_ptr<SSL, io::SslFree> ssl_;  // after fd_: freed before the socket closes
};

// What a flooder leaves behind: DTLS handshakes in progress that will never finish, each
// from its own socket bound to one address, with the ClientHello that echoed its cookie
// (RFC 6347 §4.2.1). The cookie stays valid for 30 s at least, so sending the same echo again
// from the same port takes a new handshake slot at once when the old one has expired.
class SilentDtlsHandshakes {
 public:
  // Sends `count` ClientHellos to `server` from sockets on `host` (a hundred at a time),
  // answers every HelloVerifyRequest that comes within `timeout` of its hundred's sending
  // with its cookie, and goes silent.
  SilentDtlsHandshakes(const wire::SocketAddress& server, const char* host, std::size_t count,
                       std::chrono::milliseconds timeout);
  std::size_t echoed() const noexcept { return echoed_; }
  // Sends every echo again.
  void repeat() const;

 private:
  std::vector<io::FileDescriptor> sockets_;
  std::vector<std::vector<std::uint8_t>> echoes_;  // by socket; empty: never answered
  std::size_t echoed_ = 0;
};

}  // namespace tern::test
