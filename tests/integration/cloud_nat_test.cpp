// A node as cloud providers run VMs: the VM has a private address, and the provider's router
// translates a public one to it 1:1 (DNAT in, SNAT out, and back again for traffic the VM
// sends to its own public address). With --external-ip, clients on the internet learn the
// public relayed address, reach peers through it, and two clients of the same node reach
// each other's relayed addresses through the router's hairpin. Each host is a network
// namespace; clients are tern's own and turnutils_uclient.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "auth/rest_credentials.hpp"
#include "relay/client/turn_session.hpp"
#include "relay/wire/message.hpp"
#include "support/netns.hpp"
#include "support/process.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/turn_test_client.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::NetworkNamespace;
using test::TurnTestClient;

namespace {

constexpr const char* kSecret = "cloud-secret";
constexpr const char* kPublicIp = "203.0.113.20";  // the VM's public address, on the router
constexpr const char* kPrivateIp = "10.0.1.5";     // the VM's own interface
constexpr const char* kPeerIp = "203.0.113.60";
constexpr std::uint16_t kPeerPort = 3480;

struct CloudNode {
  CloudNode() : internet("internet"), router("router"), vm("vm"), client_a("client-a"), client_b("client-b"),
                peer_host("peer") {
    internet.addBridge("br0");
    test::joinBridge(router, "eth0", std::string(kPublicIp) + "/24", internet, "br0");
    test::joinBridge(client_a, "eth0", "203.0.113.50/24", internet, "br0");
    test::joinBridge(client_b, "eth0", "203.0.113.51/24", internet, "br0");
    test::joinBridge(peer_host, "eth0", std::string(kPeerIp) + "/24", internet, "br0");
    test::linkNamespaces(router, "vpc0", "10.0.1.1/24", vm, "eth0", std::string(kPrivateIp) + "/24");
    vm.ip({"route", "add", "default", "via", "10.0.1.1"});
    router.sysctl("net/ipv4/ip_forward", "1");
    // 1:1 NAT as the provider does it: everything for the public address goes to the VM,
    // everything from the VM leaves with the public address, including what the VM sends to
    // its own public address (the hairpin).
    router.iptables({"-t", "nat", "-A", "PREROUTING", "-d", kPublicIp, "-j", "DNAT", "--to-destination", kPrivateIp});
    router.iptables({"-t", "nat", "-A", "POSTROUTING", "-s", kPrivateIp, "-j", "SNAT", "--to-source", kPublicIp});
  }

  NetworkNamespace internet, router, vm, client_a, client_b, peer_host;
};

auth::RestCredential credential(const std::string& user) {
  return auth::mintRestCredential(kSecret, user, static_cast<std::int64_t>(std::time(nullptr)), 3600);
}

// A UDP client of the node on `host`, allocated.
std::unique_ptr<TurnTestClient> allocatedClient(const NetworkNamespace& host, const std::string& ip,
                                                const std::string& user) {
  const auto c = credential(user);
  std::unique_ptr<TurnTestClient> client;
  {
    NetworkNamespace::Inside inside(host);
    client = std::make_unique<TurnTestClient>(test::socketAddress(ip, 0), test::socketAddress(kPublicIp, 3478), c.username, c.password, false);
  }
  REQUIRE(client->transact([&] { return client->session.allocate({}); }) == TurnTestClient::Outcome::kSuccess);
  REQUIRE(client->session.relayed().has_value());
  return client;
}

// Sends `text` to `peer` with a Send indication and expects it at `receiver` as a Data
// indication from `from`.
void relayBetween(TurnTestClient& sender, const wire::SocketAddress& peer, TurnTestClient& receiver,
                  const wire::SocketAddress& from, const std::string& text) {
  const std::vector<std::uint8_t> payload(text.begin(), text.end());
  test::sendRaw(sender.fd.get(), client::TurnSession::sendIndication(peer, {payload.data(), payload.size()}));
  const auto bytes = test::receiveDatagram(receiver.fd.get(), 3000ms);
  REQUIRE_FALSE(bytes.empty());
  const auto view = wire::MessageView::parse(bytes);
  REQUIRE(view.has_value());
  const auto m = client::TurnSession::readDataIndication(*view);
  REQUIRE(m.has_value());
  CHECK(m->peer == from);
  REQUIRE(m->data.has_value());
  CHECK(std::string(m->data->begin(), m->data->end()) == text);
}

}  // namespace

TEST_CASE("behind a cloud's 1:1 NAT, --external-ip advertises the public address and clients of one node meet") {
  CloudNode cloud;
  test::TernServer node({"--listen", std::string(kPrivateIp) + ":3478", "--relay-ip", kPrivateIp, "--external-ip",
                         std::string(kPublicIp) + "=" + kPrivateIp, "--relay-ports", "50000-50999", "--realm",
                         "cloud.test", "--auth-secret-file", test::temporaryFile(std::string(kSecret) + "\n"),
                         "--allow-peer", "203.0.113.0/24", "--log-level", "info"},
                        &cloud.vm);

  // Clients learn the public relayed address, not the VM's private one.
  auto a = allocatedClient(cloud.client_a, "203.0.113.50", "alice");
  auto b = allocatedClient(cloud.client_b, "203.0.113.51", "bob");
  const auto relayed_a = *a->session.relayed(), relayed_b = *b->session.relayed();
  CHECK(relayed_a.ip.toString() == kPublicIp);
  CHECK(relayed_b.ip.toString() == kPublicIp);
  CHECK(relayed_a.port != relayed_b.port);

  // Two clients of the same node, each with a permission for the other's relayed address:
  // the datagrams leave the VM for its own public address and come back through the router.
  const std::vector<wire::SocketAddress> to_b{relayed_b}, to_a{relayed_a};
  REQUIRE(a->transact([&] { return a->session.createPermission(to_b); }) == TurnTestClient::Outcome::kSuccess);
  REQUIRE(b->transact([&] { return b->session.createPermission(to_a); }) == TurnTestClient::Outcome::kSuccess);
  relayBetween(*a, relayed_b, *b, relayed_a, "alice to bob through the hairpin");
  relayBetween(*b, relayed_a, *a, relayed_b, "bob to alice through the hairpin");

  // A peer on the internet, by turnutils_uclient: every message there and back.
  test::ChildProcess peer(cloud.peer_host.command({"/usr/bin/turnutils_peer", "-L", kPeerIp, "-p",
                                                  std::to_string(kPeerPort)}));
  const auto c = credential("carol");
  auto call = test::runCommand(cloud.client_a.command({"/usr/bin/turnutils_uclient", "-u", c.username, "-w",
                                                       c.password, "-e", kPeerIp, "-r", std::to_string(kPeerPort),
                                                       "-n", "100", "-m", "1", "-l", "160", "-z", "10", "-c",
                                                       kPublicIp}),
                               60s);
  const auto report = test::parseUclientReport(call.output);
  INFO(report.output);
  CHECK(call.status == 0);
  CHECK(report.sent == 100);
  CHECK(report.received == 100);
  CHECK(report.lost == 0);
  // The usage record names the public relayed address too.
  CHECK(node.process().output().find(std::string("relayed=") + kPublicIp) != std::string::npos);

  peer.stop(SIGTERM);
  CHECK(node.process().stop(SIGINT) == 0);
}
