// A fleet of three tern nodes, each a host of its own (a network namespace) on one "public"
// network, sharing one TURN REST secret and scraped by one real Prometheus server: a
// client's credential works on every node, and draining a node sends new allocations to
// another (300 Try Alternate) while its calls in progress carry on to their end, as
// Prometheus records. Clients are turnutils_uclient and tern's own client, relaying to
// turnutils_peer; every process runs inside the namespace of its host.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "auth/rest_credentials.hpp"
#include "relay/app/http_request.hpp"
#include "relay/wire/attributes.hpp"
#include "support/netns.hpp"
#include "support/process.hpp"
#include "support/prometheus_server.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/turn_test_client.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::NetworkNamespace;

namespace {

constexpr const char* kSecret = "fleet-secret";
constexpr const char* kRealm = "fleet.test";
// 203.0.113.0/24 (TEST-NET-3) stands for the internet; tern's peer policy denies
// documentation ranges by default, so the nodes allow this one.
constexpr const char* kPublicNet = "203.0.113.0/24";
constexpr const char* kPeerIp = "203.0.113.60";
constexpr std::uint16_t kPeerPort = 3480;
constexpr const char* kClientIp = "203.0.113.50";
constexpr const char* kPrometheusIp = "203.0.113.2";

std::string nodeIp(int i) { return "203.0.113." + std::to_string(10 + i); }
std::string metricsTarget(int i) { return nodeIp(i) + ":9641"; }

// The public network: a switch, the hosts around it, and the nodes' shared secret.
struct Fleet {
  Fleet() : internet("internet"), client("client"), peer_host("peer"), monitoring("monitoring") {
    internet.addBridge("br0");
    test::joinBridge(client, "eth0", std::string(kClientIp) + "/24", internet, "br0");
    test::joinBridge(peer_host, "eth0", std::string(kPeerIp) + "/24", internet, "br0");
    test::joinBridge(monitoring, "eth0", std::string(kPrometheusIp) + "/24", internet, "br0");
    for (int i = 1; i <= 3; ++i) {
      hosts.push_back(std::make_unique<NetworkNamespace>("node" + std::to_string(i)));
      test::joinBridge(*hosts.back(), "eth0", nodeIp(i) + "/24", internet, "br0");
    }
    std::filesystem::create_directories(dir);
  }
  ~Fleet() { std::filesystem::remove_all(dir); }

  // Node i (1-based): STUN/TURN on its public address, metrics there too (for Prometheus),
  // drains by redirecting to the next node.
  void startNode(int i) {
    const std::string alternate = nodeIp(i % 3 + 1) + ":3478";
    nodes.push_back(std::make_unique<test::TernServer>(
        std::vector<std::string>{"--listen", nodeIp(i) + ":3478", "--relay-ip", nodeIp(i), "--relay-ports",
                                 "50000-50999", "--metrics-listen", metricsTarget(i), "--realm", kRealm,
                                 "--auth-secret-file", secrets, "--allow-peer", kPublicNet, "--alternate-server",
                                 alternate, "--drain-timeout", "60", "--log-level", "info"},
        hosts.at(static_cast<std::size_t>(i - 1)).get()));
  }
  test::TernServer& node(int i) { return *nodes.at(static_cast<std::size_t>(i - 1)); }

  NetworkNamespace internet, client, peer_host, monitoring;
  std::vector<std::unique_ptr<NetworkNamespace>> hosts;
  std::vector<std::unique_ptr<test::TernServer>> nodes;
  std::string dir = "/tmp/tern-fleet-" + std::to_string(::getpid());
  std::string secrets = test::temporaryFile(std::string(kSecret) + "\n");
};

struct AllocateAnswer {
  int code = -1;  // 0: allocated
  std::optional<wire::SocketAddress> relayed, alternate;
};

// One Allocate over UDP from the client host with `credential` (the 401 round included);
// an allocation made is deleted again (Refresh with LIFETIME 0), so it cannot hold up a drain.
AllocateAnswer allocate(Fleet& fleet, int node, const auth::RestCredential& credential) {
  std::optional<test::TurnTestClient> client;
  {
    NetworkNamespace::Inside inside(fleet.client);
    client.emplace(test::socketAddress(kClientIp, 0), test::socketAddress(nodeIp(node), 3478), credential.username, credential.password, false);
  }
  client->transact([&] { return client->session.allocate({}); });
  const auto view = client->view();
  AllocateAnswer answer;
  if (view.messageClass() == wire::MessageClass::kSuccessResponse) {
    answer.code = 0;
    if (auto r = view.get<wire::attr::XorRelayedAddress>()) answer.relayed = r->address;
    CHECK(client->transact([&] { return client->session.refresh(0); }) == test::TurnTestClient::Outcome::kSuccess);
    return answer;
  }
  if (auto e = view.get<wire::attr::ErrorCode>()) answer.code = e->code;
  if (auto a = view.get<wire::attr::AlternateServer>()) answer.alternate = a->address;
  return answer;
}

// turnutils_uclient on the client host: `messages` of 160 bytes 20 ms apart, over channels,
// to the echo peer through `node`, signing with `credential`; over UDP, or TCP with `tcp`.
std::unique_ptr<test::ChildProcess> startCall(Fleet& fleet, int node, const auth::RestCredential& credential,
                                              int messages, bool tcp) {
  std::vector<std::string> argv{"/usr/bin/turnutils_uclient", "-u", credential.username, "-w", credential.password,
                                "-e", kPeerIp, "-r", std::to_string(kPeerPort), "-n", std::to_string(messages),
                                "-m", "1", "-l", "160", "-z", "20", "-c"};
  if (tcp) argv.push_back("-t");
  argv.push_back(nodeIp(node));
  return std::make_unique<test::ChildProcess>(fleet.client.command(argv));
}

// Polls `promql` until it yields a value for which `good` holds; the last value seen.
template <typename Good>
std::optional<double> waitForQuery(const test::PrometheusServer& prometheus, const std::string& promql, Good good,
                                   std::chrono::seconds timeout = 30s) {
  std::optional<double> value;
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < give_up) {
    value = prometheus.scalar(promql);
    if (value && good(*value)) break;
    std::this_thread::sleep_for(500ms);
  }
  return value;
}

