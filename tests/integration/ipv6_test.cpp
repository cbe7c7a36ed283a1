// IPv6 TURN (RFC 8656 §7.2, §9-§12) against a real `tern serve` listening on 127.0.0.1 and
// [::1], with coturn's turnutils_uclient: TCP over IPv6. (IPv6 relayed addresses for IPv4
// clients (-x), IPv4 ones for IPv6 clients (-X), IPv6 over UDP and dual allocations (-Z) are in
// relay_cases_test.cpp, also run with the fast path on.) Loopback has a single IPv6 address,
// so the peers share ::1 with the relay: --allow-own-address-peers lets them in, and a plain
// relay refuses them (403), which is checked too.
#include <doctest/doctest.h>
#include <signal.h>

#include <string>
#include <vector>

#include "support/process.hpp"
#include "support/tern_server.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using test::TernServer;

namespace {

constexpr const char* kSecret = "ipv6-secret";

std::vector<std::string> dualStackArgs(bool own_address_peers = true) {
  static const std::string secret_file = test::temporaryFile(std::string(kSecret) + "\n");
  std::vector<std::string> args{"--listen", "127.0.0.1:0", "--listen", "[::1]:0", "--auth-secret-file", secret_file,
                                "--relay-ip", "127.0.0.1", "--relay-ip", "::1", "--relay-ports", "60000-60999",
                                "--allow-peer", "127.0.0.0/8", "--allow-peer", "::1/128"};
  if (own_address_peers) args.insert(args.end(), {"--allow-own-address-peers", "true"});
  return args;
}

// turnutils_uclient against `server` (an IPv4 or IPv6 listener) relaying to an echo peer.
test::UclientReport uclient(const wire::SocketAddress& server, const char* peer_host, std::uint16_t peer_port,
                            std::vector<std::string> flags) {
  std::vector<std::string> args{"-W", kSecret, "-u", "ipv6", "-e", peer_host, "-r", std::to_string(peer_port),
                                "-p", std::to_string(server.port), "-n", "50", "-l", "160", "-z", "5"};
  args.insert(args.end(), flags.begin(), flags.end());
  args.push_back(server.ip.toString());
  return test::runUclient(args);
}

void checkNoLoss(const test::UclientReport& r, long expected) {
  INFO(r.output);
  CHECK(r.lost == 0);
  CHECK(r.sent == expected);
  CHECK(r.received == expected);
}

}  // namespace

TEST_CASE("turnutils_uclient over TCP over IPv6 relays to a peer on ::1") {
  TernServer server(dualStackArgs());
  test::EchoPeer peer("::1");
  REQUIRE_FALSE(server.tcp(1).ip.isV4());
  checkNoLoss(uclient(server.tcp(1), "::1", peer.port(), {"-t", "-c", "-m", "2"}), 100);
  CHECK(server.process().output().find("client=[::1]:") != std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("without --allow-own-address-peers a peer sharing the relay's ::1 is refused") {
  TernServer server(dualStackArgs(false));
  test::EchoPeer peer("::1");
  const auto r = uclient(server.udp(1), "::1", peer.port(), {"-c", "-m", "1"});
  INFO(r.output);
  CHECK(r.received <= 0);
  server.process().waitForLine("code=403");
  CHECK(server.process().output().find("relay's own address") != std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}
