// The relay's own host addresses as peers (issue 18, item 1; coturn's CVE-2020-26262 class):
// a node listening on a wildcard address, with extra addresses on lo and on a dummy
// interface, must not let its clients reach services of the host. In a network namespace of
// its own: tern on 0.0.0.0 and on [::]; CreatePermission, ChannelBind and Connect to the
// host's other addresses get 403 and listeners there receive nothing; UDP and TCP services
// on the relay IP inside the relay range receive nothing; and a call between two allocations
// of the same tern (turnutils_uclient -y, and tern's own client both ways) still works.
#include <doctest/doctest.h>
#include <signal.h>

#include <tuple>

#include <chrono>
#include <ctime>
#include <memory>
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
using Outcome = client::TurnSession::Outcome;

namespace {

constexpr const char* kSecret = "host-address-secret";
constexpr std::uint16_t kServicePort = 50077;  // another program's port inside the relay range

// One family's addresses of the host: where clients connect, the relay IP, and the host's
// other addresses (on lo and on the dummy interface) that are nobody's relayed addresses.
struct Family {
  const char* listen;        // the wildcard listener
  const char* server;        // the address clients reach it at
  const char* client;        // the clients' own address
  const char* relay_ip;      // --relay-ip, on the dummy interface
  std::uint8_t family;       // REQUESTED-ADDRESS-FAMILY (RFC 8656 §18.1): 0x01 IPv4, 0x02 IPv6
  std::vector<const char*> other_host_addresses;
  std::vector<const char*> allowed;  // --allow-peer: the operator opened every lab range
};

const Family kIPv4{"0.0.0.0:3478", "127.0.0.1", "127.0.0.1", "198.51.100.7", 0x01, {"127.0.0.9", "198.51.100.8"},
                   {"127.0.0.0/8", "198.51.100.0/24"}};
const Family kIPv6{"[::]:3478", "::1", "::1", "2001:db8::7", 0x02, {"::1", "2001:db8::8"}, {"::1/128", "2001:db8::/32"}};

// A host with addresses on lo and a dummy interface, as a VM with container bridges has.
struct Host {
  Host() : ns("host") {
    ns.ip({"addr", "add", "127.0.0.9/32", "dev", "lo"});
    // A veth pair with both ends inside stands in for a dummy interface (some kernels lack
    // the dummy module): an interface with addresses of the host's, like a container bridge.
    ns.ip({"link", "add", "dummy0", "type", "veth", "peer", "name", "dummy1"});
    ns.ip({"link", "set", "dummy0", "up"});
    ns.ip({"link", "set", "dummy1", "up"});
    for (const char* a : {"198.51.100.7/24", "198.51.100.8/24"}) ns.ip({"addr", "add", a, "dev", "dummy0"});
    for (const char* a : {"2001:db8::7/64", "2001:db8::8/64"}) ns.ip({"addr", "add", a, "dev", "dummy0", "nodad"});
  }
  NetworkNamespace ns;
};

std::unique_ptr<test::TernServer> startTern(const Host& host, const Family& f) {
  std::vector<std::string> args{"--listen", f.listen, "--relay-ip", f.relay_ip, "--relay-ports", "50000-50999",
                                "--auth-secret-file", test::temporaryFile(std::string(kSecret) + "\n"),
                                "--log-level", "info"};
  for (const char* range : f.allowed) args.insert(args.end(), {"--allow-peer", range});
  return std::make_unique<test::TernServer>(args, &host.ns);
}

auth::RestCredential credential(const std::string& user) {
  return auth::mintRestCredential(kSecret, user, static_cast<std::int64_t>(std::time(nullptr)), 3600);
}

std::unique_ptr<TurnTestClient> client(const Host& host, const Family& f, bool tcp, const std::string& user) {
  const auto c = credential(user);
  NetworkNamespace::Inside inside(host.ns);
  return std::make_unique<TurnTestClient>(test::socketAddress(f.client, 0), test::socketAddress(f.server, 3478),
                                          c.username, c.password, tcp);
}

std::unique_ptr<TurnTestClient> allocated(const Host& host, const Family& f, const std::string& user) {
  auto c = client(host, f, false, user);
  client::TurnSession::AllocateOptions options;
  options.address_family = f.family;
  REQUIRE(c->transact([&] { return c->session.allocate(options); }) == Outcome::kSuccess);
  return c;
}

// A UDP socket bound inside the host at `address`, and a TCP listener there.
io::FileDescriptor udpService(const Host& host, const wire::SocketAddress& address) {
  NetworkNamespace::Inside inside(host.ns);
  return test::boundUdpSocket(address);
}

io::FileDescriptor tcpService(const Host& host, const wire::SocketAddress& address) {
  NetworkNamespace::Inside inside(host.ns);
  return test::listeningSocket(address);
}

// Everything a client can try to reach `peer` with: each must be refused, and `udp` (bound
// there) and `tcp` (listening there) must get nothing.
void checkUnreachable(const Host& host, const Family& f, const wire::SocketAddress& peer, int udp, int tcp,
                      bool permission_refused) {
  CAPTURE(peer.toString());
  auto c = allocated(host, f, "prober");
  const std::vector<wire::SocketAddress> peers{peer};
  const Outcome permission = c->transact([&] { return c->session.createPermission(peers); });
  if (permission_refused) {
    CHECK(permission == Outcome::kError);
    CHECK(c->session.lastErrorCode() == 403);
  }
  CHECK(c->transact([&] { return c->session.channelBind(0x4000, peer); }) == Outcome::kError);
  CHECK(c->session.lastErrorCode() == 403);
  const std::vector<std::uint8_t> payload{'s', 's', 'r', 'f'};
  test::sendRaw(c->fd.get(), client::TurnSession::sendIndication(peer, {payload.data(), payload.size()}));
  test::sendRaw(c->fd.get(), client::TurnSession::channelData(0x4000, {payload.data(), payload.size()}, false));

  auto tcp_client = client(host, f, true, "tcp-prober");
  client::TurnSession::AllocateOptions options;
  options.transport = wire::attr::RequestedTransport::kTcp;
  options.address_family = f.family;
  REQUIRE(tcp_client->transact([&] { return tcp_client->session.allocate(options); }) == Outcome::kSuccess);
  CHECK(tcp_client->transact([&] { return tcp_client->session.connect(peer); }) == Outcome::kError);
  CHECK(tcp_client->session.lastErrorCode() == 403);

  // Nothing arrived: not a datagram, not a connection.
  CHECK(test::receiveDatagram(udp, 500ms).empty());
  CHECK_FALSE(test::acceptWithin(tcp, 200ms));
}

void checkFamily(const Family& f) {
  Host host;
  auto tern = startTern(host, f);
  // The host's other addresses: no permission, no channel, no Connect, nothing received.
  for (const char* other : f.other_host_addresses) {
    const wire::SocketAddress service = test::socketAddress(other, 5000);
    auto udp = udpService(host, service);
    auto tcp = tcpService(host, service);
    checkUnreachable(host, f, service, udp.get(), tcp.get(), true);
  }
  // A UDP and a TCP service of another program on the relay IP, inside the relay range: the
  // relay IP is a peer IP (relay to relay), but this port is nobody's relayed address.
  const wire::SocketAddress in_range = test::socketAddress(f.relay_ip, kServicePort);
  auto udp = udpService(host, in_range);
  auto tcp = tcpService(host, in_range);
  checkUnreachable(host, f, in_range, udp.get(), tcp.get(), false);
  CHECK(tern->process().stop(SIGTERM) == 0);
}

}  // namespace

