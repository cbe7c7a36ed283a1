// Issue 18: what one holder of a credential can make a worker spend on its allocation. A
// replayed Refresh moves the allocation's one expiry entry instead of adding one, and
// authenticated requests per allocation pass a token bucket (--max-requests-per-allocation);
// over it they are dropped unanswered, counted and reported once per episode.
#include <doctest/doctest.h>

#include "support/turn_harness.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::Reply;
using test::TestClient;
using test::TurnHarness;

namespace {

const core::FiveTuple kTuple = test::udpTuple("192.0.2.7:40000");
const wire::SocketAddress kPeer = test::socketAddress("8.8.8.8:5000");

core::ServerOptions requestLimit(std::uint32_t per_second, std::uint32_t burst) {
  core::ServerOptions options;
  options.allocation_requests = core::RequestRateLimit(per_second, burst);
  return options;
}

// Sends `request` `count` times as it is (a replay), and returns how many were answered.
std::size_t replay(TurnHarness& h, const core::FiveTuple& tuple,
                   const std::vector<std::uint8_t>& request, std::size_t count) {
  std::size_t answered = 0;
  h.output.sent.clear();
  for (std::size_t i = 0; i < count; ++i) {
    h.fromClient(tuple, test::bytesOf(request));
    answered += h.output.sent.size();
    h.output.sent.clear();  // so many recorded answers would be the memory under test
  }
  return answered;
}

}  // namespace

// 100,000 replays: before the indexed heap each one added a queue entry, so any count shows it;
// the integration test drives 500,000 through a real tern for the heap.
TEST_CASE("100,000 replays of one signed Refresh leave the expiry queue as it was (issue 18)") {
  TurnHarness h(requestLimit(0, 1));  // no request limit: every replay runs the handler
  TestClient c(h, kTuple);
  c.mustAllocate();
  const std::size_t start = h.server.scheduledExpiries();
  CHECK(start == 1);
  const std::vector<std::uint8_t> refresh = c.session.refresh(1200);
  CHECK(replay(h, kTuple, refresh, 100'000) == 100'000);
  CHECK(h.server.scheduledExpiries() == start);
  // The last Refresh's lifetime holds: 1200 s from now, not a moment longer.
  h.advance(1199s);
  CHECK(h.server.allocationCount() == 1);
  h.advance(1s);
  CHECK(h.server.allocationCount() == 0);
  CHECK(h.server.scheduledExpiries() == 0);
}

TEST_CASE(
    "a Refresh that shortens the lifetime ends the allocation at the shorter time (RFC 8656 "
    "§8.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  client::TurnSession::AllocateOptions o;
  o.lifetime = 3600;
  c.mustAllocate(o);
  h.advance(100s);
  REQUIRE(c.refresh(600).success());
  CHECK(h.server.scheduledExpiries() == 1);
  h.advance(599s);
  CHECK(h.server.allocationCount() == 1);
  h.advance(1s);
  CHECK(h.server.allocationCount() == 0);
}

TEST_CASE(
    "requests on one allocation over its limit are dropped unanswered, counted, reported once") {
  TurnHarness h(requestLimit(10, 20));
  TestClient c(h, kTuple);
  c.mustAllocate();  // the Allocate itself has no allocation to charge yet
  const std::vector<std::uint8_t> refresh = c.session.refresh(600);
  CHECK(replay(h, kTuple, refresh, 50) == 20);
  CHECK(h.dropped(metrics::DropReason::kAllocationRequestRate) == 30);
  REQUIRE(h.output.request_limited.size() == 1);
  CHECK(h.output.request_limited[0] == kTuple);
  // Other methods share the bucket: CreatePermission is dropped too, silently.
  h.fromClient(kTuple,
               test::bytesOf(c.session.createPermission(std::vector<wire::SocketAddress>{kPeer})));
  CHECK(h.output.sent.empty());
  CHECK(h.output.request_limited.size() == 1);
  // A second refills 10 tokens; an admitted request ends the episode, so the next flood
  // is reported again.
  h.advance(1s);
  CHECK(replay(h, kTuple, refresh, 15) == 10);
  CHECK(h.output.request_limited.size() == 2);
}

TEST_CASE("the request limit leaves data alone and other allocations untouched") {
  TurnHarness h(requestLimit(1, 5));
  TestClient c(h, kTuple);
  TestClient other(h, test::udpTuple("192.0.2.8:40001"));
  c.mustAllocate();
  other.mustAllocate();
  REQUIRE(c.createPermission({kPeer}).success());
  CHECK(replay(h, kTuple, c.session.refresh(600), 10) == 4);
  // Send indications are the data path (--max-bps), not requests.
  const std::size_t relayed = h.output.to_peers.size();
  for (int i = 0; i < 20; ++i) c.sendIndication(kPeer, {1, 2, 3});
  CHECK(h.output.to_peers.size() == relayed + 20);
  CHECK(other.refresh(600).success());
}

TEST_CASE("a reload lifts or sets the request limit for existing allocations") {
  TurnHarness h(requestLimit(1, 2));
  TestClient c(h, kTuple);
  c.mustAllocate();
  const std::vector<std::uint8_t> refresh = c.session.refresh(600);
  CHECK(replay(h, kTuple, refresh, 10) == 2);
  h.server.reconfigure(requestLimit(0, 1), h.services, h.now);
  CHECK(replay(h, kTuple, refresh, 10) == 10);
}
