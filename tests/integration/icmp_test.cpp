// RFC 8656 §11.5 against a real `tern serve` on loopback: a datagram relayed to a UDP port
// nobody listens on comes back to the client as a Data indication with ICMP port unreachable
// and the peer's address, over UDP and TCP, from IPv4 and IPv6 relayed addresses; and the
// relay socket keeps relaying afterwards.
#include <doctest/doctest.h>

#include <chrono>
#include <csignal>
#include <ctime>
#include <optional>
#include <string>
#include <vector>

#include "relay/app/http_request.hpp"
#include "relay/client/turn_session.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/wire/attributes.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/turn_test_client.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::TernServer;
using test::TurnTestClient;

namespace {

constexpr const char* kUser = "icmp";
constexpr const char* kPassword = "icmp-password";
// ICMPv4 destination unreachable / port unreachable (RFC 792); ICMPv6 destination
// unreachable / port unreachable (RFC 4443 §3.1).
constexpr std::uint8_t kV4Unreachable = 3, kV4PortUnreachable = 3;
constexpr std::uint8_t kV6Unreachable = 1, kV6PortUnreachable = 4;
constexpr std::uint16_t kRelayPortFirst = 63000, kRelayPortLast = 63499;

const wire::IpAddress kLoopback = *wire::IpAddress::parse("127.0.0.1");
const wire::IpAddress kLoopbackV6 = *wire::IpAddress::parse("::1");
// Peers live on 127.0.0.2: 127.0.0.1 is the relay's own address (the own-address rule).
const wire::IpAddress kPeerHost = *wire::IpAddress::parse("127.0.0.2");

// --allow-peer lets peers on loopback in; ::1 is an own address (see the IPv6 case).
std::vector<std::string> serverArgs() {
  return {
      "--realm",          "tern.test",
      "--user",           std::string(kUser) + ":" + kPassword,
      "--relay-ip",       "127.0.0.1",
      "--relay-ip",       "::1",
      "--relay-ports",    std::to_string(kRelayPortFirst) + "-" + std::to_string(kRelayPortLast),
      "--allow-peer",     "127.0.0.0/8",
      "--metrics-listen", "127.0.0.1:0"};
}

// A UDP port on `ip` that nothing listens on: bound by the kernel's choice, then closed.
wire::SocketAddress closedUdpPort(const wire::IpAddress& ip) {
  io::SocketOptions options;
  options.reuse_port = false;
  const io::FileDescriptor fd = io::openBoundSocket(io::SocketKind::kUdp, {ip, 0}, options);
  return io::localAddress(fd.get());
}


TurnTestClient allocatedClient(const TernServer& server, bool tcp,
                               std::optional<std::uint8_t> family = {}) {
  TurnTestClient c({kLoopback, 0}, tcp ? server.tcp() : server.udp(), kUser, kPassword, tcp);
  client::TurnSession::AllocateOptions options;
  options.address_family = family;
  REQUIRE(c.transact([&] { return c.session.allocate(options); }) ==
          TurnTestClient::Outcome::kSuccess);
  REQUIRE(c.session.relayed().has_value());
  return c;
}

void permit(TurnTestClient& c, const wire::SocketAddress& peer) {
  const wire::SocketAddress peers[] = {peer};
  REQUIRE(c.transact([&] { return c.session.createPermission(peers); }) ==
          TurnTestClient::Outcome::kSuccess);
}

void sendTo(TurnTestClient& c, const wire::SocketAddress& peer,
            const std::vector<std::uint8_t>& data) {
  test::sendRaw(c.fd.get(), client::TurnSession::sendIndication(peer, {data.data(), data.size()}));
}

// The next message the server sends the client, or empty after `timeout`.
std::vector<std::uint8_t> nextMessage(TurnTestClient& c,
                                      std::chrono::milliseconds timeout = 2000ms) {
  if (!c.tcp) return test::receiveDatagram(c.fd.get(), timeout);
  return test::readStreamMessage(c.fd.get(), timeout).value_or(std::vector<std::uint8_t>{});
}

// Reads Data indications until one carries ICMP, and checks it names `peer`.
void expectIcmp(TurnTestClient& c, const wire::SocketAddress& peer, std::uint8_t type,
                std::uint8_t code) {
  for (int i = 0; i < 4; ++i) {
    const auto bytes = nextMessage(c);
    REQUIRE_FALSE(bytes.empty());
    const auto view = wire::MessageView::parse(bytes);
    REQUIRE(view.has_value());
    const auto m = client::TurnSession::readDataIndication(*view);
    REQUIRE(m.has_value());
    if (!m->icmp) continue;
    CHECK(m->peer == peer);
    CHECK(m->icmp->type == type);
    CHECK(m->icmp->code == code);
    CHECK(m->icmp->error_data == 0);
    CHECK_FALSE(m->data.has_value());
    return;
  }
  FAIL("no Data indication with ICMP");
}

// A live peer on kPeerHost talks to the client through the relay both ways: the relay socket
// that reported the ICMP error still reads and writes.
void expectRelayStillWorks(TurnTestClient& c) {
  auto peer = test::connectedSocket(false, {kPeerHost, 0}, *c.session.relayed());
  const auto peer_address = io::localAddress(peer.get());
  const std::vector<std::uint8_t> ping{'p', 'i', 'n', 'g'};
  sendTo(c, peer_address, ping);
  CHECK(test::receiveDatagram(peer.get(), 2000ms) == ping);
  const std::vector<std::uint8_t> pong{'p', 'o', 'n', 'g'};
  test::sendRaw(peer.get(), pong);
  const auto bytes = nextMessage(c);
  const auto view = wire::MessageView::parse(bytes);
  REQUIRE(view.has_value());
  const auto m = client::TurnSession::readDataIndication(*view);
  REQUIRE(m.has_value());
  CHECK(m->peer == peer_address);
  REQUIRE(m->data.has_value());
  CHECK(std::vector<std::uint8_t>(m->data->begin(), m->data->end()) == pong);
}

std::string scrape(const TernServer& server) {
  REQUIRE(server.http().has_value());
  const auto r = app::httpRequest(*server.http(), "GET", "/metrics", 5s);
  REQUIRE(r.status == 200);
  return r.body;
}

}  // namespace

