// TURN over TLS (RFC 8656 §3.1) and DTLS (RFC 7350) against a real `tern serve`: coturn's
// turnutils_uclient with -t -S on a TLS-only port and on a plain port that tells TLS apart by
// its first byte, and with -S over UDP (DTLS); python3-aioice verifying tern's certificate
// against a test CA.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <ctime>
#include <regex>

#include "auth/rest_credentials.hpp"
#include "support/process.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/test_certificates.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using test::TernServer;

namespace {

constexpr const char* kSecret = "tls-secret";
constexpr const char* kPeerHost = "127.0.0.2";

std::string secretFile() {
  static const std::string path = test::temporaryFile(std::string(kSecret) + "\n");
  return path;
}

std::vector<std::string> tlsArgs() {
  const auto& certs = test::testCertificates();
  return {"--tls-listen", "127.0.0.1:0", "--dtls-listen", "127.0.0.1:0", "--cert", certs.chain,
          "--key", certs.key, "--relay-ip",
          "127.0.0.1", "--allow-peer", "127.0.0.0/8", "--auth-secret-file", secretFile()};
}

test::UclientReport uclientSecure(std::uint16_t port, std::uint16_t peer_port, bool tcp = true) {
  return test::runUclient({tcp ? "-t" : "-X", "-S", "-W", kSecret, "-u", "tls", "-e", kPeerHost, "-r",
                           std::to_string(peer_port), "-p", std::to_string(port), "-n", "100", "-m", "2", "-l",
                           "161", "-z", "5", "127.0.0.1"});
}

}  // namespace

