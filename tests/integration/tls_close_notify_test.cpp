// Orderly closes of TLS and DTLS connections send close_notify (RFC 8446 §6.1; RFC 6347 §4.1
// for DTLS), so a client can tell the relay ending a connection from a truncation attack or a
// crash: OpenSSL clients in this process see SSL_ERROR_ZERO_RETURN when tern closes a TLS
// connection for idleness or a DTLS session on shutdown, and coturn's turnutils_uclient -T -S
// (RFC 6062 over TLS) ends its run without an SSL error.
#include <doctest/doctest.h>
#include <openssl/ssl.h>
#include <signal.h>

#include <sstream>

#include "support/secure_client.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/test_certificates.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using test::TernServer;

namespace {

constexpr const char* kSecret = "close-notify-secret";

std::vector<std::string> tlsArgs(std::vector<std::string> extra = {}) {
  static const std::string secret_file = test::temporaryFile(std::string(kSecret) + "\n");
  const auto& certs = test::testCertificates();
  std::vector<std::string> args{"--tls-listen",
                                "127.0.0.1:0",
                                "--dtls-listen",
                                "127.0.0.1:0",
                                "--cert",
                                certs.chain,
                                "--key",
                                certs.key,
                                "--relay-ip",
                                "127.0.0.1",
                                "--allow-peer",
                                "127.0.0.0/8",
                                "--auth-secret-file",
                                secret_file};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// A client from 127.0.0.1 to `server`.
test::SecureClient client(const wire::SocketAddress& server, bool dtls) {
  return test::SecureClient(server, dtls, test::socketAddress("127.0.0.1", 0));
}

}  // namespace

TEST_CASE("tern closing an idle TLS connection sends close_notify first (RFC 8446 §6.1)") {
  TernServer server(tlsArgs({"--tcp-idle-timeout", "1"}));
  auto tls = client(server.tls(), false);
  REQUIRE(tls.handshake());
  // Silent past the idle timeout: tern closes, orderly.
  CHECK(tls.readError() == SSL_ERROR_ZERO_RETURN);
  CHECK(server.process().waitForLine("idle timeout", std::chrono::seconds(5)));
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "tern shutting down sends close_notify on TLS connections and DTLS sessions (RFC 6347 §4.1)") {
  TernServer server(tlsArgs());
  auto tls = client(server.tls(), false);
  auto dtls = client(server.dtls(), true);
  REQUIRE(tls.handshake());
  REQUIRE(dtls.handshake());
  ::kill(server.process().pid(), SIGTERM);  // --drain-timeout 0: the workers stop at once
  CHECK(tls.readError() == SSL_ERROR_ZERO_RETURN);
  CHECK(dtls.readError() == SSL_ERROR_ZERO_RETURN);
  CHECK(server.process().wait() == 0);
}

TEST_CASE("tern ending an idle DTLS session sends close_notify") {
  TernServer server(tlsArgs({"--tcp-idle-timeout", "1"}));
  auto dtls = client(server.dtls(), true);
  REQUIRE(dtls.handshake());
  CHECK(dtls.readError() == SSL_ERROR_ZERO_RETURN);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("turnutils_uclient -T -S (RFC 6062 over TLS) ends its run without an SSL error") {
  TernServer server(tlsArgs());
  // Each run ends with Refresh 0: tern closes the peer connections and so the TLS data
  // connections piped to them, which must end with close_notify, not a bare FIN.
  for (int run = 0; run < 3; ++run) {
    const auto r = test::runUclient({"-T", "-S", "-W", kSecret, "-u", "close-notify", "-p",
                                     std::to_string(server.tls().port), "-n", "20", "-m", "2", "-l",
                                     "100", "127.0.0.1"});
    INFO(r.output);
    CHECK(r.lost == 0);
    CHECK(r.received == 40);
    // Its SSL_read of a connection cut without close_notify prints "SSL write error" and
    // "unexpected eof while reading"; the TLS version probes at connect print "alert
    // protocol version" lines, which are not errors of the run.
    std::istringstream lines(r.output);
    for (std::string line; std::getline(lines, line);) {
      if (line.find("alert protocol version") != std::string::npos) continue;
      if (line.find("tls_connect") != std::string::npos) continue;
      CHECK_MESSAGE(line.find("SSL") == std::string::npos, line);
      CHECK_MESSAGE(line.find("unexpected eof") == std::string::npos, line);
    }
  }
  CHECK(server.process().stop(SIGTERM) == 0);
}
