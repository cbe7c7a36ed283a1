// RFC 6062 TCP allocations against a real `tern serve` with two workers: coturn's
// turnutils_uclient -T (two clients whose relays connect to each other: Connect on one side,
// ConnectionAttempt on the other, ConnectionBind on both), and tern's own client with plain
// TCP peers for what uclient does not check: the source address of a Connect, bytes a peer
// sends before the bind, a peer without permission, 447/446/403, and connections closing with
// their allocation.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/socket.h>

#include <ctime>
#include <thread>

#include "auth/rest_credentials.hpp"
#include "relay/wire/attributes.hpp"
#include "support/process.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/turn_test_client.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::TernServer;
using Outcome = client::TurnSession::Outcome;

namespace {

constexpr const char* kSecret = "tcp-allocation-secret";
const wire::IpAddress kClientIp = *wire::IpAddress::parse("127.0.0.1");
// Peers live on 127.0.0.2 and .3: 127.0.0.1 is the relay's own address.
const wire::IpAddress kPeerIp = *wire::IpAddress::parse("127.0.0.2");
const wire::IpAddress kStrangerIp = *wire::IpAddress::parse("127.0.0.3");

std::vector<std::string> relayArgs(std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--auth-secret", kSecret, "--relay-ip", "127.0.0.1", "--relay-ports", "63000-63999",
                                "--allow-peer", "127.0.0.0/8"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// A control connection with a TCP allocation (RFC 6062 §4.1).
struct TcpAllocation {
  explicit TcpAllocation(const TernServer& server, const char* user = "tcp-user")
      : credential(auth::mintRestCredential(kSecret, user, std::time(nullptr), 600)),
        control({kClientIp, 0}, server.tcp(), credential.username, credential.password) {
    client::TurnSession::AllocateOptions options;
    options.transport = wire::attr::RequestedTransport::kTcp;
    REQUIRE(control.transact([&] { return control.session.allocate(options); }) == Outcome::kSuccess);
    REQUIRE(control.session.relayed().has_value());
    relayed = *control.session.relayed();
  }

  // Connect (RFC 6062 §4.3): the CONNECTION-ID on success, else nothing (the code is in
  // control.session.lastErrorCode()).
  std::optional<std::uint32_t> connect(const wire::SocketAddress& peer) {
    if (control.transact([&] { return control.session.connect(peer); }) != Outcome::kSuccess) return std::nullopt;
    auto id = control.view().get<wire::attr::ConnectionId>();
    REQUIRE(id.has_value());
    return id->id;
  }

  // A new data connection bound to `id` (RFC 6062 §4.4); the nonce is the control
  // connection's, which is good for every socket of this host.
  io::FileDescriptor bind(const TernServer& server, std::uint32_t id) {
    auto data = test::connectedSocket(true, {kClientIp, 0}, server.tcp());
    // Read exactly the response: the peer's bytes may follow it in the same segment.
    test::sendRaw(data.get(), control.session.connectionBind(id));
    auto response = test::readStreamMessage(data.get(), 3s);
    REQUIRE(response.has_value());
    auto view = wire::MessageView::parse(*response);
    REQUIRE(view.has_value());
    REQUIRE(view->messageClass() == wire::MessageClass::kSuccessResponse);
    return data;
  }

  void createPermission(const wire::SocketAddress& peer) {
    const wire::SocketAddress peers[] = {peer};
    REQUIRE(control.transact([&] { return control.session.createPermission(peers); }) == Outcome::kSuccess);
  }

  auth::RestCredential credential;
  test::TurnTestClient control;
  wire::SocketAddress relayed;
};

wire::SocketAddress remoteAddress(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof ss;
  REQUIRE(::getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) == 0);
  return io::fromSockaddr(reinterpret_cast<sockaddr*>(&ss));
}

std::vector<std::uint8_t> pattern(std::size_t size, std::uint8_t seed) {
  std::vector<std::uint8_t> out(size);
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::uint8_t>(seed + i * 7 + (i >> 8));
  return out;
}

// Sends `bytes` on `from` (from a thread: a large write blocks until the far end reads) and
// reads them back on `to`.
std::vector<std::uint8_t> carry(int from, int to, const std::vector<std::uint8_t>& bytes) {
  std::thread writer([&] { test::sendRaw(from, bytes); });
  auto received = test::readBytes(to, bytes.size(), 10s);
  writer.join();
  return received;
}

}  // namespace