std::string instance(int i) { return "{job=\"tern\",instance=\"" + metricsTarget(i) + "\"}"; }

}  // namespace

TEST_CASE("three nodes, one REST secret, one Prometheus: a drain moves new calls to another node and loses none") {
  Fleet fleet;
  test::ChildProcess peer(fleet.peer_host.command({"/usr/bin/turnutils_peer", "-L", kPeerIp, "-p",
                                                  std::to_string(kPeerPort)}));
  for (int i = 1; i <= 3; ++i) fleet.startNode(i);
  test::PrometheusServer prometheus({test::socketAddress(nodeIp(1), 9641), test::socketAddress(nodeIp(2), 9641), test::socketAddress(nodeIp(3), 9641)}, fleet.dir,
                                    &fleet.monitoring, test::socketAddress(kPrometheusIp, 9090));
  CHECK(waitForQuery(prometheus, "sum(up{job=\"tern\"})", [](double v) { return v == 3; }) == 3);
  CHECK(waitForQuery(prometheus, "sum(tern_ready{job=\"tern\"})", [](double v) { return v == 3; }) == 3);

  // One credential, minted once with the fleet's secret, works on every node.
  const auto credential =
      auth::mintRestCredential(kSecret, "caller", static_cast<std::int64_t>(std::time(nullptr)), 3600);
  for (int i = 1; i <= 3; ++i) {
    CAPTURE(i);
    const auto answer = allocate(fleet, i, credential);
    CHECK(answer.code == 0);
    REQUIRE(answer.relayed.has_value());
    CHECK(answer.relayed->ip.toString() == nodeIp(i));
  }

  // A call in progress on node 1: about 8 s of media over TCP. uclient makes a trial
  // allocation first (over UDP it would leave that one to expire, holding the drain up to
  // its timeout; over TCP it ends with its connection); the drain starts once the second,
  // the real one, exists.
  constexpr long kLongCall = 400;
  auto long_call = startCall(fleet, 1, credential, kLongCall, true);
  REQUIRE(fleet.node(1).process().waitForLine("allocation created", 10s).has_value());
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < give_up) {
    const auto out = fleet.node(1).process().output();
    if (out.find("allocation created") != out.rfind("allocation created")) break;
    std::this_thread::sleep_for(50ms);
  }
  CHECK(waitForQuery(prometheus, "sum(tern_allocations_active" + instance(1) + ")", [](double v) { return v >= 1; }).value_or(0) >= 1);

  // Drain node 1 as systemd or Kubernetes would: SIGTERM.
  ::kill(fleet.node(1).process().pid(), SIGTERM);
  REQUIRE(fleet.node(1).process().waitForLine(" draining ").has_value());
  {
    NetworkNamespace::Inside inside(fleet.monitoring);
    CHECK(app::httpRequest(test::socketAddress(nodeIp(1), 9641), "GET", "/readyz", 5s).status == 503);
  }

  // New allocations on node 1 are redirected to node 2...
  const auto redirected = allocate(fleet, 1, credential);
  CHECK(redirected.code == 300);
  REQUIRE(redirected.alternate.has_value());
  CHECK(redirected.alternate->toString() == nodeIp(2) + ":3478");
  // ...and a real client follows the redirect and makes its call there.
  constexpr long kNewCall = 150;
  auto new_call = startCall(fleet, 1, credential, kNewCall, false);
  CHECK(fleet.node(2).process().waitForLine("allocation created", 10s).has_value());
  CHECK(waitForQuery(prometheus, "sum(tern_allocations_active" + instance(2) + ")", [](double v) { return v >= 1; }).value_or(0) >= 1);
  test::expectNoLoss(*new_call, kNewCall);

  // The call on node 1 runs to its end with nothing lost, then node 1 exits by itself.
  test::expectNoLoss(*long_call, kLongCall);
  INFO(fleet.node(1).process().output());
  CHECK(fleet.node(1).process().wait(20s) == 0);
  CHECK(fleet.node(1).process().output().find("drained: every allocation has ended") != std::string::npos);

  // Prometheus saw the shift: node 1 drained and refused allocations with 300 while node 2
  // took the new call; then node 1 went away and two nodes are left ready.
  CHECK(waitForQuery(prometheus, "max_over_time(tern_draining" + instance(1) + "[5m])",
                     [](double v) { return v == 1; }) == 1);
  CHECK(waitForQuery(prometheus,
                     "sum(max_over_time(tern_requests_total{job=\"tern\",instance=\"" + metricsTarget(1) +
                         "\",method=\"allocate\",code=\"300\"}[5m]))",
                     [](double v) { return v >= 2; }) >= 2);
  CHECK(waitForQuery(prometheus, "sum(max_over_time(tern_allocations_created_total" + instance(2) + "[5m]))",
                     [](double v) { return v >= 2; }) >= 2);
  CHECK(waitForQuery(prometheus, "sum(up{job=\"tern\"})", [](double v) { return v == 2; }) == 2);
  CHECK(waitForQuery(prometheus, "sum(tern_ready{job=\"tern\"})", [](double v) { return v == 2; }) == 2);

  CHECK(fleet.node(2).process().stop(SIGINT) == 0);
  CHECK(fleet.node(3).process().stop(SIGINT) == 0);
  peer.stop(SIGTERM);
}
