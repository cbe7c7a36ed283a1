// The relay port range across workers (issue 18, item 10): the kernel's SO_REUSEPORT hash puts
// clients on workers unevenly, and a worker whose share of --relay-ports is used up borrows
// from the others' shares instead of answering 508, so with N workers the whole range can be
// allocated. tern's own client over UDP, one socket (one 5-tuple, one hash) per allocation.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "auth/rest_credentials.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/turn_test_client.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::TurnTestClient;
using Outcome = client::TurnSession::Outcome;

namespace {

constexpr const char* kSecret = "ports-secret";
constexpr int kRangeSize = 100;

std::unique_ptr<TurnTestClient> newClient(const test::TernServer& server, int i) {
  const auto c = auth::mintRestCredential(kSecret, "user" + std::to_string(i), std::time(nullptr), 600);
  return std::make_unique<TurnTestClient>(test::socketAddress("127.0.0.1", 0), server.udp(), c.username, c.password,
                                          false);
}

}  // namespace

TEST_CASE("with 4 workers every port of --relay-ports can be allocated, whatever the kernel's hash does") {
  test::TernServer server({"--workers", "4", "--relay-ports", "61000-61099", "--max-allocations-per-user", "0",
                           "--auth-secret-file", test::temporaryFile(std::string(kSecret) + "\n"), "--metrics-listen",
                           "127.0.0.1:0", "--log-level", "info"});
  // Each worker's share is 25 ports; 100 clients land 25 on each only by a rare chance.
  std::vector<std::unique_ptr<TurnTestClient>> clients;
  int granted = 0;
  for (int i = 0; i < kRangeSize; ++i) {
    clients.push_back(newClient(server, i));
    if (clients.back()->transact([&] { return clients.back()->session.allocate({}); }) == Outcome::kSuccess) {
      ++granted;
    } else {
      INFO("allocation " << i << " refused with " << clients.back()->session.lastErrorCode());
      CHECK(false);
    }
  }
  CHECK(granted == kRangeSize);
  // The range is used up now: the next client gets 508 (RFC 8656 §7.2), from any worker.
  for (int i = 0; i < 4; ++i) {
    auto extra = newClient(server, 1000 + i);
    CHECK(extra->transact([&] { return extra->session.allocate({}); }) == Outcome::kError);
    CHECK(extra->session.lastErrorCode() == 508);
  }
  std::this_thread::sleep_for(1200ms);  // the workers publish their port counts on their tick
  CHECK(test::metricValue(server, "tern_relay_ports_in_use") == kRangeSize);
  // Deleted allocations give their ports back to the whole range.
  for (auto& c : clients) REQUIRE(c->transact([&] { return c->session.refresh(0); }) == Outcome::kSuccess);
  std::this_thread::sleep_for(1200ms);
  CHECK(test::metricValue(server, "tern_relay_ports_in_use") == 0);
  CHECK(server.process().stop(SIGTERM) == 0);
}
