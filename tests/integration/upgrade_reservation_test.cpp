// An EVEN-PORT reservation (RFC 8656 §7.2) across an in-place upgrade (docs/upgrade.md): a
// client allocates an even port with the R bit, so the server keeps the next one for a later
// Allocate carrying the RESERVATION-TOKEN (an RTP/RTCP pair). The server is upgraded in
// between; the new process must honour the token with the reserved odd port.
#include <doctest/doctest.h>
#include <signal.h>

#include <ctime>

#include "auth/rest_credentials.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/turn_test_client.hpp"
#include "upgrade_support.hpp"

using namespace tern;
using namespace tern::test::upgrade;
using test::TernServer;
using Outcome = client::TurnSession::Outcome;

TEST_CASE(
    "An EVEN-PORT reservation moves with an upgrade: the new process gives its token the odd port "
    "(RFC 8656 §7.2)") {
  becomeSubreaper();
  Workspace w;
  TernServer server(w.args(), nullptr, w.binary);
  const auto credential = auth::mintRestCredential(kSecret, "rtp", std::time(nullptr), 600);
  test::TurnTestClient rtp(test::socketAddress("127.0.0.1", 0), server.udp(), credential.username,
                           credential.password, false);
  client::TurnSession::AllocateOptions even;
  even.even_port = true;  // R: keep the next port too
  REQUIRE(rtp.transact([&] { return rtp.session.allocate(even); }) == Outcome::kSuccess);
  const wire::SocketAddress relayed = *rtp.session.relayed();
  CHECK(relayed.port % 2 == 0);
  const auto token = rtp.view().get<wire::attr::ReservationToken>();
  REQUIRE(token.has_value());

  ::kill(server.process().pid(), SIGUSR2);
  AdoptedProcess successor(upgradedPid(server.process()));
  REQUIRE(successor.pid() > 0);
  // The allocation and the reservation both moved: the old process has nothing left.
  CHECK(server.process().wait(15s) == 0);
  INFO(server.process().output());
  CHECK(server.process().output().find("reservations taken over") != std::string::npos);

  test::TurnTestClient rtcp(test::socketAddress("127.0.0.1", 0), server.udp(), credential.username,
                            credential.password, false);
  client::TurnSession::AllocateOptions claim;
  claim.reservation_token = token->token;
  const Outcome outcome = rtcp.transact([&] { return rtcp.session.allocate(claim); });
  CAPTURE(rtcp.session.lastErrorCode());
  REQUIRE(outcome == Outcome::kSuccess);
  CHECK(rtcp.session.relayed()->ip == relayed.ip);
  CHECK(rtcp.session.relayed()->port == relayed.port + 1);
  // The token is spent: presented again, it names nothing (508).
  test::TurnTestClient again(test::socketAddress("127.0.0.1", 0), server.udp(), credential.username,
                             credential.password, false);
  CHECK(again.transact([&] { return again.session.allocate(claim); }) == Outcome::kError);
  CHECK(again.session.lastErrorCode() == 508);
  CHECK(successor.stop(SIGTERM) == 0);
}
