// AllocationTable's expiry queue: one entry per allocation, moved in place when its expiry
// changes (issue 18: a queue entry per Refresh grew without bound), in expiry order always.
#include "relay/core/allocation_table.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <random>
#include <string>

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

// Expires everything up to `until` and returns the allocation numbers in the order they went.
std::vector<int> expireAll(core::AllocationTable& table, core::TimePoint until) {
  std::vector<int> order;
  table.expire(until, [&](core::Allocation& a) {
    order.push_back(a.tuple().client.port - 10000);
    table.erase(a);
  });
  return order;
}

}  // namespace

TEST_CASE("deleted allocations take their expiry entries with them") {
  core::AllocationTable table;
  const core::TimePoint now{};
  for (int cycle = 0; cycle < 5; ++cycle) {
    for (int i = 0; i < 1000; ++i) table.insert(allocation(i, now, std::chrono::seconds(600)));
    CHECK(table.scheduledExpiries() == 1000);
    for (int i = 0; i < 1000; ++i) table.erase(*table.find(tupleNumber(i)));
    CHECK(table.size() == 0);
    CHECK(table.scheduledExpiries() == 0);
  }
}

TEST_CASE("rescheduling moves the one entry of an allocation: the queue never grows (issue 18)") {
  core::AllocationTable table;
  const core::TimePoint now{};
  table.insert(allocation(0, now, std::chrono::seconds(600)));
  table.insert(allocation(1, now, std::chrono::seconds(700)));
  core::Allocation* a = table.find(tupleNumber(0));
  for (int i = 0; i < 100'000; ++i) {
    a->setExpiry(now + std::chrono::seconds(600 + i % 3000));
    table.scheduleExpiry(*a);
  }
  CHECK(table.scheduledExpiries() == 2);
  // Its last expiry (600 + 99'999 % 3000 = 1599 s) counts, not any earlier one.
  CHECK(expireAll(table, now + std::chrono::seconds(1598)) == std::vector<int>{1});
  CHECK(expireAll(table, now + std::chrono::seconds(1599)) == std::vector<int>{0});
}

TEST_CASE("a shortened lifetime still expires on time") {
  core::AllocationTable table;
  const core::TimePoint now{};
  table.insert(allocation(0, now, std::chrono::seconds(3600)));
  core::Allocation* a = table.find(tupleNumber(0));
  a->setExpiry(now + std::chrono::seconds(10));
  table.scheduleExpiry(*a);
  CHECK(expireAll(table, now + std::chrono::seconds(9)).empty());
  CHECK(expireAll(table, now + std::chrono::seconds(10)) == std::vector<int>{0});
  CHECK(table.scheduledExpiries() == 0);
}

TEST_CASE("random reschedules and deletions keep every live allocation's expiry, in order") {
  core::AllocationTable table;
  const core::TimePoint now{};
  std::mt19937 random(18);
  std::vector<int> expiry(300);
  for (int i = 0; i < 300; ++i) {
    expiry[static_cast<std::size_t>(i)] = 100 + i;
    table.insert(allocation(i, now, std::chrono::seconds(100 + i)));
  }
  for (int step = 0; step < 20'000; ++step) {
    const int i = static_cast<int>(random() % 300);
    core::Allocation* a = table.find(tupleNumber(i));
    if (a == nullptr) continue;
    if (step % 97 == 0) {
      table.erase(*a);
      expiry[static_cast<std::size_t>(i)] = -1;
      continue;
    }
    // Unique times (i breaks ties), earlier or later than before.
    const int seconds = static_cast<int>(random() % 5000) * 300 + i;
    expiry[static_cast<std::size_t>(i)] = seconds;
    a->setExpiry(now + std::chrono::seconds(seconds));
    table.scheduleExpiry(*a);
  }
  CHECK(table.scheduledExpiries() == table.size());
  std::vector<std::pair<int, int>> live;
  for (int i = 0; i < 300; ++i) {
    if (expiry[static_cast<std::size_t>(i)] >= 0)
      live.emplace_back(expiry[static_cast<std::size_t>(i)], i);
  }
  std::sort(live.begin(), live.end());
  std::vector<int> wanted;
  for (const auto& [when, i] : live) wanted.push_back(i);
  CHECK(expireAll(table, now + std::chrono::seconds(5000 * 300 + 300)) == wanted);
  CHECK(table.size() == 0);
  CHECK(table.scheduledExpiries() == 0);
}

TEST_CASE("a detached allocation leaves the queue and joins another table's on insert") {
  core::AllocationTable from;
  core::AllocationTable to;
  const core::TimePoint now{};
  from.insert(allocation(0, now, std::chrono::seconds(600)));
  from.insert(allocation(1, now, std::chrono::seconds(500)));
  auto moved = from.detach(*from.find(tupleNumber(1)));
  CHECK(from.scheduledExpiries() == 1);
  to.insert(std::move(moved));
  CHECK(to.scheduledExpiries() == 1);
  CHECK(expireAll(to, now + std::chrono::seconds(500)) == std::vector<int>{1});
  CHECK(expireAll(from, now + std::chrono::seconds(600)) == std::vector<int>{0});
}
