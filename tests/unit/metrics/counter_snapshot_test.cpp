// An upgrade carries every counter to the new process (metrics/counter_snapshot.hpp): the
// totals over workers, restored into a fresh set, give the same sums; gauges do not travel.
#include "metrics/counter_snapshot.hpp"

#include <doctest/doctest.h>

using namespace tern::metrics;

TEST_CASE("Counter values summed over workers restore into one set with the same totals") {
  WorkerCounters a, b;
  a.relayed(Direction::kClientToPeer, ClientTransport::kUdp, 160);
  a.relayed(Direction::kClientToPeer, ClientTransport::kUdp, 160);
  b.relayed(Direction::kClientToPeer, ClientTransport::kUdp, 100);
  b.drop(DropReason::kNoPermission);
  a.allocationCreated(ClientTransport::kUdp, Family::kIPv4);
  a.allocationEnded(ClientTransport::kUdp, Family::kIPv4, AllocationEnd::kExpired, 42.5);
  b.allocation_duration.observe(7.25);
  a.request_duration[idx(RequestMethod::kAllocate)].observe(0.001);
  b.allocationCreated(ClientTransport::kTcp, Family::kIPv6);  // active: a gauge, not carried

  std::vector<std::uint64_t> totals;
  addCounterValues(a, totals);
  addCounterValues(b, totals);
  WorkerCounters restored;
  REQUIRE(restoreCounterValues(restored, totals));
  CHECK(restored.relayed_packets[idx(Direction::kClientToPeer)][idx(ClientTransport::kUdp)].get() == 3);
  CHECK(restored.relayed_bytes[idx(Direction::kClientToPeer)][idx(ClientTransport::kUdp)].get() == 420);
  CHECK(restored.dropped[idx(DropReason::kNoPermission)].get() == 1);
  CHECK(restored.allocations_created[idx(ClientTransport::kUdp)][idx(Family::kIPv4)].get() == 1);
  CHECK(restored.allocations_created[idx(ClientTransport::kTcp)][idx(Family::kIPv6)].get() == 1);
  CHECK(restored.allocations_ended[idx(AllocationEnd::kExpired)].get() == 1);
  CHECK(restored.allocation_duration.sum() == doctest::Approx(49.75));
  CHECK(restored.allocation_duration.bucket(0) == 1);  // 7.25 s <= 10 s
  CHECK(restored.allocation_duration.bucket(2) == 1);  // 42.5 s in (30, 60]
  CHECK(restored.request_duration[idx(RequestMethod::kAllocate)].sum() == doctest::Approx(0.001));
  // The gauge of allocations alive describes a process, not a history.
  CHECK(restored.activeAllocations() == 0);
}

TEST_CASE("Counter values of another layout change nothing") {
  WorkerCounters a;
  a.drop(DropReason::kMalformed);
  std::vector<std::uint64_t> totals;
  addCounterValues(a, totals);
  totals.pop_back();
  WorkerCounters restored;
  CHECK_FALSE(restoreCounterValues(restored, totals));
  CHECK(restored.dropped[idx(DropReason::kMalformed)].get() == 0);
}
