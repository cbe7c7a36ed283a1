// An upgrade under a live TURN-over-DTLS call (docs/upgrade.md, issue 20): the call's DTLS
// session cannot leave the old process, so the new one passes the session's datagrams back
// to it over a socket pair and the old one answers through its copy of the listener. The
// call loses nothing and never handshakes again; a DTLS client that arrives after the
// upgrade is the new process's; the old process exits once the call has ended.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <memory>
#include <regex>
#include <thread>

#include "support/process.hpp"
#include "support/tern_server.hpp"
#include "support/test_certificates.hpp"
#include "support/turn_tools.hpp"
#include "upgrade_support.hpp"

using namespace tern;
using namespace std::chrono_literals;
using namespace tern::test::upgrade;
using test::TernServer;

namespace {

// The DTLS sessions the process on the metrics port holds (after the commit: the new one).
std::uint64_t dtlsSessionsOfNewProcess(const TernServer& server) {
  return test::metricValue(server, "tern_dtls_sessions_open");
}

// Polls until the new process holds a DTLS session, for at most 5 s.
bool waitForNewSession(const TernServer& server) {
  const auto give_up = std::chrono::steady_clock::now() + 5s;
  while (std::chrono::steady_clock::now() < give_up) {
    if (dtlsSessionsOfNewProcess(server) > 0) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// coturn's uclient over DTLS sometimes makes its allocations and then never sends (seen on
// this machine without any upgrade, in about half the runs of `-S -m 1 -c`). A call is under
// way once uclient's progress line counts sent messages; a client that has not started
// within 5 s is stopped by its PID and replaced, at most three times.
std::unique_ptr<test::ChildProcess> startDtlsCall(const TernServer& server, std::uint16_t peer_port,
                                                  long messages) {
  const std::regex sending("tot_send_msgs=[1-9]");
  for (int attempt = 0;; ++attempt) {
    std::unique_ptr<test::ChildProcess> call(
        new test::ChildProcess(startCall(server.dtls().port, peer_port, messages, {"-S", "-X"})));
    const auto give_up = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < give_up) {
      if (std::regex_search(call->output(), sending)) return call;
      std::this_thread::sleep_for(50ms);
    }
    if (attempt == 3) return call;
    (void)call->stop(SIGKILL);
  }
}

}  // namespace

TEST_CASE(
    "A DTLS call stays with the old process across SIGUSR2: nothing lost, no new handshake, a new "
    "DTLS client is the new process's") {
  becomeSubreaper();
  Workspace w;
  const auto& certs = test::testCertificates();
  // uclient leaves its trial allocation's session idle: the idle timeout ends it (and, in
  // the old process, its allocation), so the old process can exit when the call ends.
  TernServer server(w.args({"--dtls-listen", "127.0.0.1:0", "--cert", certs.chain, "--key",
                            certs.key, "--drain-timeout", "60", "--tcp-idle-timeout", "4"}),
                    nullptr, w.binary);
  test::EchoPeer peer(kPeerHost);
  // 400 messages at 20 ms: about 8 s, most of it after the upgrade.
  auto call = startDtlsCall(server, peer.port(), 400);
  const std::size_t allocations_before = countOf(server.process().output(), "allocation created");

  ::kill(server.process().pid(), SIGUSR2);
  const pid_t next = upgradedPid(server.process());
  INFO(server.process().output());
  REQUIRE(next > 0);
  AdoptedProcess successor(next);
  REQUIRE(server.process().waitForLine("handed over worker=").has_value());
  // The call's session stayed behind: the new process holds none of its own, so the call's
  // datagrams reach the old process's session (a new handshake would show here).
  CHECK(server.process().waitForLine("serving dtls sessions through the old process").has_value());
  std::this_thread::sleep_for(1s);
  CHECK(dtlsSessionsOfNewProcess(server) == 0);
  CHECK(countOf(server.process().output(), "allocation created") == allocations_before);

  // A DTLS client that arrives now handshakes with the new process.
  auto newcomer = startDtlsCall(server, peer.port(), 150);
  CHECK(waitForNewSession(server));
  test::expectNoLoss(*newcomer, 150);
  test::expectNoLoss(*call, 400);

  // The old call ended in the old process, which then had nothing left and exited.
  CHECK(server.process().wait(20s) == 0);
  const std::string log = server.process().output();
  INFO(log);
  CHECK(log.find("drained: every allocation has ended") != std::string::npos);
  CHECK(successor.running());
  // SIGINT: at once (the newcomer's idle trial allocation would hold a drain).
  CHECK(successor.stop(SIGINT) == 0);
}
