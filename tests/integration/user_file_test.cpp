// Static users from --user-file against a real `tern serve` (issue 18): passwords out of argv
// and out of --print-config, a user from the file relaying with turnutils_uclient, and a
// changed file taking effect on SIGHUP: the new password works, the old one is refused.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <fstream>
#include <thread>

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

constexpr const char* kPeerHost = "127.0.0.2";

bool waitForCount(const test::ChildProcess& process, const std::string& text, std::size_t n) {
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < give_up) {
    if (test::countOf(process.output(), text) >= n) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// Allocates as `name`/`password` over UDP; the outcome and the last error code. The
// allocation is deleted again when it succeeds.
std::pair<Outcome, std::uint16_t> allocateAs(const TernServer& server, const std::string& name,
                                             const std::string& password) {
  test::TurnTestClient c(test::socketAddress("127.0.0.1", 0), server.udp(), name, password, false);
  const Outcome outcome = c.transact([&] { return c.session.allocate({}); });
  if (outcome == Outcome::kSuccess) (void)c.transact([&] { return c.session.refresh(0); });
  return {outcome, outcome == Outcome::kSuccess ? std::uint16_t{0} : c.session.lastErrorCode()};
}

}  // namespace

TEST_CASE("--print-config shows --user names and --user-file paths, never a password") {
  const std::string users = test::temporaryFile("# ops\ncarol:file-password-123\n");
  auto r = test::runCommand({test::ternBinary(), "serve", "--user", "alice:argv-password-456",
                             "--user-file", users, "--print-config"});
  INFO(r.output);
  CHECK(r.status == 0);
  CHECK(r.output.find("argv-password-456") == std::string::npos);
  CHECK(r.output.find("file-password-123") == std::string::npos);
  CHECK(r.output.find("alice:<redacted>") != std::string::npos);
  CHECK(r.output.find(users) != std::string::npos);
}

TEST_CASE("a static user from --user-file relays with turnutils_uclient") {
  const std::string users = test::temporaryFile("carol:carol-password\n");
  TernServer server({"--realm", "tern.test", "--user-file", users, "--relay-ip", "127.0.0.1",
                     "--allow-peer", "127.0.0.0/8"});
  test::EchoPeer peer(kPeerHost);
  auto r = test::runUclient({"-u",  "carol",
                             "-w",  "carol-password",
                             "-e",  kPeerHost,
                             "-r",  std::to_string(peer.port()),
                             "-p",  std::to_string(server.udp().port),
                             "-c",  "-n",
                             "20",  "-m",
                             "1",   "-l",
                             "160", "-z",
                             "5",   "127.0.0.1"});
  INFO(r.output);
  CHECK(r.lost == 0);
  CHECK(r.received == 20);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "a changed --user-file takes effect on SIGHUP: the new password works, the old one is "
    "refused") {
  const std::string users = test::temporaryFile("dave:old-password\n");
  TernServer server({"--realm", "tern.test", "--user-file", users, "--relay-ip", "127.0.0.1"});
  CHECK(allocateAs(server, "dave", "old-password").first == Outcome::kSuccess);

  test::writeFile(users, "# rotated\ndave:new-password\nerin:erin-password\n");
  ::kill(server.process().pid(), SIGHUP);
  REQUIRE(waitForCount(server.process(), "configuration reloaded", 1));
  CHECK(allocateAs(server, "dave", "new-password").first == Outcome::kSuccess);
  CHECK(allocateAs(server, "erin", "erin-password").first == Outcome::kSuccess);
  const auto old = allocateAs(server, "dave", "old-password");
  CHECK(old.first == Outcome::kError);
  CHECK(old.second == 401);

  // A malformed file is rejected with its line number, and the running users stay.
  test::writeFile(users, "dave:newest-password\nthis line has no colon\n");
  ::kill(server.process().pid(), SIGHUP);
  const auto rejected = server.process().waitForLine("configuration reload rejected");
  REQUIRE(rejected.has_value());
  CHECK(rejected->find("line 2") != std::string::npos);
  CHECK(rejected->find("no colon") == std::string::npos);
  CHECK(allocateAs(server, "dave", "new-password").first == Outcome::kSuccess);
  CHECK(allocateAs(server, "dave", "newest-password").first == Outcome::kError);
  CHECK(server.process().stop(SIGTERM) == 0);
  // Nothing in the log holds a password.
  for (const char* password :
       {"old-password", "new-password", "newest-password", "erin-password"}) {
    CHECK_MESSAGE(server.process().output().find(password) == std::string::npos, password);
  }
}
