// Issue 22, an operator's calls into the core: endAllocations ends exactly what an
// AllocationMatch names (by user, a TURN REST user's every credential included; by client
// address; by relayed address), reported with its reason; and a revoked user's Allocate gets
// 403 while another user's succeeds.
#include <doctest/doctest.h>

#include <set>

#include "auth/rest_credentials.hpp"
#include "relay/core/allocation_match.hpp"
#include "relay/core/server_output.hpp"
#include "support/turn_harness.hpp"

using namespace tern;
using test::TestClient;
using test::TurnHarness;

namespace {

struct FixedRevocations final : core::Revocations {
  bool revoked(std::string_view username) const noexcept override {
    return users.contains(std::string(core::quotaKey(username))) || users.contains(std::string(username));
  }
  std::set<std::string> users;
};

std::size_t allocations(const TurnHarness& h) {
  std::size_t n = 0;
  h.server.forEachAllocation([&](const core::Allocation&) { ++n; });
  return n;
}

}  // namespace

TEST_CASE("endAllocations by user ends every credential of that user, static or TURN REST, and no other's") {
  TurnHarness h;
  const auto rest1 = auth::mintRestCredential(test::kTestSecret, "bob", h.unix_now, 600);
  const auto rest2 = auth::mintRestCredential(test::kTestSecret, "bob", h.unix_now, 900);
  const auto carol = auth::mintRestCredential(test::kTestSecret, "carol", h.unix_now, 600);
  TestClient b1(h, test::udpTuple("192.0.2.1:1001"), rest1.username, rest1.password);
  TestClient b2(h, test::udpTuple("192.0.2.1:1002"), rest2.username, rest2.password);
  TestClient c(h, test::udpTuple("192.0.2.1:1003"), carol.username, carol.password);
  TestClient a(h, test::udpTuple("192.0.2.1:1004"));
  for (TestClient* client : {&b1, &b2, &c, &a}) client->mustAllocate();
  REQUIRE(allocations(h) == 4);

  core::AllocationMatch match;
  match.user = "bob";
  CHECK(h.server.endAllocations(match, metrics::AllocationEnd::kRevoked, h.now) == 2);
  CHECK(allocations(h) == 2);
  REQUIRE(h.output.ended.size() == 2);
  for (const auto& e : h.output.ended) {
    CHECK(e.reason == "revoked");
    CHECK(core::quotaKey(e.username) == "bob");
  }
  CHECK(h.counters.allocations_ended[metrics::idx(metrics::AllocationEnd::kRevoked)].get() == 2);
  // Their quota went back, and their Refresh now finds nothing (RFC 8656 §7.3: 437).
  CHECK(h.quota.allocationsOf("bob") == 0);
  CHECK(b1.refresh(600).code() == 437);
  CHECK(c.refresh(600).success());
  CHECK(a.refresh(600).success());
}

TEST_CASE("endAllocations by client address (any port or one port) and by relayed address") {
  TurnHarness h;
  TestClient a(h, test::udpTuple("192.0.2.1:1001"));
  TestClient b(h, test::udpTuple("192.0.2.1:1002"));
  TestClient c(h, test::udpTuple("192.0.2.9:1001"));
  for (TestClient* client : {&a, &b, &c}) client->mustAllocate();

  core::AllocationMatch one_port;
  one_port.client = test::socketAddress("192.0.2.1:1002");
  CHECK(h.server.endAllocations(one_port, metrics::AllocationEnd::kEndedByAdmin, h.now) == 1);
  CHECK(b.refresh(600).code() == 437);
  CHECK(a.refresh(600).success());

  std::optional<wire::SocketAddress> relayed_c;
  h.server.forEachAllocation([&](const core::Allocation& x) {
    if (x.tuple().client == c.tuple.client) relayed_c = x.relayed();
  });
  REQUIRE(relayed_c.has_value());
  core::AllocationMatch by_relay;
  by_relay.relayed = *relayed_c;
  CHECK(h.server.endAllocations(by_relay, metrics::AllocationEnd::kEndedByAdmin, h.now) == 1);
  CHECK(c.refresh(600).code() == 437);

  core::AllocationMatch any_port;
  any_port.client = test::socketAddress("192.0.2.1:0");
  CHECK(h.server.endAllocations(any_port, metrics::AllocationEnd::kEndedByAdmin, h.now) == 1);
  CHECK(allocations(h) == 0);
  REQUIRE(h.output.ended.size() == 3);
  CHECK(h.output.ended[0].reason == "ended_by_admin");
}

TEST_CASE("endAllocations with no criterion ends nothing, and criteria combine") {
  TurnHarness h;
  TestClient a(h, test::udpTuple("192.0.2.1:1001"));
  a.mustAllocate();
  CHECK(h.server.endAllocations({}, metrics::AllocationEnd::kEndedByAdmin, h.now) == 0);
  core::AllocationMatch both;
  both.user = test::kTestUser;
  both.client = test::socketAddress("192.0.2.2:0");  // right user, wrong client
  CHECK(h.server.endAllocations(both, metrics::AllocationEnd::kEndedByAdmin, h.now) == 0);
  CHECK(allocations(h) == 1);
}

TEST_CASE("a revoked user's Allocate gets 403, another user's succeeds (issue 22)") {
  TurnHarness h;
  auto revocations = std::make_shared<FixedRevocations>();
  revocations->users.insert("bob");
  h.services.revocations = revocations;
  h.server.reconfigure({}, h.services, h.now);
  const auto bob = auth::mintRestCredential(test::kTestSecret, "bob", h.unix_now, 600);
  TestClient b(h, test::udpTuple("192.0.2.1:1001"), bob.username, bob.password);
  const auto refused = b.allocate();
  CHECK(refused.code() == 403);
  CHECK(refused.reason().find("revoked") != std::string::npos);
  CHECK(h.quota.allocationsOf("bob") == 0);
  TestClient a(h, test::udpTuple("192.0.2.1:1002"));
  CHECK(a.allocate().success());
  revocations->users.clear();
  TestClient b2(h, test::udpTuple("192.0.2.1:1003"), bob.username, bob.password);
  CHECK(b2.allocate().success());
}
