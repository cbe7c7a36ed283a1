// ConnectionLimits: TCP and TLS client connections per source and in all, shared by the
// workers and checked at accept.
#include "relay/io/connection_limits.hpp"

#include <doctest/doctest.h>

#include <string>

using namespace tern;
using io::ConnectionLimits;
using Verdict = ConnectionLimits::Verdict;

namespace {

wire::IpAddress ip(const std::string& text) { return *wire::IpAddress::parse(text); }

}  // namespace

TEST_CASE("connections from one source are capped, and the first refusal is told apart") {
  ConnectionLimits limits(2, 0);
  const auto source = ip("203.0.113.5");
  CHECK(limits.acquire(source).verdict == Verdict::kAccepted);
  CHECK(limits.acquire(source).verdict == Verdict::kAccepted);
  const auto refused = limits.acquire(source);
  CHECK(refused.verdict == Verdict::kSourceLimit);
  CHECK(refused.first_refusal);
  CHECK_FALSE(limits.acquire(source).first_refusal);
  CHECK(limits.acquire(ip("203.0.113.6")).verdict == Verdict::kAccepted);
  CHECK(limits.fromSource(source) == 2);
  // Back under the limit: the next refusal is news again.
  limits.release(source);
  CHECK(limits.acquire(source).verdict == Verdict::kAccepted);
  CHECK(limits.acquire(source).first_refusal);
  CHECK(limits.total() == 3);
}

TEST_CASE("the total cap refuses every source once reached") {
  ConnectionLimits limits(0, 3);
  for (const char* source : {"203.0.113.5", "203.0.113.6", "203.0.113.7"}) {
    CHECK(limits.acquire(ip(source)).verdict == Verdict::kAccepted);
  }
  CHECK(limits.acquire(ip("203.0.113.8")).verdict == Verdict::kTotalLimit);
  CHECK(limits.acquire(ip("203.0.113.5")).verdict == Verdict::kTotalLimit);
  CHECK(limits.fromSource(ip("203.0.113.8")) == 0);  // a refusal leaves no entry behind
  limits.release(ip("203.0.113.6"));
  CHECK(limits.acquire(ip("203.0.113.8")).verdict == Verdict::kAccepted);
}

TEST_CASE("an IPv6 source is its /64, and IPv4-mapped addresses are their IPv4 host") {
  ConnectionLimits limits(2, 0);
  CHECK(limits.acquire(ip("2001:db8:1:2::1")).verdict == Verdict::kAccepted);
  CHECK(limits.acquire(ip("2001:db8:1:2::2")).verdict == Verdict::kAccepted);
  CHECK(limits.acquire(ip("2001:db8:1:2:abcd::3")).verdict == Verdict::kSourceLimit);
  CHECK(limits.acquire(ip("2001:db8:1:3::1")).verdict == Verdict::kAccepted);
  CHECK(limits.acquire(ip("203.0.113.5")).verdict == Verdict::kAccepted);
  CHECK(limits.fromSource(ip("::ffff:203.0.113.5")) == 1);
}

TEST_CASE("a connection taken over from another worker keeps its place whatever the limits") {
  ConnectionLimits limits(1, 1);
  const auto source = ip("203.0.113.5");
  CHECK(limits.acquire(source).verdict == Verdict::kAccepted);
  // Worker A let it go (release), worker B took it (adopt): still one.
  limits.release(source);
  limits.adopt(source);
  CHECK(limits.total() == 1);
  limits.adopt(source);  // even over the limits
  CHECK(limits.fromSource(source) == 2);
  limits.release(source);
  limits.release(source);
  limits.release(source);  // one release too many changes nothing
  CHECK(limits.total() == 0);
}

TEST_CASE("a reload's limits apply to the next connection, and open ones stay") {
  ConnectionLimits limits(5, 0);
  const auto source = ip("203.0.113.5");
  for (int i = 0; i < 4; ++i) CHECK(limits.acquire(source).verdict == Verdict::kAccepted);
  limits.setLimits(2, 0);
  CHECK(limits.acquire(source).verdict == Verdict::kSourceLimit);
  CHECK(limits.fromSource(source) == 4);
  limits.setLimits(0, 0);
  CHECK(limits.acquire(source).verdict == Verdict::kAccepted);
}

TEST_CASE("check() answers as acquire() would without counting, and marks a refused source once") {
  ConnectionLimits limits(2, 3);
  const auto source = ip("203.0.113.5");
  CHECK(limits.check(source).verdict == Verdict::kAccepted);
  CHECK(limits.total() == 0);
  (void)limits.acquire(source);
  (void)limits.acquire(source);
  const auto refused = limits.check(source);
  CHECK(refused.verdict == Verdict::kSourceLimit);
  CHECK(refused.first_refusal);
  CHECK_FALSE(limits.check(source).first_refusal);
  CHECK_FALSE(limits.acquire(source).first_refusal);  // the same episode
  (void)limits.acquire(ip("203.0.113.6"));
  CHECK(limits.check(ip("203.0.113.7")).verdict == Verdict::kTotalLimit);
  CHECK(limits.total() == 3);
}
