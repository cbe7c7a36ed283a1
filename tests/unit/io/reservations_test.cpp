// EVEN-PORT reservations (relay/io/reservations.hpp, RFC 8656 §7.2) across an upgrade: taken
// out of the registry while the workers are frozen, put back if the upgrade fails, put into
// the new process's registry with what is left of their hold.
#include "relay/io/reservations.hpp"

#include <doctest/doctest.h>

using namespace tern;
using namespace std::chrono_literals;

TEST_CASE(
    "An upgrade takes a worker's unexpired reservations out, and putting them back honours their "
    "tokens") {
  io::ReservationRegistry registry;
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  const auto ip = *wire::IpAddress::parse("127.0.0.1");
  const std::uint64_t mine = registry.reserve(ip, 50001, 0, t0);
  const std::uint64_t other = registry.reserve(ip, 50003, 1, t0);
  (void)registry.reserve(ip, 50005, 0, t0 - 40s);  // expired by t0

  const auto taken = registry.takeForUpgrade(0, t0 + 10s);
  REQUIRE(taken.size() == 1);  // not worker 1's, not the expired one (the tick frees its port)
  CHECK(taken[0].token == mine);
  CHECK(taken[0].address.port == 50001);
  CHECK(taken[0].remaining == 20s);
  // While it travels its token is unknown here.
  CHECK_FALSE(registry.claim(mine, t0 + 10s).has_value());
  CHECK(registry.expire(0, t0 + 10s) == std::vector<std::uint16_t>{50005});

  // The new process (or this one, the upgrade failed): the same token, the rest of the hold.
  CHECK(registry.put(taken[0], 0, t0 + 11s));
  CHECK_FALSE(registry.put(taken[0], 0, t0 + 11s));  // a token is known once
  CHECK(registry.claim(mine, t0 + 30s)->port == 50001);
  CHECK(registry.claim(other, t0 + 1s)->port == 50003);
}

TEST_CASE("A reservation put into the registry is never held past 30 seconds (RFC 8656 §7.2)") {
  io::ReservationRegistry registry;
  const auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  const io::HandedReservation r{42, *wire::SocketAddress::parse("127.0.0.1:50001"), 10min};
  REQUIRE(registry.put(r, 0, t0));
  CHECK(registry.expire(0, t0 + 29s).empty());
  CHECK(registry.expire(0, t0 + 30s) == std::vector<std::uint16_t>{50001});
  CHECK_FALSE(registry.claim(42, t0 + 30s).has_value());
}
