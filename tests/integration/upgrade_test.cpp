// Upgrading a running `tern serve` in place (docs/upgrade.md), against real clients: a
// turnutils_uclient call over UDP runs across the upgrade and must lose nothing; the new
// process takes the old one's sockets (same ports, same metrics port) and allocations (the
// usage record counts both processes' packets). Failures leave the old process serving:
// a configuration the new process rejects, a binary that dies at start, an upgrade while
// one is under way or while draining.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <regex>
#include <thread>

#include "relay/app/http_request.hpp"
#include "support/process.hpp"
#include "support/tern_server.hpp"
#include "support/test_certificates.hpp"
#include "support/turn_tools.hpp"
#include "upgrade_support.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::TernServer;
using namespace test::upgrade;

TEST_CASE("SIGUSR2 upgrades under a live UDP call: nothing lost, the old process exits, the new one serves on") {
  becomeSubreaper();
  Workspace w;
  TernServer server(w.args(), nullptr, w.binary);
  test::EchoPeer peer(kPeerHost);
  auto call = startCall(server.udp().port, peer.port(), 250);
  REQUIRE(server.process().waitForLine("allocation created").has_value());
  std::this_thread::sleep_for(1s);

  ::kill(server.process().pid(), SIGUSR2);
  const pid_t next = upgradedPid(server.process());
  REQUIRE(next > 0);
  AdoptedProcess successor(next);
  // Nothing stayed behind (one UDP call), so the old process exits at once, cleanly.
  CHECK(server.process().wait(15s) == 0);
  CHECK(successor.running());

  test::expectNoLoss(call, 250);
  const std::string log = server.process().output();
  INFO(log);
  CHECK(log.find("taken over") != std::string::npos);
  // The usage record, written by the new process, counts the packets of both: every one of
  // the 250 sent reached the peer.
  const auto ended = server.process().waitForLine("allocation ended");
  REQUIRE(ended.has_value());
  CHECK(ended->find("packets_to_peer=250") != std::string::npos);
  // The new process answers on the old one's metrics port.
  const auto ready = app::httpRequest(*server.http(), "GET", "/readyz", 5s);
  CHECK(ready.status == 200);
  CHECK(successor.stop(SIGTERM) == 0);
}

TEST_CASE("A TCP call moves with its connection, and a TLS call stays with the old process until it ends") {
  becomeSubreaper();
  Workspace w;
  const auto& certs = test::testCertificates();
  TernServer server(w.args({"--tls-listen", "127.0.0.1:0", "--cert", certs.chain, "--key", certs.key,
                            "--drain-timeout", "60"}),
                    nullptr, w.binary);
  test::EchoPeer peer(kPeerHost);
  auto tcp = startCall(server.tcp().port, peer.port(), 250, {"-t"});
  auto tls = startCall(server.tls().port, peer.port(), 250, {"-t", "-S"});
  // Each uclient makes a trial allocation before its real one.
  REQUIRE(waitForCount(server.process(), "allocation created", 4));
  std::this_thread::sleep_for(500ms);

  ::kill(server.process().pid(), SIGUSR2);
  const pid_t next = upgradedPid(server.process());
  INFO(server.process().output());
  REQUIRE(next > 0);
  AdoptedProcess successor(next);
  const auto handed = server.process().waitForLine("handed over worker=");
  REQUIRE(handed.has_value());
  test::expectNoLoss(tcp, 250);
  test::expectNoLoss(tls, 250);
  // The TLS call ended in the old process, which then had nothing left and exited.
  CHECK(server.process().wait(20s) == 0);
  const std::string log = server.process().output();
  INFO(log);
  // The TCP client's connections moved (the handing-over line counts them per worker).
  CHECK(std::regex_search(log, std::regex("handed over worker=[0-9]+ allocations=[0-9]+ tcp_connections=[1-9]")));
  CHECK(log.find("drained: every allocation has ended") != std::string::npos);
  CHECK(successor.running());
  CHECK(successor.stop(SIGTERM) == 0);
}