TEST_CASE(
    "a datagram to a closed UDP port comes back as ICMP port unreachable in a Data indication (RFC "
    "8656 §11.5)") {
  bool tcp = false;
  SUBCASE("client over UDP") { tcp = false; }
  SUBCASE("client over TCP") { tcp = true; }
  TernServer server(serverArgs());
  auto c = allocatedClient(server, tcp);
  const auto closed = closedUdpPort(kPeerHost);
  permit(c, closed);
  sendTo(c, closed, {'h', 'i'});
  expectIcmp(c, closed, kV4Unreachable, kV4PortUnreachable);
  expectRelayStillWorks(c);
  CHECK(scrape(server).find("tern_icmp_indications_total 1") != std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "ICMP about a peer bound to a channel still comes in a Data indication (RFC 8656 §11.5, §12)") {
  TernServer server(serverArgs());
  auto c = allocatedClient(server, false);
  const auto closed = closedUdpPort(kPeerHost);
  REQUIRE(c.transact([&] { return c.session.channelBind(0x4001, closed); }) ==
          TurnTestClient::Outcome::kSuccess);
  const std::vector<std::uint8_t> payload{'c', 'h'};
  test::sendRaw(c.fd.get(),
                client::TurnSession::channelData(0x4001, {payload.data(), payload.size()}, false));
  expectIcmp(c, closed, kV4Unreachable, kV4PortUnreachable);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("datagrams right behind one to a closed port still reach a live peer") {
  TernServer server(serverArgs());
  auto c = allocatedClient(server, false);
  const auto closed = closedUdpPort(kPeerHost);
  auto peer = test::connectedSocket(false, {kPeerHost, 0}, *c.session.relayed());
  const auto live = io::localAddress(peer.get());
  permit(c, closed);  // one permission covers both: permissions are per IP (RFC 8656 §9)
  // Linux fails the relay socket's next send once with the pending ICMP error; tern sends
  // that datagram again rather than lose it.
  for (std::uint8_t i = 0; i < 5; ++i) {
    sendTo(c, closed, {'x', i});
    sendTo(c, live, {'y', i});
  }
  for (std::uint8_t i = 0; i < 5; ++i) {
    const std::vector<std::uint8_t> expected{'y', i};
    CHECK(test::receiveDatagram(peer.get(), 2000ms) == expected);
  }
  expectIcmp(c, closed, kV4Unreachable, kV4PortUnreachable);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "an IPv6 relayed address passes on ICMPv6 port unreachable (RFC 8656 §11.5, RFC 4443 §3.1)") {
  // Loopback has one IPv6 address, ::1, the relay's own: only the lab option lets a client
  // reach a port there that is no live relayed address.
  auto args = serverArgs();
  args.insert(args.end(), {"--allow-peer", "::1/128", "--allow-own-address-peers", "true"});
  TernServer server(args);
  auto c = allocatedClient(server, false, 0x02);
  REQUIRE(c.session.relayed()->ip.family() == wire::AddressFamily::kIPv6);
  const auto closed = closedUdpPort(kLoopbackV6);
  permit(c, closed);
  sendTo(c, closed, {'h', 'i'});
  expectIcmp(c, closed, kV6Unreachable, kV6PortUnreachable);
  CHECK(scrape(server).find("tern_icmp_indications_total 1") != std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}