TEST_CASE("turnutils_uclient over TLS (-t -S) on a TLS port relays with zero loss") {
  TernServer server(tlsArgs());
  test::EchoPeer peer(kPeerHost);
  const auto peer_port = peer.port();
  auto r = uclientSecure(server.tls().port, peer_port);
  INFO(r.output);
  CHECK(r.lost == 0);
  CHECK(r.sent == 200);
  CHECK(r.received == 200);
  CHECK(server.process().output().find("transport=tls") != std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("turnutils_uclient with RFC 6062 TCP allocations over TLS (-T -S) relays with zero loss") {
  TernServer server(tlsArgs());
  // Control and data connections are all TLS; with two workers most data connections reach
  // a worker that does not own their peer connection and move, TLS session included.
  auto r = test::runUclient({"-T", "-S", "-W", kSecret, "-u", "tls-tcp", "-p", std::to_string(server.tls().port),
                             "-n", "50", "-m", "4", "-l", "1000", "-z", "5", "127.0.0.1"});
  INFO(r.output);
  CHECK(r.lost == 0);
  CHECK(r.sent == 200);
  CHECK(r.received == 200);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("turnutils_uclient over DTLS (-S on UDP, RFC 7350) relays with zero loss") {
  TernServer server(tlsArgs());
  test::EchoPeer peer(kPeerHost);
  const auto peer_port = peer.port();
  auto r = uclientSecure(server.dtls().port, peer_port, false);
  INFO(r.output);
  CHECK(r.lost == 0);
  CHECK(r.sent == 200);
  CHECK(r.received == 200);
  CHECK(server.process().output().find("transport=dtls user=") != std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("a --listen TCP port serves TLS too, told apart by the first byte") {
  TernServer server(tlsArgs());
  test::EchoPeer peer(kPeerHost);
  const auto peer_port = peer.port();
  auto r = uclientSecure(server.tcp().port, peer_port);
  INFO(r.output);
  CHECK(r.lost == 0);
  CHECK(r.received == 200);
  // ... and plain TCP still works on the same port.
  auto probe = test::runCommand({test::ternBinary(), "probe", "--tcp", "--server", server.tcp().toString()});
  CHECK(probe.status == 0);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("python3-aioice over TLS verifies tern's certificate and relays byte-identical") {
  TernServer server(tlsArgs());
  const auto credential = auth::mintRestCredential(kSecret, "aioice-tls", std::time(nullptr), 600);
  auto result = test::runCommand({"/usr/bin/python3", TERN_CLIENTS_DIR "/aioice_echo.py", "--server",
                                  server.tls().toString(), "--username", credential.username, "--password",
                                  credential.password, "--peer-host", kPeerHost, "--transport", "tcp",
                                  "--cafile", test::testCertificates().ca});
  INFO(result.output);
  CHECK(result.status == 0);
  CHECK(result.output.find("\"intact\": 6") != std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("plain TCP on a TLS-only port is refused and closed") {
  TernServer server(tlsArgs());
  auto probe = test::runCommand({test::ternBinary(), "probe", "--tcp", "--timeout", "3", "--server",
                                 server.tls().toString()});
  CHECK(probe.status == 1);
  CHECK(server.process().waitForLine("not a TLS handshake on a TLS port").has_value());
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("a certificate that does not match its key stops start-up with a clear error") {
  const auto& certs = test::testCertificates();
  auto r = test::runCommand({test::ternBinary(), "serve", "--listen", "127.0.0.1:0", "--relay-ports",
                             "61000-65535", "--cert", certs.ca, "--key", certs.key});
  CHECK(r.status == 1);
  CHECK(r.output.find("mismatch") != std::string::npos);
}

namespace {

// The serial number of the certificate a TLS server on `port` presents now.
std::string servedSerial(std::uint16_t port) {
  auto r = test::runCommand({"/bin/bash", "-c",
                             "openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                                 " </dev/null 2>/dev/null | openssl x509 -noout -serial"});
  return r.output;
}

}  // namespace

TEST_CASE("SIGHUP reloads the certificate without dropping a call, a bad file keeps the old one") {
  const auto& ca = test::testCertificates();
  char dir_template[] = "/tmp/tern-reload-XXXXXX";
  REQUIRE(::mkdtemp(dir_template) != nullptr);
  const std::string dir = dir_template;
  // A second certificate from the same CA (a new serial), and live files tern reads.
  auto made = test::runCommand({"/bin/bash", "-c",
      "set -e; cd " + dir + "; cp " + ca.chain + " chain.pem; cp " + ca.key + " server.key"
      "; openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout new.key -out new.csr"
      " -subj /CN=127.0.0.1 2>/dev/null"
      "; printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf"
      "; openssl x509 -req -in new.csr -CA " + ca.dir + "/ca.pem -CAkey " + ca.dir + "/ca.key"
      " -CAcreateserial -out new.pem -days 1 -extfile ext.cnf 2>/dev/null"
      "; cat new.pem " + ca.dir + "/ca.pem > new-chain.pem"});
  REQUIRE(made.status == 0);

  TernServer server({"--tls-listen", "127.0.0.1:0", "--cert", dir + "/chain.pem", "--key", dir + "/server.key",
                     "--relay-ip", "127.0.0.1", "--allow-peer", "127.0.0.0/8", "--auth-secret-file", secretFile()});
  const auto port = server.tls().port;
  const std::string before = servedSerial(port);
  REQUIRE(before.find("serial=") != std::string::npos);

  test::EchoPeer peer(kPeerHost);
  const auto peer_port = peer.port();
  // A call of about 3 s over TLS, with the reload in the middle of it.
  test::ChildProcess call({"/usr/bin/turnutils_uclient", "-t", "-S", "-W", kSecret, "-u", "reload", "-e", kPeerHost,
                           "-r", std::to_string(peer_port), "-p", std::to_string(port), "-n", "150", "-m", "1",
                           "-l", "161", "-z", "20", "-c", "127.0.0.1"});
  REQUIRE(server.process().waitForLine("allocation created").has_value());
  auto swapped = test::runCommand({"/bin/bash", "-c", "cd " + dir + " && cp new-chain.pem chain.pem && cp new.key server.key"});
  REQUIRE(swapped.status == 0);
  ::kill(server.process().pid(), SIGHUP);
  CHECK(server.process().waitForLine("configuration reloaded").has_value());
  CHECK(call.wait(std::chrono::seconds(30)) == 0);
  const auto report = test::parseUclientReport(call.output());
  INFO(report.output);
  CHECK(report.lost == 0);
  CHECK(report.sent == 150);
  CHECK(report.received == 150);

  const std::string after = servedSerial(port);
  CHECK(after.find("serial=") != std::string::npos);
  CHECK(after != before);

  // A broken file: logged, and the certificate just loaded stays in force.
  auto broken = test::runCommand({"/bin/bash", "-c", "echo garbage > " + dir + "/chain.pem"});
  REQUIRE(broken.status == 0);
  ::kill(server.process().pid(), SIGHUP);
  CHECK(server.process().waitForLine("configuration reload rejected").has_value());
  CHECK(servedSerial(port) == after);

  CHECK(server.process().stop(SIGTERM) == 0);
  test::runCommand({"/bin/rm", "-rf", dir});
}