// RFC 6062: uclient -T pairs its clients, each relay connecting to the other's (Connect on one
// side, ConnectionAttempt on the other, ConnectionBind on both), so every byte crosses a peer
// connection and a data connection. All of it moves: the old process has nothing left and
// exits at once, long before the call ends or --drain-timeout runs out.
TEST_CASE(
    "An RFC 6062 call (uclient -T) moves whole in an upgrade: nothing lost, the old process exits "
    "at once") {
  becomeSubreaper();
  Workspace w;
  TernServer server(w.args({"--drain-timeout", "60"}), nullptr, w.binary);
  test::ChildProcess call({"/usr/bin/turnutils_uclient", "-T", "-W", kSecret, "-u", "caller-6062",
                           "-p", std::to_string(server.tcp().port), "-n", "400", "-m", "2", "-l",
                           "160", "-z", "20", "-c", "127.0.0.1"});
  // Both clients allocated and connected before the upgrade (the call lasts 8 s).
  REQUIRE(waitForCount(server.process(), "allocation created", 2));
  std::this_thread::sleep_for(1500ms);

  ::kill(server.process().pid(), SIGUSR2);
  const pid_t next = upgradedPid(server.process());
  INFO(server.process().output());
  REQUIRE(next > 0);
  AdoptedProcess successor(next);
  CHECK(server.process().wait(4s) == 0);
  CHECK(call.running());  // the old process did not wait for the call to end
  const std::string log = server.process().output();
  INFO(log);
  CHECK(
      std::regex_search(log, std::regex("handed over worker=[0-9]+ allocations=[1-9][0-9]* "
                                        "tcp_connections=[1-9][0-9]* rfc6062_connections=[1-9]")));
  test::expectNoLoss(call, 800);
  CHECK(successor.running());
  CHECK(successor.stop(SIGTERM) == 0);
}

TEST_CASE("Two upgrades in a row with tern upgrade: the call carries on through both") {
  becomeSubreaper();
  Workspace w;
  TernServer server(w.args(), nullptr, w.binary);
  test::EchoPeer peer(kPeerHost);
  auto call = startCall(server.udp().port, peer.port(), 300);
  REQUIRE(server.process().waitForLine("allocation created").has_value());
  std::this_thread::sleep_for(500ms);

  const auto first = ternUpgrade(w, server);
  INFO(first.output);
  REQUIRE(first.status == 0);
  CHECK(first.output.find("upgraded: pid ") != std::string::npos);
  AdoptedProcess second(upgradedPid(server.process(), 1));
  CHECK(server.process().wait(15s) == 0);

  const auto again = ternUpgrade(w, server);
  INFO(again.output);
  REQUIRE(again.status == 0);
  AdoptedProcess third(upgradedPid(server.process(), 2));
  CHECK(second.wait(15s) == 0);
  CHECK(third.running());

  test::expectNoLoss(call, 300);
  CHECK(third.stop(SIGTERM) == 0);
}

