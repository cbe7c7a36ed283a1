// SourceRateLimiter: token buckets by source address in a fixed table (DESIGN.md §4), driven
// with fake time points.
#include "relay/core/source_rate_limiter.hpp"

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <string>

#include "relay/core/source_key.hpp"

using namespace tern;
using core::SourceRateLimiter;
using Verdict = SourceRateLimiter::Verdict;
using namespace std::chrono_literals;

namespace {

const std::array<std::uint8_t, 16> kKey = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
const core::TimePoint kStart{std::chrono::seconds(1000)};

wire::IpAddress ip(const std::string& text) { return *wire::IpAddress::parse(text); }

// The n-th address of 198.18.0.0/15, a distinct source each.
wire::IpAddress nthSource(std::uint32_t n) { return wire::IpAddress::v4(0xC6120000u + n); }

// Answers `source` gets out of `attempts` requests at `now`.
int answered(SourceRateLimiter& limiter, const wire::IpAddress& source,
             const core::UnauthenticatedLimits& limits, core::TimePoint now, int attempts,
             bool verified = false) {
  int n = 0;
  for (int i = 0; i < attempts; ++i)
    n += limiter.admit(source, verified, limits, now) == Verdict::kAnswer ? 1 : 0;
  return n;
}

}  // namespace

TEST_CASE("a source gets its burst at once, then the rate, and nothing beyond") {
  SourceRateLimiter limiter(64, kKey);
  const core::UnauthenticatedLimits limits{10, 50};
  const auto source = ip("203.0.113.9");
  CHECK(answered(limiter, source, limits, kStart, 80) == 50);
  // 10 per second: 100 ms bring one token back, a second ten.
  CHECK(answered(limiter, source, limits, kStart + 100ms, 5) == 1);
  CHECK(answered(limiter, source, limits, kStart + 1100ms, 20) == 10);
  // A long quiet spell fills the bucket, and no further.
  CHECK(answered(limiter, source, limits, kStart + 1h, 80) == 50);
}

TEST_CASE("the first drop of an episode is told apart, so it is logged once") {
  SourceRateLimiter limiter(64, kKey);
  const core::UnauthenticatedLimits limits{10, 2};
  const auto source = ip("203.0.113.9");
  CHECK(limiter.admit(source, false, limits, kStart) == Verdict::kAnswer);
  CHECK(limiter.admit(source, false, limits, kStart) == Verdict::kAnswer);
  CHECK(limiter.admit(source, false, limits, kStart) == Verdict::kFirstDrop);
  CHECK(limiter.admit(source, false, limits, kStart) == Verdict::kDrop);
  // A token back is not the end of the episode...
  CHECK(limiter.admit(source, false, limits, kStart + 100ms) == Verdict::kAnswer);
  CHECK(limiter.admit(source, false, limits, kStart + 100ms) == Verdict::kDrop);
  // ...a full bucket is.
  CHECK(limiter.admit(source, false, limits, kStart + 10s) == Verdict::kAnswer);
  CHECK(limiter.admit(source, false, limits, kStart + 10s) == Verdict::kAnswer);
  CHECK(limiter.admit(source, false, limits, kStart + 10s) == Verdict::kFirstDrop);
}

