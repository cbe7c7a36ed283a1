// The relay port range shared by workers (issue 18, item 10): each worker takes from its own
// share first and borrows from the others' only when its share is used up, so with N workers
// the whole range can be allocated whatever the kernel's hash does.
#include "relay/io/port_pool.hpp"

#include <doctest/doctest.h>

#include <memory>
#include <set>
#include <vector>

using tern::io::PortPool;
using tern::io::RelayPortRange;

TEST_SUITE_BEGIN("io/port_pool");

TEST_CASE("a worker hands out its own share first, then borrows the other workers' ports") {
  constexpr unsigned kWorkers = 4;
  auto range = std::make_shared<RelayPortRange>(50000, 50399);
  std::vector<PortPool> pools;
  for (unsigned w = 0; w < kWorkers; ++w) {
    const auto [first, last] = PortPool::share(50000, 50399, w, kWorkers);
    pools.emplace_back(range, first, last);
  }
  // The kernel's hash puts every client on worker 0: it still gets all 400 ports.
  std::set<std::uint16_t> taken;
  for (int i = 0; i < 400; ++i) {
    const auto port = pools[0].take();
    REQUIRE(port.has_value());
    CHECK(*port >= 50000);
    CHECK(*port <= 50399);
    CHECK(taken.insert(*port).second);
    if (i < 100) CHECK(*port < 50100);  // its own share first
  }
  CHECK(pools[0].borrowed() == 300);
  CHECK(range->taken() == 400);
  CHECK_FALSE(pools[0].take().has_value());
  CHECK_FALSE(pools[3].take().has_value());
  // A port released by worker 0 goes back to the range, where the worker it belongs to takes it.
  pools[0].release(50350);
  CHECK(pools[3].take() == std::optional<std::uint16_t>(50350));
}

TEST_CASE("workers sharing a range never hand out one port twice, however they interleave") {
  auto range = std::make_shared<RelayPortRange>(60000, 60999);
  PortPool a(range, 60000, 60499);
  PortPool b(range, 60500, 60999);
  std::set<std::uint16_t> taken;
  for (int i = 0; i < 1000; ++i) {
    auto port = (i % 3 == 0 ? b : a).take();
    REQUIRE(port.has_value());
    CHECK(taken.insert(*port).second);
  }
  CHECK_FALSE(a.take().has_value());
}

TEST_CASE("EVEN-PORT takes an even port, and with R its odd successor too (RFC 8656 §7.2)") {
  auto range = std::make_shared<RelayPortRange>(50000, 50009);
  PortPool pool(range, 50000, 50004);
  std::set<std::uint16_t> taken;
  for (int i = 0; i < 5; ++i) {
    const auto port = pool.takeEven(true);
    REQUIRE(port.has_value());
    CHECK(*port % 2 == 0);
    taken.insert(*port);
  }
  CHECK(taken.size() == 5);  // 50000..50008, the last pairs borrowed beyond the share
  CHECK(range->taken() == 10);
  CHECK_FALSE(pool.takeEven(false).has_value());
  pool.release(50005);  // an odd port alone is no even port
  CHECK_FALSE(pool.takeEven(false).has_value());
  CHECK(pool.take() == std::optional<std::uint16_t>(50005));
}

TEST_CASE("an empty or one-port relay range") {
  PortPool empty(50001, 50000);
  CHECK_FALSE(empty.take().has_value());
  PortPool one(65535, 65535);
  CHECK(one.take() == std::optional<std::uint16_t>(65535));
  CHECK_FALSE(one.take().has_value());
  CHECK_FALSE(one.takeEven(true).has_value());
}

TEST_SUITE_END();

TEST_CASE("An upgrade's relay ports are claimed in the range whatever share they fall in") {
  auto range = std::make_shared<tern::io::RelayPortRange>(50000, 50099);
  tern::io::PortPool pool(range, 50000, 50049);
  // A port of another worker's share, and one outside a narrowed range.
  CHECK(pool.adopt(50070));
  CHECK(pool.adopt(40000));
  CHECK(pool.heldDelta() == 2);
  CHECK(range->taken() == 1);
  CHECK_FALSE(range->claim(50070));  // no other socket of the process may take it
  CHECK_FALSE(pool.adopt(50070));    // nor a second hand-over
  pool.release(50070);
  pool.release(40000);
  CHECK(pool.heldDelta() == 0);
  CHECK(range->taken() == 0);
}
