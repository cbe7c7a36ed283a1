// Issue 22, the admin API on the HTTP port (docs/admin-api.md), driven with `tern admin`
// against a real `tern serve` while turnutils_uclient relays: listing a call's allocations by
// user, client and relayed address; ending one; revoking a TURN REST user, which ends all of
// its calls and refuses its Allocates with 403 until lifted, while another user allocates;
// and the refusals (no token, bad criteria, wrong method).
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <regex>
#include <thread>

#include "relay/app/http_request.hpp"
#include "support/process.hpp"
#include "support/tern_server.hpp"
#include "support/turn_test_client.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::TernServer;

namespace {

constexpr const char* kPeerHost = "127.0.0.2";  // 127.0.0.1 is the relay's own address
constexpr const char* kToken = "admin-api-test-token-0123456789";

struct Node {
  std::string secret = "admin-api-secret";
  std::string secret_file = test::temporaryFile(secret + "\n");
  std::string token_file = test::temporaryFile(std::string(kToken) + "\n");
  TernServer server{{"--realm", "tern.test", "--auth-secret-file", secret_file, "--relay-ip", "127.0.0.1",
                     "--allow-peer", "127.0.0.0/8", "--metrics-listen", "127.0.0.1:0", "--admin-token-file",
                     token_file}};

  // `tern admin ARGS...`: its exit status and what it printed.
  test::CommandResult admin(std::vector<std::string> args) {
    std::vector<std::string> argv{test::ternBinary(), "admin", "--metrics", server.http()->toString(),
                                  "--admin-token-file", token_file};
    argv.insert(argv.end(), args.begin(), args.end());
    return test::runCommand(argv);
  }
  std::string metrics() {
    auto r = app::httpRequest(*server.http(), "GET", "/metrics", 5s);
    REQUIRE(r.status == 200);
    return r.body;
  }
  // turnutils_uclient with `-m 2` calls of REST user "ops", 20 s of media: four allocations,
  // as uclient first makes a trial one per call and leaves it to expire.
  test::ChildProcess startCall(std::uint16_t peer_port) {
    return test::ChildProcess({"/usr/bin/turnutils_uclient", "-W", secret, "-u", "ops", "-e", kPeerHost, "-r",
                               std::to_string(peer_port), "-p", std::to_string(server.udp().port), "-n", "1000",
                               "-m", "2", "-l", "160", "-z", "20", "-c", "127.0.0.1"});
  }
  // Waits until `tern admin list ARGS` counts `n` allocations; the last listing.
  std::string awaitCount(std::size_t n, std::vector<std::string> args = {}) {
    args.insert(args.begin(), "list");
    std::string last;
    for (auto give_up = std::chrono::steady_clock::now() + 10s; std::chrono::steady_clock::now() < give_up;) {
      const auto r = admin(args);
      last = r.output;
      if (r.status == 0 && last.find("\"count\":" + std::to_string(n) + "}") != std::string::npos) return last;
      std::this_thread::sleep_for(100ms);
    }
    FAIL("never ", n, " allocations listed; last: ", last);
    return last;
  }
  int allocate(const std::string& user) { return test::allocateAsRestUser(server.udp(), secret, user); }
  app::HttpResponse call(std::string_view method, const std::string& target, bool with_token = true) {
    app::HttpHeaders headers;
    if (with_token) headers.push_back({"Authorization", std::string("Bearer ") + kToken});
    return app::httpRequest(*server.http(), method, target, 5s, headers);
  }
};

}  // namespace

TEST_CASE("tern admin lists a uclient call's allocations by user, client and relayed address, and ends one") {
  Node node;
  test::EchoPeer peer(kPeerHost);
  auto call = node.startCall(peer.port());
  const std::string listed = node.awaitCount(4, {"--user", "ops"});
  CHECK(listed.find("\"transport\":\"udp\"") != std::string::npos);
  CHECK(std::regex_search(listed, std::regex("\"username\":\"[0-9]+:ops\"")));
  CHECK(listed.find("\"channels\":") != std::string::npos);
  node.awaitCount(4, {"--client", "127.0.0.1"});
  node.awaitCount(0, {"--client", "127.0.0.9"});
  node.awaitCount(0, {"--user", "someone-else"});

  std::smatch relayed;
  REQUIRE(std::regex_search(listed, relayed, std::regex("\"relayed\":\\[\"([^\"]+)\"")));
  node.awaitCount(1, {"--relayed", relayed[1].str()});
  const auto ended = node.admin({"end", "--relayed", relayed[1].str()});
  CHECK(ended.status == 0);
  CHECK(ended.output.find("{\"ended\":1}") != std::string::npos);
  node.awaitCount(3, {"--user", "ops"});
  node.awaitCount(0, {"--relayed", relayed[1].str()});
  CHECK(node.metrics().find("tern_allocations_ended_total{reason=\"ended_by_admin\"} 1") != std::string::npos);
  CHECK(node.server.process().waitForLine("reason=ended_by_admin", 3s).has_value());
  call.stop(SIGTERM);
}

TEST_CASE("tern admin revoke ends every call of a TURN REST user, refuses its Allocates with 403 until lifted") {
  Node node;
  test::EchoPeer peer(kPeerHost);
  auto call = node.startCall(peer.port());
  node.awaitCount(4, {"--user", "ops"});
  const auto revoked = node.admin({"revoke", "ops", "--for", "300"});
  CHECK(revoked.status == 0);
  CHECK(revoked.output.find("\"ended\":4") != std::string::npos);
  // Ended before the answer: nothing of the user is left to list.
  const auto after = node.admin({"list", "--user", "ops"});
  CHECK(after.output.find("\"count\":0}") != std::string::npos);
  CHECK(node.admin({"revocations"}).output.find("\"user\":\"ops\"") != std::string::npos);
  CHECK(node.metrics().find("tern_allocations_ended_total{reason=\"revoked\"} 4") != std::string::npos);

  CHECK(node.allocate("ops") == 403);
  CHECK(node.allocate("someone-else") == 0);
  const auto lifted = node.admin({"lift", "ops"});
  CHECK(lifted.output.find("{\"lifted\":true}") != std::string::npos);
  CHECK(node.allocate("ops") == 0);
  call.stop(SIGTERM);
}

TEST_CASE("the admin API refuses a call without the token, bad criteria, a criterion-less end and wrong methods") {
  Node node;
  CHECK(node.call("GET", "/admin/allocations", false).status == 401);
  CHECK(node.call("GET", "/admin/allocations").status == 200);
  CHECK(node.call("POST", "/admin/allocations/end").status == 400);
  CHECK(node.call("GET", "/admin/allocations?client=not-an-address").status == 400);
  CHECK(node.call("GET", "/admin/allocations/end?user=ops").status == 405);
  CHECK(node.call("POST", "/admin/revoke?user=ops&for=soon").status == 400);
  CHECK(node.call("POST", "/admin/revoke").status == 400);
  CHECK(node.call("GET", "/admin/nothing").status == 404);
  // tern admin says what failed and exits 1.
  const auto bad = node.admin({"end"});
  CHECK(bad.status == 1);
  CHECK(bad.output.find("name the allocations to end") != std::string::npos);
}
