// RFC 8016 (Mobility with TURN) against a real `tern serve --workers 2`: tern's own client
// moving its allocation from socket to socket until moves both within a worker and across workers (SO_REUSEPORT
// put the new 5-tuple on the other worker: the allocation is handed over) have happened, the
// channel relaying both ways after each. A forged ticket gets 400. (coturn's
// `turnutils_uclient -M` is in relay_cases_test.cpp, also run with the fast path on.)
#include <doctest/doctest.h>

#include <chrono>
#include <regex>
#include <string>
#include <vector>

#include "relay/app/http_request.hpp"
#include "relay/client/turn_session.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/channel_data.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/turn_test_client.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::TernServer;
using test::TurnTestClient;

namespace {

constexpr const char* kUser = "mobile";
constexpr const char* kPassword = "mobile-password";
constexpr const char* kSecret = "mobility-secret";
constexpr std::uint16_t kChannel = 0x4000;
const wire::IpAddress kLoopback = *wire::IpAddress::parse("127.0.0.1");
// Peers live on 127.0.0.2: 127.0.0.1 is the relay's own address (the own-address rule).
const wire::IpAddress kPeerHost = *wire::IpAddress::parse("127.0.0.2");

std::vector<std::string> serverArgs() {
  static const std::string secret_file = test::temporaryFile(std::string(kSecret) + "\n");
  return {"--realm",          "tern.test",
          "--user",           std::string(kUser) + ":" + kPassword,
          "--auth-secret-file", secret_file,
          "--relay-ip",       "127.0.0.1",
          "--relay-ports",    "60000-60999",
          "--allow-peer",     "127.0.0.0/8",
          "--metrics-listen", "127.0.0.1:0"};
}

TurnTestClient::Outcome refresh(TurnTestClient& c) {
  return c.transact([&] { return c.session.refresh(std::nullopt); });
}

// The client on a new socket (a new source port: a new 5-tuple), same session and ticket.
TurnTestClient movedTo(const TernServer& server, const TurnTestClient& from) {
  TurnTestClient c({kLoopback, 0}, server.udp(), kUser, kPassword, false);
  c.session = from.session;
  c.session.addressChanged();
  return c;
}

// ChannelData both ways between the client and `peer` through the relay.
void expectChannelWorks(TurnTestClient& c, int peer, int round) {
  const std::vector<std::uint8_t> ping{'p', 'i', 'n', 'g', static_cast<std::uint8_t>(round)};
  test::sendRaw(c.fd.get(), client::TurnSession::channelData(kChannel, {ping.data(), ping.size()}, false));
  CHECK(test::receiveDatagram(peer, 2000ms) == ping);
  const std::vector<std::uint8_t> pong{'p', 'o', 'n', 'g', static_cast<std::uint8_t>(round)};
  test::sendRaw(peer, pong);
  const auto bytes = test::receiveDatagram(c.fd.get(), 2000ms);
  const auto message = wire::ChannelDataView::parse(bytes);
  REQUIRE(message.has_value());
  CHECK(message->channel == kChannel);
  CHECK(std::vector<std::uint8_t>(message->data.begin(), message->data.end()) == pong);
}

// The "allocation moved" line for a move to `client`, once the server has logged it.
std::string moveLine(TernServer& server, const wire::SocketAddress& client) {
  const auto line = server.process().waitForLine("allocation moved from=", 5s).has_value()
                        ? server.process().waitForLine(" to=" + client.toString() + " ", 5s)
                        : std::nullopt;
  REQUIRE(line.has_value());
  return *line;
}

std::string scrape(const TernServer& server) {
  REQUIRE(server.http().has_value());
  const auto r = app::httpRequest(*server.http(), "GET", "/metrics", 5s);
  REQUIRE(r.status == 200);
  return r.body;
}

}  // namespace

TEST_CASE("the tern client moves its UDP allocation from socket to socket within and across workers (RFC 8016)") {
  TernServer server(serverArgs());
  TurnTestClient c({kLoopback, 0}, server.udp(), kUser, kPassword, false);
  client::TurnSession::AllocateOptions options;
  options.mobility = true;
  REQUIRE(c.transact([&] { return c.session.allocate(options); }) == TurnTestClient::Outcome::kSuccess);
  REQUIRE_FALSE(c.session.mobilityTicket().empty());
  const auto relayed = *c.session.relayed();
  auto peer = test::connectedSocket(false, {kPeerHost, 0}, relayed);
  const auto peer_address = io::localAddress(peer.get());
  const wire::SocketAddress peers[] = {peer_address};
  REQUIRE(c.transact([&] { return c.session.createPermission(peers); }) == TurnTestClient::Outcome::kSuccess);
  REQUIRE(c.transact([&] { return c.session.channelBind(kChannel, peer_address); }) ==
          TurnTestClient::Outcome::kSuccess);
  expectChannelWorks(c, peer.get(), 0);

  // Which worker the kernel picks for a new source port is its hash's business: move until
  // both kinds of move have happened (each move is one or the other with even odds).
  bool same_worker = false;
  bool cross_worker = false;
  int moves = 0;
  while ((!same_worker || !cross_worker) && moves < 40) {
    TurnTestClient next = movedTo(server, c);
    const auto old_ticket = c.session.mobilityTicket();
    REQUIRE(refresh(next) == TurnTestClient::Outcome::kSuccess);
    ++moves;
    // Same relayed address, a new ticket.
    CHECK(next.session.mobilityTicket() != old_ticket);
    const std::string line = moveLine(server, io::localAddress(next.fd.get()));
    CHECK(line.find("from=" + io::localAddress(c.fd.get()).toString()) != std::string::npos);
    if (line.find("cross_worker=1") != std::string::npos) {
      cross_worker = true;
    } else {
      same_worker = true;
    }
    expectChannelWorks(next, peer.get(), moves);
    c = std::move(next);
  }
  CHECK(same_worker);
  CHECK(cross_worker);
  const std::string metrics = scrape(server);
  CHECK(std::regex_search(metrics, std::regex("tern_allocations_moved_total\\{cross_worker=\"true\"\\} [1-9]")));
  CHECK(std::regex_search(metrics, std::regex("tern_allocations_moved_total\\{cross_worker=\"false\"\\} [1-9]")));
  CHECK(std::regex_search(metrics, std::regex("tern_allocations_active\\{[^}]*transport=\"udp\"[^}]*\\} 1\\b")));

  // The allocation still ends cleanly where it lives now.
  REQUIRE(c.transact([&] { return c.session.refresh(0); }) == TurnTestClient::Outcome::kSuccess);
  CHECK(server.process().waitForLine("allocation ended").has_value());
}

TEST_CASE("a forged MOBILITY-TICKET is refused with 400 and the allocation stays (RFC 8016 §3.2)") {
  TernServer server(serverArgs());
  TurnTestClient c({kLoopback, 0}, server.udp(), kUser, kPassword, false);
  client::TurnSession::AllocateOptions options;
  options.mobility = true;
  REQUIRE(c.transact([&] { return c.session.allocate(options); }) == TurnTestClient::Outcome::kSuccess);
  TurnTestClient thief = movedTo(server, c);
  auto forged = c.session.mobilityTicket();
  forged[10] = forged[10] == 'A' ? 'B' : 'A';
  thief.session.setMobilityTicket(forged);
  CHECK(refresh(thief) == TurnTestClient::Outcome::kError);
  CHECK(thief.session.lastErrorCode() == 400);
  CHECK(refresh(c) == TurnTestClient::Outcome::kSuccess);
  CHECK(server.process().output().find("allocation moved") == std::string::npos);
}

