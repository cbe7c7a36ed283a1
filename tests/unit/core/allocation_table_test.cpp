// AllocationTable's expiry queue: deleted and refreshed allocations leave stale entries,
// which must not pile up under churn, and dropping them must not lose a live expiry.
#include <doctest/doctest.h>

#include <memory>
#include <string>

#include "relay/core/allocation_table.hpp"
#include "support/turn_harness.hpp"

using namespace tern;

namespace {

core::FiveTuple tupleNumber(int i) {
  return test::udpTuple("192.0.2.1:" + std::to_string(10000 + i));
}

std::unique_ptr<core::Allocation> allocation(int i, core::TimePoint now, std::chrono::seconds lifetime) {
  auto a = std::make_unique<core::Allocation>(tupleNumber(i), static_cast<core::RelayId>(i),
                                              test::socketAddress("198.51.100.1:50000"), "user",
                                              std::vector<std::uint8_t>(16, 1), now);
  a->setExpiry(now + lifetime);
  return a;
}

}  // namespace

TEST_CASE("deleted allocations do not leave their expiry entries behind") {
  core::AllocationTable table;
  const core::TimePoint now{};
  for (int cycle = 0; cycle < 5; ++cycle) {
    for (int i = 0; i < 1000; ++i) table.insert(allocation(i, now, std::chrono::seconds(600)));
    for (int i = 0; i < 1000; ++i) table.erase(*table.find(tupleNumber(i)));
    CHECK(table.size() == 0);
    CHECK(table.scheduledExpiries() <= 64);
  }
}

TEST_CASE("dropping stale expiry entries keeps every live allocation's expiry, in order") {
  core::AllocationTable table;
  const core::TimePoint now{};
  // 300 allocations expiring one second apart; the first 200 are deleted (a rebuild), the
  // rest are refreshed once (stale entries again).
  for (int i = 0; i < 300; ++i) table.insert(allocation(i, now, std::chrono::seconds(100 + i)));
  for (int i = 0; i < 200; ++i) table.erase(*table.find(tupleNumber(i)));
  for (int i = 200; i < 300; ++i) {
    core::Allocation* a = table.find(tupleNumber(i));
    a->setExpiry(now + std::chrono::seconds(1000 + i));
    table.scheduleExpiry(*a);
  }
  CHECK(table.scheduledExpiries() <= 2 * table.size() + 64);
  std::vector<int> expired;
  table.expire(now + std::chrono::seconds(2000), [&](core::Allocation& a) {
    expired.push_back(a.tuple().client.port - 10000);
    table.erase(a);
  });
  REQUIRE(expired.size() == 100);
  for (int k = 0; k < 100; ++k) CHECK(expired[static_cast<std::size_t>(k)] == 200 + k);
  CHECK(table.size() == 0);
}
