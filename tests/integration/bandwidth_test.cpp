// Bandwidth limits against a real `tern serve` with two workers: tern's own client floods a
// channel both ways above --max-bps (or, with two more allocations of its user, above
// --max-bps-per-user) and loses what the limit predicts, counted in /metrics, while coturn's
// turnutils_uclient makes a call under the limit on the same server at the same time and
// loses nothing. Bounds come from the time the flood took, so a slow machine widens them.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/socket.h>

#include <ctime>
#include <fstream>
#include <thread>

#include "auth/rest_credentials.hpp"
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

constexpr const char* kSecret = "bandwidth-secret";
// Peers live on 127.0.0.2: 127.0.0.1 is the relay's own address.
constexpr const char* kPeerHost = "127.0.0.2";
constexpr std::uint16_t kChannel = 0x4000;
// 200 kbit/s: 25,000 bytes a second each way, and a burst of as many.
constexpr double kLimitBytesPerSecond = 25'000;
constexpr std::size_t kPacket = 1000;

std::vector<std::string> relayArgs(std::vector<std::string> extra) {
  std::vector<std::string> args{"--auth-secret", kSecret, "--relay-ip", "127.0.0.1", "--relay-ports", "64000-64499",
                                "--allow-peer", "127.0.0.0/8", "--metrics-listen", "127.0.0.1:0"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// A UDP allocation of a TURN REST user with a channel to `peer`.
struct Call {
  Call(const TernServer& server, const char* user, const wire::SocketAddress& peer)
      : credential(auth::mintRestCredential(kSecret, user, std::time(nullptr), 600)),
        client(test::socketAddress("127.0.0.1", 0), server.udp(), credential.username, credential.password, false) {
    REQUIRE(client.transact([&] { return client.session.allocate({}); }) == Outcome::kSuccess);
    REQUIRE(client.transact([&] { return client.session.channelBind(kChannel, peer); }) == Outcome::kSuccess);
    relayed = *client.session.relayed();
  }
  auth::RestCredential credential;
  test::TurnTestClient client;
  wire::SocketAddress relayed;
};

// Datagrams waiting on `fd`, read without blocking.
std::size_t drain(int fd) {
  std::size_t n = 0;
  std::uint8_t buf[2048];
  while (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) ++n;
  return n;
}

void sendTo(int fd, const wire::SocketAddress& to, const std::vector<std::uint8_t>& bytes) {
  sockaddr_storage ss{};
  const socklen_t len = io::toSockaddr(to, ss);
  REQUIRE(::sendto(fd, bytes.data(), bytes.size(), 0, reinterpret_cast<const sockaddr*>(&ss), len) ==
          static_cast<ssize_t>(bytes.size()));
}

// What may pass in `seconds` at the limit: the burst, the refill, and one packet of debt
// (the relay's clock and ours start apart by a few milliseconds: 10 % on top).
double mostPassing(double seconds) { return 1.1 * ((1 + seconds) * kLimitBytesPerSecond / kPacket + 1); }

}  // namespace

TEST_CASE("--max-bps: a flood above the limit loses packets, counted in /metrics, while a call under it loses none") {
  TernServer server(relayArgs({"--max-bps", "200K"}));
  test::EchoPeer echo(kPeerHost);
  // The call under the limit: 160-byte messages every 20 ms, 64 kbit/s each way, for 3 s.
  test::ChildProcess call({"/usr/bin/turnutils_uclient", "-c", "-W", kSecret, "-u", "light", "-e", kPeerHost, "-r",
                           std::to_string(echo.port()), "-p", std::to_string(server.udp().port), "-n", "150", "-l",
                           "160", "-z", "20", "127.0.0.1"});

  // The flood: 1000-byte packets every 5 ms each way, 1.6 Mbit/s: eight times the limit.
  auto peer = io::openBoundSocket(io::SocketKind::kUdp, test::socketAddress(kPeerHost, 0), {});
  Call flood(server, "heavy", io::localAddress(peer.get()));
  const auto payload = std::vector<std::uint8_t>(kPacket, 0x5A);
  const auto channel_data = client::TurnSession::channelData(kChannel, {payload.data(), payload.size()}, false);
  constexpr std::size_t kSent = 400;
  std::size_t to_peer = 0;
  std::size_t to_client = 0;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < kSent; ++i) {
    test::sendRaw(flood.client.fd.get(), channel_data);
    sendTo(peer.get(), flood.relayed, payload);
    std::this_thread::sleep_for(5ms);
    to_peer += drain(peer.get());
    to_client += drain(flood.client.fd.get());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::this_thread::sleep_for(200ms);
  to_peer += drain(peer.get());
  to_client += drain(flood.client.fd.get());
  INFO("flood took " << seconds << " s; to peer " << to_peer << ", to client " << to_client << " of " << kSent);
  // At most what the limit lets through in that time, and (the burst alone) a fair share of it.
  CHECK(static_cast<double>(to_peer) <= mostPassing(seconds));
  CHECK(static_cast<double>(to_client) <= mostPassing(seconds));
  CHECK(to_peer >= 20);
  CHECK(to_client >= 20);
  // Each packet the relay refused is one bandwidth_limit drop (and the rest nothing else).
  const std::uint64_t dropped = test::metricValue(server, R"(tern_dropped_packets_total{reason="bandwidth_limit"})");
  const std::size_t lost = 2 * kSent - to_peer - to_client;
  CHECK(dropped <= lost);
  CHECK(static_cast<double>(dropped) >= 0.9 * static_cast<double>(lost));

  test::expectNoLoss(call, 150);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("--max-bps-per-user: three allocations of one user each under the limit share it, another user keeps all of it") {
  TernServer server(relayArgs({"--max-bps-per-user", "200K"}));
  test::EchoPeer echo(kPeerHost);
  // Another user's call at half the limit (1000-byte messages every 80 ms) for 3.2 s.
  test::ChildProcess call({"/usr/bin/turnutils_uclient", "-c", "-W", kSecret, "-u", "loner", "-e", kPeerHost, "-r",
                           std::to_string(echo.port()), "-p", std::to_string(server.udp().port), "-n", "40", "-l",
                           "1000", "-z", "80", "127.0.0.1"});

  // Three allocations of "crowd" from three sockets (so most likely on both workers), each
  // at 80 % of the limit (a 1000-byte packet every 50 ms): together 2.4 times it.
  auto peer = io::openBoundSocket(io::SocketKind::kUdp, test::socketAddress(kPeerHost, 0), {});
  const auto peer_address = io::localAddress(peer.get());
  std::vector<std::unique_ptr<Call>> crowd;
  for (int i = 0; i < 3; ++i) crowd.push_back(std::make_unique<Call>(server, "crowd", peer_address));
  const auto payload = std::vector<std::uint8_t>(kPacket, 0x5A);
  const auto channel_data = client::TurnSession::channelData(kChannel, {payload.data(), payload.size()}, false);
  constexpr std::size_t kRounds = 60;
  std::size_t to_peer = 0;
  const auto start = std::chrono::steady_clock::now();
  for (std::size_t i = 0; i < kRounds; ++i) {
    for (const auto& c : crowd) test::sendRaw(c->client.fd.get(), channel_data);
    std::this_thread::sleep_for(50ms);
    to_peer += drain(peer.get());
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::this_thread::sleep_for(200ms);
  to_peer += drain(peer.get());
  const std::size_t sent = kRounds * crowd.size();
  INFO("crowd took " << seconds << " s; to peer " << to_peer << " of " << sent);
  CHECK(static_cast<double>(to_peer) <= mostPassing(seconds));
  CHECK(to_peer >= 20);
  const std::uint64_t dropped = test::metricValue(server, R"(tern_dropped_packets_total{reason="user_bandwidth_limit"})");
  CHECK(dropped <= sent - to_peer);
  CHECK(static_cast<double>(dropped) >= 0.9 * static_cast<double>(sent - to_peer));
  CHECK(test::metricValue(server, R"(tern_dropped_packets_total{reason="bandwidth_limit"})") == 0);

  test::expectNoLoss(call, 40);
  CHECK(server.process().stop(SIGTERM) == 0);
}

