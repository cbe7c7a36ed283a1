// An upgrade (docs/upgrade.md) under a TCP call that reaches tern through HAProxy with the
// PROXY protocol: the connection moves to the new process with the client's address from the
// header, which the new process never sees, so its usage record must still name the client.
#include <doctest/doctest.h>
#include <signal.h>

#include <regex>
#include <thread>

#include "haproxy.hpp"
#include "support/process.hpp"
#include "support/tern_server.hpp"
#include "support/turn_tools.hpp"
#include "upgrade_support.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::TernServer;
using namespace test::upgrade;

TEST_CASE(
    "A TCP call through HAProxy send-proxy-v2 moves in an upgrade and keeps the client's address") {
  becomeSubreaper();
  Workspace w;
  TernServer server(w.args({"--proxy-protocol-from", "127.0.0.1/32"}), nullptr, w.binary);
  test::Haproxy haproxy(server.tcp(), "send-proxy-v2");
  test::EchoPeer peer(kPeerHost);
  // The client is 127.0.0.3 (the peer is 127.0.0.2; HAProxy and tern are 127.0.0.1).
  auto call = startCall(haproxy.address().port, peer.port(), 250, {"-t", "-L", "127.0.0.3"});
  REQUIRE(waitForCount(server.process(), "allocation created", 2));
  std::this_thread::sleep_for(500ms);

  ::kill(server.process().pid(), SIGUSR2);
  const pid_t next = upgradedPid(server.process());
  INFO(server.process().output());
  REQUIRE(next > 0);
  AdoptedProcess successor(next);
  test::expectNoLoss(call, 250);
  // uclient's trial allocation ends at once; the call's is the one that carried the media.
  const auto ended = server.process().waitForLine("packets_to_peer=250");
  const std::string log = server.process().output();
  INFO(log);
  CHECK(std::regex_search(
      log, std::regex("handed over worker=[0-9]+ allocations=[0-9]+ tcp_connections=[1-9]")));
  // The record the new process wrote counts the whole call, under the client's address.
  REQUIRE(ended.has_value());
  CHECK(ended->find("allocation ended client=127.0.0.3:") != std::string::npos);
  CHECK(countOf(log, "allocation created client=127.0.0.1:") == 0);
  CHECK(countOf(log, "allocation ended client=127.0.0.1:") == 0);
  CHECK(successor.stop(SIGTERM) == 0);
}