TEST_CASE("rate 0 turns the limit off") {
  SourceRateLimiter limiter(64, kKey);
  CHECK(answered(limiter, ip("203.0.113.9"), {0, 1}, kStart, 10'000) == 10'000);
  CHECK(limiter.used() == 0);
}

TEST_CASE("sources are told apart by IPv4 address and IPv6 /64, not by port or interface id") {
  SourceRateLimiter limiter(64, kKey);
  const core::UnauthenticatedLimits limits{1, 3};
  CHECK(answered(limiter, ip("203.0.113.9"), limits, kStart, 5) == 3);
  CHECK(answered(limiter, ip("203.0.113.10"), limits, kStart, 5) == 3);
  // One /64: one host or LAN, which may pick any of its 2^64 addresses.
  CHECK(answered(limiter, ip("2001:db8:1:2::1"), limits, kStart, 2) == 2);
  CHECK(answered(limiter, ip("2001:db8:1:2:ffff::9"), limits, kStart, 5) == 1);
  CHECK(answered(limiter, ip("2001:db8:1:3::1"), limits, kStart, 5) == 3);
  // An IPv4-mapped IPv6 source is the IPv4 host it names.
  CHECK(answered(limiter, ip("::ffff:203.0.113.9"), limits, kStart, 5) == 0);
  CHECK(core::sourceKeyOf(ip("::ffff:203.0.113.9")) == core::sourceKeyOf(ip("203.0.113.9")));
}

TEST_CASE("a spoofer who drains a source's UDP bucket leaves its TCP and TLS bucket alone") {
  SourceRateLimiter limiter(64, kKey);
  const core::UnauthenticatedLimits limits{1, 3};
  const auto victim = ip("203.0.113.9");
  CHECK(answered(limiter, victim, limits, kStart, 100, false) == 3);
  CHECK(answered(limiter, victim, limits, kStart, 100, true) == 3);
}

TEST_CASE("memory stays fixed whatever the number of sources") {
  SourceRateLimiter limiter(1000, kKey);
  CHECK(limiter.capacity() == 1024);
  const core::UnauthenticatedLimits limits{100, 1000};
  for (std::uint32_t n = 0; n < 100'000; ++n)
    (void)limiter.admit(nthSource(n), false, limits, kStart);
  CHECK(limiter.capacity() == 1024);
  CHECK(limiter.used() == 1024);
}

TEST_CASE(
    "a source that keeps sending keeps its drained bucket while new sources churn the table") {
  // One set: every source competes for the same kWays entries, the worst case of a flood of
  // spoofed sources aimed at flushing one victim's entry.
  SourceRateLimiter limiter(SourceRateLimiter::kWays, kKey);
  const core::UnauthenticatedLimits limits{1, 5};
  const auto victim = ip("203.0.113.9");
  CHECK(answered(limiter, victim, limits, kStart, 10) == 5);
  for (std::uint32_t n = 0; n < 1000; ++n) {
    // The victim's own requests make its entry the newest: the stalest one is someone else's.
    (void)limiter.admit(nthSource(n), false, limits, kStart);
    CHECK(limiter.admit(victim, false, limits, kStart) != Verdict::kAnswer);
  }
}

TEST_CASE("a source evicted by kWays newer ones comes back with a full bucket") {
  // The documented price: flushing an entry takes requests from kWays fresh sources in its
  // set (about the whole table's worth when the set is secret) for one more burst.
  SourceRateLimiter limiter(SourceRateLimiter::kWays, kKey);
  const core::UnauthenticatedLimits limits{1, 5};
  const auto source = ip("203.0.113.9");
  CHECK(answered(limiter, source, limits, kStart, 10) == 5);
  for (std::uint32_t n = 0; n < SourceRateLimiter::kWays - 1; ++n)
    (void)limiter.admit(nthSource(n), false, limits, kStart + 1ms);
  CHECK(answered(limiter, source, limits, kStart + 2ms, 1) == 0);  // still there, still empty
  for (std::uint32_t n = 100; n < 100 + SourceRateLimiter::kWays; ++n) {
    (void)limiter.admit(nthSource(n), false, limits, kStart + 3ms);
  }
  CHECK(answered(limiter, source, limits, kStart + 4ms, 10) == 5);
}

TEST_CASE("a clock that goes back refills nothing and breaks nothing") {
  SourceRateLimiter limiter(64, kKey);
  const core::UnauthenticatedLimits limits{10, 5};
  const auto source = ip("203.0.113.9");
  CHECK(answered(limiter, source, limits, kStart, 10) == 5);
  CHECK(answered(limiter, source, limits, kStart - 1h, 10) == 0);
  CHECK(answered(limiter, source, limits, kStart + 1s, 20) == 5);
}

TEST_CASE("a smaller burst after a reload applies at once to full buckets") {
  SourceRateLimiter limiter(64, kKey);
  const auto source = ip("203.0.113.9");
  CHECK(answered(limiter, source, {10, 100}, kStart, 1) == 1);
  CHECK(answered(limiter, source, {10, 3}, kStart + 1s, 10) == 3);
}

TEST_CASE("the largest rate and burst do not overflow") {
  SourceRateLimiter limiter(64, kKey);
  const core::UnauthenticatedLimits limits{core::UnauthenticatedLimits::kMaxBurst,
                                           core::UnauthenticatedLimits::kMaxBurst};
  const auto source = ip("203.0.113.9");
  CHECK(answered(limiter, source, limits, kStart, 1000) == 1000);
  CHECK(answered(limiter, source, limits, kStart + std::chrono::hours(24 * 365 * 100), 1000) ==
        1000);
}

TEST_CASE("sipHash is SipHash-2-4 (the reference vector for a 16-byte message)") {
  // Key and message are the bytes 00 01 .. 0f, read as little-endian words; the reference
  // output bytes db 9b c2 57 7f cc 2a 3f are the result in little-endian order.
  CHECK(core::sipHash(0x0706050403020100ull, 0x0F0E0D0C0B0A0908ull, 0x0706050403020100ull,
                      0x0F0E0D0C0B0A0908ull) == 0x3F2ACC7F57C29BDBull);
}