TEST_CASE("tern on 0.0.0.0 keeps the host's own addresses and non-relay ports out of its clients' reach") {
  checkFamily(kIPv4);
}

TEST_CASE("tern on [::] keeps the host's own addresses and non-relay ports out of its clients' reach") {
  checkFamily(kIPv6);
}

TEST_CASE("two allocations of one tern on a wildcard listener still call each other through the relay IP") {
  Host host;
  auto tern = startTern(host, kIPv4);
  // turnutils_uclient -y: pairs of clients whose relayed addresses send to each other.
  const auto call = test::runCommand(host.ns.command({"/usr/bin/turnutils_uclient", "-W", kSecret, "-u", "caller",
                                                      "-y", "-c", "-n", "50", "-l", "160", "-z", "5", "-m", "2",
                                                      "127.0.0.1"}),
                                     60s);
  const auto report = test::parseUclientReport(call.output);
  INFO(report.output);
  CHECK(call.status == 0);
  CHECK(report.sent > 0);
  CHECK(report.received == report.sent);
  CHECK(report.lost == 0);
  // And tern's own client, Send indications both ways between two relayed addresses.
  auto a = allocated(host, kIPv4, "alice");
  auto b = allocated(host, kIPv4, "bob");
  const auto relayed_a = *a->session.relayed(), relayed_b = *b->session.relayed();
  CHECK(relayed_a.ip.toString() == kIPv4.relay_ip);
  const std::vector<wire::SocketAddress> to_b{relayed_b}, to_a{relayed_a};
  REQUIRE(a->transact([&] { return a->session.createPermission(to_b); }) == Outcome::kSuccess);
  REQUIRE(b->transact([&] { return b->session.createPermission(to_a); }) == Outcome::kSuccess);
  for (auto [from, to, peer] : {std::tuple{a.get(), b.get(), relayed_b}, std::tuple{b.get(), a.get(), relayed_a}}) {
    const std::vector<std::uint8_t> payload{'h', 'i'};
    test::sendRaw(from->fd.get(), client::TurnSession::sendIndication(peer, {payload.data(), payload.size()}));
    const auto bytes = test::receiveDatagram(to->fd.get(), 3000ms);
    REQUIRE_FALSE(bytes.empty());
    const auto view = wire::MessageView::parse(bytes);
    REQUIRE(view.has_value());
    const auto data = client::TurnSession::readDataIndication(*view);
    REQUIRE(data.has_value());
    CHECK(data->peer == (from == a.get() ? relayed_a : relayed_b));
  }
  CHECK(tern->process().stop(SIGTERM) == 0);
}
