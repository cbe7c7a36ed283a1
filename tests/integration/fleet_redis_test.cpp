// Issue 22, fleet state in a real Redis (Debian's redis-server, started here on loopback and
// stopped by PID): a revocation made with `tern revoke --redis` or through one node's admin
// API ends the user's calls on every node within a second and both refuse its Allocates
// (403), and a node started later reads it when it connects; with Redis gone the nodes serve on, report it, and when it is back they reconnect
// and read the revocations made meanwhile.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
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

constexpr const char* kSecret = "fleet-redis-secret";
constexpr const char* kToken = "fleet-redis-admin-token-0123";

// redis-server on 127.0.0.1:`port`, nothing persisted, stopped by PID.
struct Redis {
  explicit Redis(std::uint16_t at) : port(at) { start(); }
  void start() {
    process = std::make_unique<test::ChildProcess>(std::vector<std::string>{
        "/usr/bin/redis-server", "--port", std::to_string(port), "--bind", "127.0.0.1", "--save", "",
        "--appendonly", "no"});
    for (auto give_up = std::chrono::steady_clock::now() + 5s; std::chrono::steady_clock::now() < give_up;) {
      if (process->output().find("Ready to accept connections") != std::string::npos) return;
      std::this_thread::sleep_for(20ms);
    }
    FAIL("redis-server did not start: ", process->output());
  }
  void stop() { process->stop(SIGTERM); }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port); }
  std::uint16_t port;
  std::unique_ptr<test::ChildProcess> process;
};

struct Node {
  Node(const std::string& redis_url, const std::string& secret_file, const std::string& token_file)
      : server({"--realm", "tern.test", "--auth-secret-file", secret_file, "--relay-ip", "127.0.0.1", "--allow-peer",
                "127.0.0.0/8", "--metrics-listen", "127.0.0.1:0", "--admin-token-file", token_file, "--redis",
                redis_url, "--log-level", "info"}) {}
  std::string metrics() {
    const auto r = app::httpRequest(*server.http(), "GET", "/metrics", 5s);
    REQUIRE(r.status == 200);
    return r.body;
  }
  bool metricReads(const std::string& line, std::chrono::milliseconds within) {
    for (auto give_up = std::chrono::steady_clock::now() + within; std::chrono::steady_clock::now() < give_up;) {
      if (metrics().find("\n" + line + "\n") != std::string::npos) return true;
      std::this_thread::sleep_for(25ms);
    }
    return false;
  }
  int allocate(const std::string& user) { return test::allocateAsRestUser(server.udp(), kSecret, user); }
  TernServer server;
};

struct Fleet {
  Redis redis{test::freeTcpPort("127.0.0.1")};
  std::string secret_file = test::temporaryFile(std::string(kSecret) + "\n");
  std::string token_file = test::temporaryFile(std::string(kToken) + "\n");
  Node a{redis.url(), secret_file, token_file};
  Node b{redis.url(), secret_file, token_file};
  bool connected() { return a.metricReads("tern_redis_connected 1", 5s) && b.metricReads("tern_redis_connected 1", 5s); }
};

}  // namespace

TEST_CASE("tern revoke --redis ends a user's allocations on two nodes within a second, both then refuse it with 403") {
  Fleet fleet;
  REQUIRE(fleet.connected());
  REQUIRE(fleet.a.allocate("ops") == 0);
  REQUIRE(fleet.b.allocate("ops") == 0);
  REQUIRE(fleet.b.allocate("ops") == 0);
  const auto revoked = test::runCommand({test::ternBinary(), "revoke", "--redis", fleet.redis.url(), "--for", "300", "ops"});
  REQUIRE(revoked.status == 0);
  CHECK(revoked.output.find("\"nodes_told\":2") != std::string::npos);  // one subscriber each
  CHECK(fleet.a.metricReads("tern_allocations_ended_total{reason=\"revoked\"} 1", 1s));
  CHECK(fleet.b.metricReads("tern_allocations_ended_total{reason=\"revoked\"} 2", 1s));
  CHECK(fleet.a.allocate("ops") == 403);
  CHECK(fleet.b.allocate("ops") == 403);
  CHECK(fleet.a.allocate("someone-else") == 0);
  CHECK(fleet.b.server.process().waitForLine("user revoked by the fleet", 2s).has_value());
  // A node that joins afterwards reads the revocation from its key when it connects.
  Node late(fleet.redis.url(), fleet.secret_file, fleet.token_file);
  REQUIRE(late.metricReads("tern_redis_connected 1", 5s));
  CHECK(late.allocate("ops") == 403);
  CHECK(late.allocate("someone-else") == 0);
}

TEST_CASE("a revocation through one node's admin API reaches the other node through Redis") {
  Fleet fleet;
  REQUIRE(fleet.connected());
  REQUIRE(fleet.b.allocate("ops") == 0);
  const auto answer = app::httpRequest(*fleet.a.server.http(), "POST", "/admin/revoke?user=ops&for=300", 5s,
                                       {{"Authorization", std::string("Bearer ") + kToken}});
  REQUIRE(answer.status == 200);
  CHECK(answer.body.find("\"fleet\":\"shared\"") != std::string::npos);
  CHECK(fleet.b.metricReads("tern_allocations_ended_total{reason=\"revoked\"} 1", 1s));
  CHECK(fleet.b.allocate("ops") == 403);
}

TEST_CASE("with Redis gone the nodes serve on and say so, and once it is back they read the revocations made meanwhile") {
  Fleet fleet;
  REQUIRE(fleet.connected());
  fleet.redis.stop();
  CHECK(fleet.a.metricReads("tern_redis_connected 0", 3s));
  CHECK(fleet.a.server.process().waitForLine("redis unavailable", 2s).has_value());
  // Never a refused call: Allocates go on, and a revocation made here holds here.
  CHECK(fleet.a.allocate("ops") == 0);
  const auto local = app::httpRequest(*fleet.a.server.http(), "POST", "/admin/revoke?user=local&for=300", 5s,
                                      {{"Authorization", std::string("Bearer ") + kToken}});
  CHECK(local.body.find("\"fleet\":\"redis_down\"") != std::string::npos);
  CHECK(fleet.a.allocate("local") == 403);

  fleet.redis.start();
  // Made while the nodes are still reconnecting (their backoff): they find it by its key.
  const auto revoked = test::runCommand({test::ternBinary(), "revoke", "--redis", fleet.redis.url(), "--for", "300", "ops"});
  REQUIRE(revoked.status == 0);
  REQUIRE(fleet.connected());
  CHECK(fleet.a.metricReads("tern_allocations_ended_total{reason=\"revoked\"} 1", 2s));
  CHECK(fleet.b.allocate("ops") == 403);
  CHECK(fleet.b.allocate("someone-else") == 0);
  CHECK(fleet.a.metrics().find("tern_redis_failures_total 0") == std::string::npos);
}
