// Upgrading a running `tern serve` in place (docs/upgrade.md), against real clients: a
// turnutils_uclient call over UDP runs across the upgrade and must lose nothing; the new
// process takes the old one's sockets (same ports, same metrics port) and allocations (the
// usage record counts both processes' packets). Failures leave the old process serving:
// a configuration the new process rejects, a binary that dies at start, an upgrade while
// one is under way or while draining.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <regex>
#include <thread>

#include "relay/app/http_request.hpp"
#include "support/process.hpp"
#include "support/tern_server.hpp"
#include "support/test_certificates.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::TernServer;

namespace {

constexpr const char* kPeerHost = "127.0.0.2";  // 127.0.0.1 is the relay's own address
constexpr const char* kSecret = "upgrade-secret";
constexpr const char* kToken = "upgrade-admin-token";

// The new process is the old one's child; once the old one exits it is re-parented to the
// nearest subreaper. Making this test process one lets it reap, and so wait for, the new one.
void becomeSubreaper() { REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0); }

// A process this test did not start but must stop: the new process of an upgrade. Stopped
// by its PID (SIGKILL) if the test ends first.
class AdoptedProcess {
 public:
  explicit AdoptedProcess(pid_t pid) : pid_(pid) {}
  ~AdoptedProcess() {
    if (pid_ > 0 && running()) {
      ::kill(pid_, SIGKILL);
      (void)wait(5s);
    }
  }
  pid_t pid() const noexcept { return pid_; }
  bool running() {
    if (exited_) return false;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return false;
    }
    // Not yet our child (its parent lives): alive while it can be signalled.
    return r == 0 || ::kill(pid_, 0) == 0;
  }
  int wait(std::chrono::milliseconds timeout) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    while (running()) {
      if (std::chrono::steady_clock::now() >= give_up) return -1;
      std::this_thread::sleep_for(20ms);
    }
    return status_;
  }
  int stop(int signum, std::chrono::milliseconds timeout = 15s) {
    if (running()) ::kill(pid_, signum);
    return wait(timeout);
  }

 private:
  pid_t pid_;
  bool exited_ = false;
  int status_ = -1;
};

// A directory removed when the test ends, holding the test's own copy of tern (an upgrade
// starts the binary at that path, so replacing the copy is what a package upgrade does).
struct Workspace {
  Workspace() {
    char name[] = "/tmp/tern-upgrade-XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    path = name;
    binary = path + "/tern";
    install(test::ternBinary());
    secrets = test::temporaryFile(std::string(kSecret) + "\n");
    token = test::temporaryFile(std::string(kToken) + "\n");
    ::chmod(token.c_str(), 0600);
  }
  ~Workspace() { std::filesystem::remove_all(path); }

  // Puts `from` at the binary's path the way a package manager does: a new file renamed over
  // the old, so the running process keeps its own.
  void install(const std::string& from) const {
    const std::string next = binary + ".new";
    std::filesystem::copy_file(from, next, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::permissions(next, std::filesystem::perms::owner_all);
    std::filesystem::rename(next, binary);
  }
  // A shell script at the binary's path.
  void installScript(const std::string& body) const {
    const std::string script = path + "/script";
    test::writeFile(script, "#!/bin/sh\n" + body + "\n");
    std::filesystem::permissions(script, std::filesystem::perms::owner_all);
    std::filesystem::rename(script, binary);
  }

  std::vector<std::string> args(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{"--realm", "tern.test", "--auth-secret-file", secrets, "--relay-ip", "127.0.0.1",
                               "--allow-peer", "127.0.0.0/8", "--metrics-listen", "127.0.0.1:0",
                               "--admin-token-file", token};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  std::string path, binary, secrets, token;
};

// 160-byte media at 20 ms intervals to an echo peer, over UDP unless `transport` says "-t"
// (TCP) or "-t", "-S" (TLS); uclient checks the echoes and deletes its allocation at the end.
test::ChildProcess startCall(std::uint16_t server_port, std::uint16_t peer_port, long messages,
                             std::vector<std::string> transport = {}) {
  std::vector<std::string> argv{"/usr/bin/turnutils_uclient"};
  argv.insert(argv.end(), transport.begin(), transport.end());
  for (const std::string& a : {std::string("-W"), std::string(kSecret), std::string("-u"), std::string("caller"),
                               std::string("-e"), std::string(kPeerHost), std::string("-r"), std::to_string(peer_port),
                               std::string("-p"), std::to_string(server_port), std::string("-n"),
                               std::to_string(messages), std::string("-m"), std::string("1"), std::string("-l"),
                               std::string("160"), std::string("-z"), std::string("20"), std::string("-c"),
                               std::string("127.0.0.1")}) {
    argv.push_back(a);
  }
  return test::ChildProcess(argv);
}

// The PID the old process handed over to, from its `upgraded pid=N ...` line.
pid_t upgradedPid(const test::ChildProcess& log, std::size_t nth = 1) {
  const std::regex pattern(" upgraded pid=([0-9]+)");
  for (int tries = 0; tries < 500; ++tries) {
    const std::string text = log.output();
    std::size_t seen = 0;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), pattern); it != std::sregex_iterator(); ++it) {
      if (++seen == nth) return static_cast<pid_t>(std::stol((*it)[1].str()));
    }
    std::this_thread::sleep_for(20ms);
  }
  return -1;
}

test::CommandResult ternUpgrade(const Workspace& w, const TernServer& server) {
  return test::runCommand({test::ternBinary(), "upgrade", "--metrics", server.http()->toString(),
                           "--admin-token-file", w.token, "--timeout", "60"},
                          90s);
}

std::size_t countOf(const std::string& text, const std::string& what) { return test::countOf(text, what); }

// Waits until `text` has appeared `n` times in the process's output.
bool waitForCount(const test::ChildProcess& process, const std::string& text, std::size_t n) {
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < give_up) {
    if (countOf(process.output(), text) >= n) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

}  // namespace

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
