// Taking over through --hand-over-socket (docs/upgrade.md "In a container"): each tern is
// started by the test, as the kubelet starts each pod, and none is a child of another. A
// turnutils_uclient call over UDP runs across two take-overs and must lose nothing; a stale
// socket file is no obstacle to a start; a process that cannot serve leaves the old one serving.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "relay/app/http_request.hpp"
#include "support/process.hpp"
#include "support/tern_server.hpp"
#include "support/turn_tools.hpp"
#include "upgrade_support.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::TernServer;
using namespace test::upgrade;

namespace {

bool isSocket(const std::string& path) {
  struct stat st {};
  return ::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode);
}

// What a process killed while listening leaves behind: a socket file nobody listens on.
void leaveStaleSocket(const std::string& path) {
  const int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  std::strncpy(address.sun_path, path.c_str(), sizeof address.sun_path - 1);
  REQUIRE(::bind(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0);
  ::close(fd);
  REQUIRE(isSocket(path));
}

}  // namespace

TEST_CASE(
    "Pods on one node take over through --hand-over-socket: a UDP call loses nothing, the old "
    "process exits 0, a third takes over from the second") {
  Workspace w;
  const std::string socket = w.path + "/hand-over.sock";
  const auto args = w.args({"--hand-over-socket", socket});
  TernServer first(args);
  REQUIRE(first.process().waitForLine("listening transport=hand-over").has_value());
  CHECK(isSocket(socket));
  test::EchoPeer peer(kPeerHost);
  auto call = startCall(first.udp().port, peer.port(), 500);
  REQUIRE(first.process().waitForLine("allocation created").has_value());
  std::this_thread::sleep_for(500ms);

  // Started beside the first, as a new pod is: it finds the first on the socket.
  TernServer second(args);
  INFO(first.process().output());
  INFO(second.process().output());
  CHECK(second.process().output().find("taking over through the hand-over socket") !=
        std::string::npos);
  CHECK(second.udp().port == first.udp().port);
  CHECK(first.process().wait(15s) == 0);
  CHECK(first.process().output().find(" upgraded pid=") != std::string::npos);
  // The second listens on the path in its turn: a third takes over from it.
  REQUIRE(second.process().waitForLine("listening transport=hand-over").has_value());
  CHECK(isSocket(socket));

  TernServer third(args);
  INFO(third.process().output());
  CHECK(second.process().wait(15s) == 0);
  CHECK(third.udp().port == first.udp().port);
  test::expectNoLoss(call, 500);
  const auto ended = third.process().waitForLine("allocation ended");
  REQUIRE(ended.has_value());
  CHECK(ended->find("packets_to_peer=500") != std::string::npos);
  CHECK(app::httpRequest(*first.http(), "GET", "/readyz", 5s).status == 200);
  CHECK(third.process().stop(SIGTERM) == 0);
  // The last process removes its socket file as it exits.
  CHECK_FALSE(isSocket(socket));
}

TEST_CASE("A start that finds a stale hand-over socket and nobody listening serves normally") {
  Workspace w;
  const std::string socket = w.path + "/hand-over.sock";
  leaveStaleSocket(socket);
  TernServer server(w.args({"--hand-over-socket", socket}));
  INFO(server.process().output());
  CHECK(server.process().output().find("no process on the hand-over socket: starting afresh") !=
        std::string::npos);
  REQUIRE(server.process().waitForLine("listening transport=hand-over").has_value());
  CHECK(isSocket(socket));
  test::EchoPeer peer(kPeerHost);
  auto call = startCall(server.udp().port, peer.port(), 50);
  test::expectNoLoss(call, 50);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "A take-over by a process that cannot serve its configuration leaves the old one serving") {
  Workspace w;
  const std::string socket = w.path + "/hand-over.sock";
  TernServer old(w.args({"--hand-over-socket", socket}));
  test::EchoPeer peer(kPeerHost);
  auto call = startCall(old.udp().port, peer.port(), 250);
  REQUIRE(old.process().waitForLine("allocation created").has_value());

  // Validation accepts a certificate file that exists; loading it fails, after the connect.
  const std::string garbage = test::temporaryFile("not a certificate\n");
  auto argv = w.args({"--hand-over-socket", socket, "--listen", "127.0.0.1:0", "--cert", garbage,
                      "--key", garbage});
  argv.insert(argv.begin(), {test::ternBinary(), "serve"});
  const auto refused = test::runCommand(argv, 60s);
  INFO(refused.output);
  INFO(old.process().output());
  CHECK(refused.status != 0);
  CHECK(refused.output.find("taking over through the hand-over socket") != std::string::npos);
  // The reason, for `kubectl logs`: the certificate.
  CHECK(refused.output.find("start-up failed") != std::string::npos);
  CHECK(refused.output.find(garbage) != std::string::npos);
  REQUIRE(old.process().waitForLine("upgrade failed; this process serves on").has_value());
  test::expectNoLoss(call, 250);
  CHECK(app::httpRequest(*old.http(), "GET", "/readyz", 5s).status == 200);
  // Still listening: the next start takes over.
  CHECK(isSocket(socket));
  TernServer next(w.args({"--hand-over-socket", socket}));
  CHECK(old.process().wait(15s) == 0);
  CHECK(next.process().stop(SIGTERM) == 0);
}

namespace {

// The PIDs of `pid`'s children (Linux 3.5+: /proc/PID/task/TID/children).
std::vector<pid_t> childrenOf(pid_t pid) {
  std::vector<pid_t> children;
  std::ifstream in("/proc/" + std::to_string(pid) + "/task/" + std::to_string(pid) + "/children");
  for (pid_t child = 0; in >> child;) children.push_back(child);
  return children;
}

}  // namespace

TEST_CASE(
    "As a container's PID 1, the process that handed over waits for SIGTERM instead of exiting (a "
    "restart would take the node back)") {
  Workspace w;
  const std::string socket = w.path + "/hand-over.sock";
  // The first tern runs as PID 1 of a PID namespace of its own, as in a container.
  w.installScript("exec /usr/bin/unshare --pid --fork " + test::ternBinary() + " \"$@\"");
  TernServer first(w.args({"--hand-over-socket", socket}), nullptr, w.binary);
  const auto inside = childrenOf(first.process().pid());
  REQUIRE(inside.size() == 1);
  TernServer second(w.args({"--hand-over-socket", socket}));
  INFO(first.process().output());
  REQUIRE(first.process().waitForLine("as PID 1, exiting on SIGTERM only").has_value());
  std::this_thread::sleep_for(1s);
  CHECK(first.process().running());
  // The kubelet's stop: now it exits, cleanly.
  ::kill(inside.front(), SIGTERM);
  CHECK(first.process().wait(15s) == 0);
  CHECK(first.process().output().find("reason=\"SIGTERM after the hand-over\"") !=
        std::string::npos);
  CHECK(second.process().stop(SIGTERM) == 0);
}
