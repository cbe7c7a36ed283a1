// The token buckets behind --max-bps and --max-bps-per-user: the cost of a byte at a limit,
// refill from the clock, debt, and a bucket shared by threads that never over-admits.
#include <doctest/doctest.h>

#include <thread>
#include <vector>

#include "relay/core/bandwidth.hpp"

using namespace tern;
using namespace std::chrono_literals;
using core::BandwidthLimit;

namespace {

const core::TimePoint kStart{1000s};

}  // namespace

TEST_CASE("A bandwidth limit is in bits per second and costs each byte its share of a second") {
  CHECK(BandwidthLimit().unlimited());
  CHECK(BandwidthLimit(0).unlimited());
  const BandwidthLimit mbit(1'000'000);  // 125,000 bytes a second: 8 us a byte
  CHECK(!mbit.unlimited());
  CHECK(mbit.cost(1) == 8'000);
  CHECK(mbit.cost(1250) == 10'000'000);
  CHECK(mbit.cost(0) == 0);
  // Out-of-range values are clamped (config validation refuses them first).
  CHECK(BandwidthLimit(1).bitsPerSecond() == BandwidthLimit::kMinBitsPerSecond);
  CHECK(BandwidthLimit(~std::uint64_t{0}).bitsPerSecond() == BandwidthLimit::kMaxBitsPerSecond);
  // At the extremes the fixed-point cost stays within 0.02 % and never overflows.
  const BandwidthLimit fastest(BandwidthLimit::kMaxBitsPerSecond);  // 0.08 ns a byte
  CHECK(fastest.cost(1'000'000) >= 79'980);
  CHECK(fastest.cost(1'000'000) <= 80'000);
  const BandwidthLimit slowest(BandwidthLimit::kMinBitsPerSecond);  // 8 ms a byte
  CHECK(slowest.cost(65'536) == 65'536 * 8'000'000ll);
  CHECK(slowest.cost(~std::size_t{0}) == slowest.cost(std::size_t{1} << 20));
}

TEST_CASE("A token bucket starts full, runs into debt by one charge at most, and refills with time") {
  const BandwidthLimit limit(80'000);  // 10,000 bytes a second
  core::TokenBucket bucket;
  CHECK(bucket.hasTokens(limit, kStart));
  CHECK(bucket.wait(limit, kStart) == 0ns);
  bucket.take(limit, 9'000, kStart);
  CHECK(bucket.hasTokens(limit, kStart));
  bucket.take(limit, 3'000, kStart);  // 2,000 bytes of debt: 0.2 s to repay
  CHECK(!bucket.hasTokens(limit, kStart));
  CHECK(bucket.wait(limit, kStart) == 200ms + 1ns);
  CHECK(!bucket.hasTokens(limit, kStart + 200ms));
  CHECK(bucket.hasTokens(limit, kStart + 200ms + 1ns));
  CHECK(bucket.wait(limit, kStart + 150ms) == 50ms + 1ns);
  // No limit: always tokens, nothing charged.
  CHECK(bucket.hasTokens(BandwidthLimit(), kStart));
  CHECK(bucket.wait(BandwidthLimit(), kStart) == 0ns);
  // A slower limit (a reload) keeps the used share of the burst: still in debt for 0.2 s.
  CHECK(bucket.wait(BandwidthLimit(8'000), kStart) == 200ms + 1ns);
}

TEST_CASE("A shared token bucket admits exactly one burst from two threads at one instant") {
  const BandwidthLimit limit(8'000'000);  // 1,000,000 bytes a second
  core::SharedTokenBucket bucket;
  std::atomic<std::size_t> admitted{0};
  auto take = [&] {
    std::size_t mine = 0;
    for (int i = 0; i < 20'000; ++i) mine += bucket.tryTake(limit, 100, kStart) ? 1u : 0u;
    admitted += mine;
  };
  std::thread other(take);
  take();
  other.join();
  // A million bytes of burst in 100-byte charges: ten thousand, however the threads met.
  CHECK(admitted.load() == 10'000);
  CHECK(bucket.wait(limit, kStart) == 1ns);
  // Bytes a stream already relayed are taken whatever the level, and repaid in time.
  bucket.take(limit, 500'000, kStart);
  CHECK(bucket.wait(limit, kStart) == 500ms + 1ns);
  CHECK(!bucket.tryTake(limit, 1, kStart + 500ms));
  CHECK(bucket.tryTake(limit, 1, kStart + 501ms));
}
