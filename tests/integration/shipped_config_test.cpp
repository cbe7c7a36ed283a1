// What docs/operations.md walks an operator through, with the shipped files as they are: a
// host with the addresses deploy/systemd/public-node.conf names (a network namespace, so
// its fixed ports collide with nothing), tern started on that configuration, and Prometheus
// started on deploy/prometheus/prometheus.yml, unmodified, scraping it and loading the
// alert rules. Only what no file can ship is given on the command line: the secret file,
// the certificate, a peer range for the test's peer, and the drain timeout.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <string>
#include <thread>

#include "auth/rest_credentials.hpp"
#include "support/netns.hpp"
#include "support/process.hpp"
#include "support/prometheus_server.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/test_certificates.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::NetworkNamespace;

namespace {

constexpr const char* kSecret = "shipped-config-secret";
// The addresses public-node.conf stands its example node on.
constexpr const char* kNodeIp = "203.0.113.10";
constexpr const char* kNodeIp6 = "2001:db8::10";
// A peer of the relay's clients: any address that is not the node's own.
constexpr const char* kPeerIp = "198.51.100.20";

test::UclientReport call(const NetworkNamespace& host, const auth::RestCredential& c, std::uint16_t peer_port,
                         std::vector<std::string> flags) {
  std::vector<std::string> argv{"/usr/bin/turnutils_uclient", "-u", c.username, "-w", c.password, "-e", kPeerIp,
                                "-r", std::to_string(peer_port), "-n", "50", "-m", "1", "-l", "160", "-z", "10", "-c"};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back(kNodeIp);
  return test::parseUclientReport(test::runCommand(host.command(argv), 60s).output);
}

}  // namespace

TEST_CASE("public-node.conf and prometheus.yml as shipped: a node that relays over UDP and TLS and is scraped") {
  NetworkNamespace host("shipped");
  NetworkNamespace peer_host("shipped-peer");
  // One host holds the node's addresses (on its loopback interface: this kernel may lack
  // the dummy link type); clients run on it too. The peer is a host of its own behind a
  // veth: an address of the node's own host is never a peer.
  host.ip({"addr", "add", std::string(kNodeIp) + "/32", "dev", "lo"});
  host.ip({"addr", "add", std::string(kNodeIp6) + "/128", "dev", "lo", "nodad"});
  test::linkNamespaces(host, "peer0", "198.51.100.1/24", peer_host, "eth0", std::string(kPeerIp) + "/24");
  peer_host.ip({"route", "add", "default", "via", "198.51.100.1"});

  const auto& certificates = test::testCertificates();
  test::TernServer node({"--config", TERN_DEPLOY_DIR "/systemd/public-node.conf", "--log-format", "json",
                         "--auth-secret-file", test::temporaryFile(std::string(kSecret) + "\n"), "--cert",
                         certificates.chain, "--key", certificates.key, "--allow-peer", "198.51.100.0/24",
                         "--drain-timeout", "0", "--admin-token-file",
                         test::temporaryFile("shipped-config-admin-token\n")},
                        &host);
  // Listeners as the file says: UDP and TCP on 3478, TLS on 5349, each on both families;
  // metrics on loopback 9641, where prometheus.yml looks.
  CHECK(node.udp(0).toString() == std::string(kNodeIp) + ":3478");
  CHECK(node.udp(1).toString() == std::string("[") + kNodeIp6 + "]:3478");
  CHECK(node.tls(0).toString() == std::string(kNodeIp) + ":5349");
  REQUIRE(node.http().has_value());
  CHECK(node.http()->toString() == "127.0.0.1:9641");

  // The operator's first checks: a STUN Binding, then relayed calls over UDP and over TLS.
  const auto probe = test::runCommand(host.command({test::ternBinary(), "probe", "--server",
                                                    std::string(kNodeIp) + ":3478"}));
  CHECK(probe.status == 0);
  CHECK(probe.output.find(kNodeIp) != std::string::npos);
  const auto peer_port = std::uint16_t{3480};
  test::ChildProcess peer(peer_host.command({"/usr/bin/turnutils_peer", "-L", kPeerIp, "-p", std::to_string(peer_port)}));
  const auto c = auth::mintRestCredential(kSecret, "operator", static_cast<std::int64_t>(std::time(nullptr)), 3600);
  for (const auto& flags : {std::vector<std::string>{}, std::vector<std::string>{"-t", "-S", "-p", "5349"}}) {
    const auto report = call(host, c, peer_port, flags);
    INFO(report.output);
    CHECK(report.sent == 50);
    CHECK(report.received == 50);
    CHECK(report.lost == 0);
  }

  // Prometheus on the example configuration, scraping every 15 s: the node is up, its
  // relayed packets are there, and tern's alert rules loaded and evaluate.
  const std::string dir = "/tmp/tern-shipped-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  {
    test::PrometheusServer prometheus(test::PrometheusServer::ConfigFile{TERN_DEPLOY_DIR "/prometheus/prometheus.yml"},
                                      dir, &host, test::socketAddress("127.0.0.1", 9090));
    std::optional<double> up, relayed;
    const auto give_up = std::chrono::steady_clock::now() + 60s;
    while (std::chrono::steady_clock::now() < give_up) {
      up = prometheus.scalar("up{job=\"tern\"}");
      relayed = prometheus.scalar("sum(tern_relayed_packets_total{job=\"tern\",direction=\"client_to_peer\"})");
      if (up == 1 && relayed.value_or(0) >= 100) break;
      std::this_thread::sleep_for(500ms);
    }
    CHECK(up == 1);
    CHECK(relayed.value_or(0) >= 100);
    const auto rules = prometheus.request("/api/v1/rules");
    CHECK(rules.body.find("TernDown") != std::string::npos);
    CHECK(rules.body.find("\"health\":\"err\"") == std::string::npos);
  }
  std::filesystem::remove_all(dir);
  peer.stop(SIGTERM);
  CHECK(node.process().stop(SIGINT) == 0);
}