TEST_CASE("turnutils_uclient with RFC 6062 TCP allocations (-T) relays with zero loss") {
  TernServer server(relayArgs());
  // Four clients in pairs; each pair's relays connect to each other, and most data
  // connections land on the worker that does not own their peer connection.
  auto r = test::runUclient({"-T", "-W", kSecret, "-u", "uclient-tcp", "-p", std::to_string(server.tcp().port),
                             "-n", "50", "-m", "4", "-l", "1000", "-z", "5", "127.0.0.1"});
  INFO(r.output);
  CHECK(r.lost == 0);
  CHECK(r.sent == 200);
  CHECK(r.received == 200);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("Connect dials the peer from the relayed address, the bound connection carries bytes both ways") {
  TernServer server(relayArgs());
  auto listener = test::listeningSocket({kPeerIp, 0});
  const wire::SocketAddress peer_address = io::localAddress(listener.get());
  TcpAllocation a(server);
  const auto id = a.connect(peer_address);
  REQUIRE(id.has_value());
  auto peer = test::acceptWithin(listener.get(), 3s);
  REQUIRE(peer);
  // RFC 6062 §5.2: the connection to the peer comes from the relayed transport address.
  CHECK(remoteAddress(peer.get()) == a.relayed);
  auto data = a.bind(server, *id);

  const auto small = pattern(100, 1);
  CHECK(carry(data.get(), peer.get(), small) == small);
  // Megabytes each way: more than any queue, so the pipe's flow control has to work.
  const auto big_up = pattern(3 << 20, 2);
  CHECK(carry(data.get(), peer.get(), big_up) == big_up);
  const auto big_down = pattern(3 << 20, 3);
  CHECK(carry(peer.get(), data.get(), big_down) == big_down);

  // The peer hangs up: the data connection follows.
  peer = io::FileDescriptor{};
  CHECK(test::closedByPeer(data.get(), 3s));
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("--max-bps slows a bound connection to the limit each way by pausing it, without losing a byte") {
  // 4 Mbit/s: 500,000 bytes a second each way, after a burst of as many.
  TernServer server(relayArgs({"--max-bps", "4M", "--metrics-listen", "127.0.0.1:0"}));
  auto listener = test::listeningSocket({kPeerIp, 0});
  TcpAllocation a(server);
  const auto id = a.connect(io::localAddress(listener.get()));
  REQUIRE(id.has_value());
  auto peer = test::acceptWithin(listener.get(), 3s);
  REQUIRE(peer);
  auto data = a.bind(server, *id);
  auto timed = [](auto&& work) {
    const auto start = std::chrono::steady_clock::now();
    work();
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  };
  // Beyond the burst, 1,000,000 bytes up take 2 s at the limit and 500,000 down 1 s; less one
  // 64 KiB read a paused side may run ahead, 1.87 s and 0.87 s at the very least.
  const auto up = pattern(1'500'000, 6);
  const double up_seconds = timed([&] { CHECK(carry(data.get(), peer.get(), up) == up); });
  const auto down = pattern(1'000'000, 7);
  const double down_seconds = timed([&] { CHECK(carry(peer.get(), data.get(), down) == down); });
  INFO("up " << up_seconds << " s, down " << down_seconds << " s");
  CHECK(up_seconds >= 1.6);
  CHECK(down_seconds >= 0.7);
  CHECK(test::metricValue(server, R"(tern_bandwidth_pauses_total{limit="allocation"})") >= 2);
  CHECK(test::metricValue(server, R"(tern_relayed_bytes_total{direction="client_to_peer",transport="tcp",path="user"})") ==
        up.size());
  CHECK(test::metricValue(server, R"(tern_dropped_packets_total{reason="bandwidth_limit"})") == 0);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("A peer connecting to the relayed address reaches the client through ConnectionAttempt") {
  TernServer server(relayArgs());
  TcpAllocation a(server);
  // RFC 6062 §5.3: without a permission the connection is closed at once.
  auto stranger = test::connectedSocket(true, {kStrangerIp, 0}, a.relayed);
  CHECK(test::closedByPeer(stranger.get(), 3s));

  a.createPermission({kPeerIp, 0});
  auto peer = test::connectedSocket(true, {kPeerIp, 0}, a.relayed);
  // Bytes sent before the client binds the connection wait for it.
  const auto early = pattern(5000, 4);
  test::sendRaw(peer.get(), early);
  const auto indication = test::readStreamMessage(a.control.fd.get(), 3s);
  REQUIRE(indication.has_value());
  auto view = wire::MessageView::parse(*indication);
  REQUIRE(view.has_value());
  CHECK(view->messageClass() == wire::MessageClass::kIndication);
  CHECK(view->method() == static_cast<std::uint16_t>(wire::Method::kConnectionAttempt));
  const auto from = view->get<wire::attr::XorPeerAddress>();
  REQUIRE(from.has_value());
  CHECK(from->address == io::localAddress(peer.get()));
  const auto id = view->get<wire::attr::ConnectionId>();
  REQUIRE(id.has_value());

  auto data = a.bind(server, id->id);
  CHECK(test::readBytes(data.get(), early.size(), 3s) == early);
  const auto reply = pattern(777, 5);
  CHECK(carry(data.get(), peer.get(), reply) == reply);

  // Deleting the allocation closes its connections, both sides.
  REQUIRE(a.control.transact([&] { return a.control.session.refresh(0); }) == Outcome::kSuccess);
  CHECK(test::closedByPeer(peer.get(), 3s));
  CHECK(test::closedByPeer(data.get(), 3s));
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("Connect refusals: 447 for a closed port, 403 for the relay's own service port, 446 twice to one peer") {
  TernServer server(relayArgs());
  TcpAllocation a(server);
  wire::SocketAddress closed_port;
  {
    auto gone = test::listeningSocket({kPeerIp, 0});
    closed_port = io::localAddress(gone.get());
  }
  CHECK_FALSE(a.connect(closed_port).has_value());
  CHECK(a.control.session.lastErrorCode() == 447);
  CHECK_FALSE(a.connect(server.tcp()).has_value());
  CHECK(a.control.session.lastErrorCode() == 403);

  auto listener = test::listeningSocket({kPeerIp, 0});
  const wire::SocketAddress peer_address = io::localAddress(listener.get());
  REQUIRE(a.connect(peer_address).has_value());
  CHECK_FALSE(a.connect(peer_address).has_value());
  CHECK(a.control.session.lastErrorCode() == 446);

  // A ConnectionBind naming no pending connection is 400.
  auto data = test::connectedSocket(true, {kClientIp, 0}, server.tcp());
  auto response = test::exchange(data.get(), true, a.control.session.connectionBind(0x00ABCDEF));
  REQUIRE(response.has_value());
  auto view = wire::MessageView::parse(*response);
  REQUIRE(view.has_value());
  const auto code = view->get<wire::attr::ErrorCode>();
  REQUIRE(code.has_value());
  CHECK(code->code == 400);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("Closing the control connection ends the allocation and its data connections") {
  TernServer server(relayArgs());
  auto listener = test::listeningSocket({kPeerIp, 0});
  TcpAllocation a(server);
  const auto id = a.connect(io::localAddress(listener.get()));
  REQUIRE(id.has_value());
  auto peer = test::acceptWithin(listener.get(), 3s);
  REQUIRE(peer);
  auto data = a.bind(server, *id);
  a.control.fd = io::FileDescriptor{};
  CHECK(test::closedByPeer(peer.get(), 3s));
  CHECK(test::closedByPeer(data.get(), 3s));
  CHECK(server.process().waitForLine("reason=connection_closed", 3s).has_value());
  CHECK(server.process().stop(SIGTERM) == 0);
}
