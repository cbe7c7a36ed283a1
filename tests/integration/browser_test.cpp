// A WebRTC call through tern in a real browser: headless Chromium (Debian's, driven by
// playwright-core from tests/browser) opens two RTCPeerConnections with iceTransportPolicy
// 'relay' and tern as the only ICE server, exchanges data-channel messages, and getStats
// must show a relay<->relay selected pair. A wrong or expired credential gives no relay
// candidate. turns: over TLS is verified for real: Chromium trusts a test CA through an NSS
// database, and refuses the same server without it.
#include <doctest/doctest.h>
#include <signal.h>
#include <unistd.h>

#include <ctime>
#include <fstream>

#include "auth/rest_credentials.hpp"
#include "support/process.hpp"
#include "support/tern_server.hpp"
#include "support/test_certificates.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using test::TernServer;

namespace {

constexpr const char* kSecret = "browser-secret";

std::string secretFile() {
  static const std::string path = test::temporaryFile(std::string(kSecret) + "\n");
  return path;
}

test::CommandResult runBrowser(const std::string& url, const std::string& username,
                               const std::string& credential, const char* expect,
                               const std::string& ca = {}) {
  std::vector<std::string> argv{"/usr/bin/node", TERN_BROWSER_DIR "/webrtc_relay.mjs", "--url", url, "--username",
                                username, "--credential", credential, "--expect", expect};
  if (!ca.empty()) argv.insert(argv.end(), {"--ca", ca});
  return test::runCommand(argv, std::chrono::seconds(90));
}

}  // namespace

TEST_CASE("Chromium relays a data channel through tern, relay to relay, over turn: UDP and TCP") {
  // The relay IP is loopback, which the peer policy denies by default; being the relay's own
  // address does not widen that, so --allow-peer opens exactly it, and the own-address rule
  // then lets a client reach only the relayed addresses of live allocations there.
  TernServer server({"--relay-ip", "127.0.0.1", "--allow-peer", "127.0.0.1/32", "--auth-secret-file", secretFile()});
  const auto credential = auth::mintRestCredential(kSecret, "chromium", std::time(nullptr), 600);
  for (const char* transport : {"udp", "tcp"}) {
    CAPTURE(transport);
    const std::string url = "turn:" + server.udp().toString() + "?transport=" + transport;
    auto r = runBrowser(url, credential.username, credential.password, "relay");
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(r.output.find(R"("local":"relay","remote":"relay")") != std::string::npos);
    CHECK(r.output.find(std::string(R"("relayProtocol":")") + transport + "\"") != std::string::npos);
    CHECK(r.output.find(R"("echoed":20)") != std::string::npos);
  }
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("Chromium relays a data channel through tern over turn:[::1], UDP and TCP") {
  // A dual-stack relay reached over IPv6. Chromium asks for the relayed address of its
  // default family (IPv4), so the media crosses families: IPv6 to tern, IPv4 relay to relay.
  TernServer server({"--listen", "127.0.0.1:0", "--listen", "[::1]:0", "--relay-ip", "127.0.0.1", "--relay-ip", "::1",
                     "--allow-peer", "127.0.0.1/32", "--allow-peer", "::1/128", "--auth-secret-file", secretFile()});
  REQUIRE_FALSE(server.udp(1).ip.isV4());
  const auto credential = auth::mintRestCredential(kSecret, "chromium6", std::time(nullptr), 600);
  for (const char* transport : {"udp", "tcp"}) {
    CAPTURE(transport);
    const std::string url = "turn:" + server.udp(1).toString() + "?transport=" + transport;
    auto r = runBrowser(url, credential.username, credential.password, "relay");
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(r.output.find(R"("local":"relay","remote":"relay")") != std::string::npos);
    CHECK(r.output.find(R"("echoed":20)") != std::string::npos);
  }
  CHECK(server.process().output().find("client=[::1]:") != std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("Chromium relays over turns: (TLS), verifying tern's certificate against a trusted CA") {
  const auto& certs = test::testCertificates();
  TernServer server({"--relay-ip", "127.0.0.1", "--allow-peer", "127.0.0.1/32", "--auth-secret-file", secretFile(), "--tls-listen",
                     "127.0.0.1:0", "--cert", certs.chain, "--key", certs.key});
  const auto credential = auth::mintRestCredential(kSecret, "chromium", std::time(nullptr), 600);
  const std::string url = "turns:" + server.tls().toString() + "?transport=tcp";
  auto trusted = runBrowser(url, credential.username, credential.password, "relay", certs.ca);
  INFO(trusted.output);
  CHECK(trusted.status == 0);
  CHECK(trusted.output.find(R"("local":"relay","remote":"relay")") != std::string::npos);
  CHECK(trusted.output.find(R"("relayProtocol":"tls")") != std::string::npos);
  CHECK(trusted.output.find(R"("echoed":20)") != std::string::npos);
  // The same server, CA not trusted: Chromium must refuse it (701), so the check is real.
  auto untrusted = runBrowser(url, credential.username, credential.password, "no-relay");
  INFO(untrusted.output);
  CHECK(untrusted.status == 0);
  CHECK(untrusted.output.find(R"("code":701)") != std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("Chromium gets no relay candidate with a wrong or an expired credential (401)") {
  TernServer server({"--relay-ip", "127.0.0.1", "--allow-peer", "127.0.0.1/32", "--auth-secret-file", secretFile()});
  const std::string url = "turn:" + server.udp().toString() + "?transport=udp";
  const auto good = auth::mintRestCredential(kSecret, "chromium", std::time(nullptr), 600);
  const auto expired = auth::mintRestCredential(kSecret, "chromium", std::time(nullptr) - 7200, 60);
  for (const auto& [username, password] : {std::pair{good.username, std::string("wrong")},
                                           std::pair{expired.username, expired.password}}) {
    auto r = runBrowser(url, username, password, "no-relay");
    INFO(r.output);
    CHECK(r.status == 0);
    CHECK(r.output.find(R"("code":401)") != std::string::npos);
  }
  CHECK(server.process().output().find("allocation created") == std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}