TEST_CASE("An upgrade the new process cannot take leaves the old one serving: bad configuration, dead binary") {
  becomeSubreaper();
  Workspace w;
  const std::string config = w.path + "/tern.toml";
  test::writeFile(config, "log-level = \"debug\"\n");
  TernServer server(w.args({"--config", config}), nullptr, w.binary);
  test::EchoPeer peer(kPeerHost);
  auto call = startCall(server.udp().port, peer.port(), 250);
  REQUIRE(server.process().waitForLine("allocation created").has_value());

  SUBCASE("a configuration the new process rejects") {
    test::writeFile(config, "max-allocations = \"many\"\n");
    const auto refused = ternUpgrade(w, server);
    INFO(refused.output);
    CHECK(refused.status == 1);
    CHECK(refused.output.find("upgrade failed") != std::string::npos);
  }
  SUBCASE("a binary that dies at start") {
    w.installScript("echo 'broken build' >&2; exit 3");
    const auto refused = ternUpgrade(w, server);
    INFO(refused.output);
    CHECK(refused.status == 1);
    CHECK(refused.output.find("upgrade failed") != std::string::npos);
  }
  CHECK(server.process().output().find("upgrade failed; this process serves on") != std::string::npos);
  test::expectNoLoss(call, 250);
  CHECK(app::httpRequest(*server.http(), "GET", "/readyz", 5s).status == 200);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("A new binary that hangs at start is killed after --upgrade-timeout: the old one serves on, nothing lost") {
  becomeSubreaper();
  Workspace w;
  TernServer server(w.args({"--upgrade-timeout", "2"}), nullptr, w.binary);
  test::EchoPeer peer(kPeerHost);
  auto call = startCall(server.udp().port, peer.port(), 250);
  REQUIRE(server.process().waitForLine("allocation created").has_value());
  // Stands in for a binary that never says it is ready; exec keeps the PID the old process
  // started, so the PID it kills is the one written here.
  const std::string pid_file = w.path + "/hung.pid";
  w.installScript("echo $$ > " + pid_file + "; exec sleep 120");

  const auto began = std::chrono::steady_clock::now();
  const auto refused = ternUpgrade(w, server);
  const auto took = std::chrono::steady_clock::now() - began;
  INFO(refused.output);
  CHECK(refused.status == 1);
  CHECK(refused.output.find("timed out") != std::string::npos);
  CHECK(refused.output.find("--upgrade-timeout 2 s") != std::string::npos);
  CHECK(took < 15s);  // the 2 s allowance, not the 30 s default
  // Killed by its PID (and reaped by the old process, its parent) before `tern upgrade` returned.
  pid_t hung = 0;
  std::ifstream(pid_file) >> hung;
  REQUIRE(hung > 0);
  CHECK(::kill(hung, 0) == -1);
  CHECK(server.process().output().find("upgrade failed; this process serves on") != std::string::npos);
  test::expectNoLoss(call, 250);
  CHECK(app::httpRequest(*server.http(), "GET", "/readyz", 5s).status == 200);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("SIGUSR2 while an upgrade is under way is refused, and the upgrade completes") {
  becomeSubreaper();
  Workspace w;
  const std::string real = w.path + "/tern-real";
  std::filesystem::copy_file(test::ternBinary(), real);
  TernServer server(w.args(), nullptr, w.binary);
  // A new binary that takes a second to start.
  w.installScript("sleep 1; exec " + real + " \"$@\"");
  ::kill(server.process().pid(), SIGUSR2);
  REQUIRE(server.process().waitForLine("upgrade started").has_value());
  ::kill(server.process().pid(), SIGUSR2);
  const auto refused = server.process().waitForLine("upgrade refused");
  REQUIRE(refused.has_value());
  CHECK(refused->find("already in progress") != std::string::npos);
  AdoptedProcess successor(upgradedPid(server.process()));
  CHECK(server.process().wait(15s) == 0);
  CHECK(countOf(server.process().output(), " upgraded pid=") == 1);
  CHECK(successor.stop(SIGTERM) == 0);
}

TEST_CASE("An upgrade during a drain is refused: the drain goes on") {
  becomeSubreaper();
  Workspace w;
  TernServer server(w.args({"--drain-timeout", "30"}), nullptr, w.binary);
  test::EchoPeer peer(kPeerHost);
  // Over TCP, as the drain test of operations_test.cpp: the allocations end with their
  // connections, so the drain completes when the call does.
  auto call = startCall(server.tcp().port, peer.port(), 150, {"-t"});
  // uclient makes a trial allocation first: the drain starts once the real one exists.
  REQUIRE(waitForCount(server.process(), "allocation created", 2));
  ::kill(server.process().pid(), SIGTERM);
  REQUIRE(server.process().waitForLine(" draining ").has_value());
  const auto refused = ternUpgrade(w, server);
  INFO(refused.output);
  CHECK(refused.status == 1);
  CHECK(refused.output.find("draining") != std::string::npos);
  test::expectNoLoss(call, 150);
  const int status = server.process().wait(30s);
  INFO(server.process().output());
  CHECK(status == 0);
  CHECK(server.process().output().find("drained: every allocation has ended") != std::string::npos);
  CHECK(server.process().output().find(" upgraded pid=") == std::string::npos);
}
