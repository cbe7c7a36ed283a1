// Bandwidth limits on relayed data (--max-bps per allocation, --max-bps-per-user) and the
// request rate of an allocation (--max-requests-per-allocation): token buckets on the core's
// clock. No lock, no allocation, no system call per packet; a bucket shared by several
// workers is one atomic word.
#pragma once

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>

#include "metrics/worker_counters.hpp"
#include "relay/core/five_tuple.hpp"

namespace tern::core {

// A rate limit in the form the buckets use: what one byte costs in bucket time.
//
// A bucket holds kBurst worth of bytes at the limit: after a quiet spell, one second of data
// passes at once (a video key frame, a burst after a network stall), and from then on the
// long-run rate is the limit.
class BandwidthLimit {
 public:
  static constexpr std::chrono::nanoseconds kBurst = std::chrono::seconds(1);
  // The range --max-bps accepts: between them cost() is exact to 0.02 % and cannot overflow.
  static constexpr std::uint64_t kMinBitsPerSecond = 1'000;
  static constexpr std::uint64_t kMaxBitsPerSecond = 100'000'000'000;  // 100 Gbit/s

  // No limit.
  constexpr BandwidthLimit() noexcept = default;
  // 0 means no limit; other values are clamped into [kMinBitsPerSecond, kMaxBitsPerSecond].
  explicit BandwidthLimit(std::uint64_t bits_per_second) noexcept;

  bool unlimited() const noexcept { return ns_per_byte_q16_ == 0; }
  std::uint64_t bitsPerSecond() const noexcept { return bits_per_second_; }
  // How much bucket time a full bucket holds.
  static constexpr std::chrono::nanoseconds burst() noexcept { return kBurst; }

  // Bucket time, in nanoseconds, that `bytes` take at this limit. A charge is at most one
  // datagram or one stream read (64 KiB); larger values are clamped so nothing overflows.
  std::int64_t cost(std::size_t bytes) const noexcept {
    constexpr std::size_t kMaxCharge = std::size_t{1} << 20;
    const auto n = static_cast<std::uint64_t>(std::min(bytes, kMaxCharge));
    return static_cast<std::int64_t>((n * ns_per_byte_q16_) >> 16);
  }

 private:
  std::uint64_t bits_per_second_ = 0;
  // Nanoseconds per byte in 48.16 fixed point: a multiply per packet, not a division.
  std::uint64_t ns_per_byte_q16_ = 0;
};

// A limit on requests in the same bucket form (--max-requests-per-allocation): a request costs
// 1/per_second of a second of bucket time and a full bucket holds `burst` requests' worth.
class RequestRateLimit {
 public:
  static constexpr std::uint32_t kMaxPerSecond = 1'000'000;
  static constexpr std::uint32_t kMaxBurst = 1'000'000;

  // No limit.
  constexpr RequestRateLimit() noexcept = default;
  // per_second 0 means no limit; both are clamped into [1, kMax...].
  RequestRateLimit(std::uint32_t per_second, std::uint32_t burst) noexcept;

  bool unlimited() const noexcept { return ns_per_request_ == 0; }
  std::uint32_t perSecond() const noexcept { return per_second_; }
  std::uint32_t burstRequests() const noexcept { return burst_requests_; }
  std::chrono::nanoseconds burst() const noexcept { return burst_; }
  std::int64_t cost(std::size_t requests) const noexcept {
    return ns_per_request_ * static_cast<std::int64_t>(std::min<std::size_t>(requests, kMaxBurst));
  }

 private:
  std::uint32_t per_second_ = 0;
  std::uint32_t burst_requests_ = 0;
  std::int64_t ns_per_request_ = 0;
  std::chrono::nanoseconds burst_{};
};

// The core clock in nanoseconds, the unit of every bucket.
inline std::int64_t bucketTime(TimePoint t) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
}

// A token bucket with one writer (one allocation, on its worker's thread).
//
// It is stored as the time at which it will be full again (the "theoretical arrival time" of
// the generic cell rate algorithm, ITU-T I.371): tokens(now) = limit x (kBurst - (full_at -
// now)), capped at kBurst worth. Time passing is the refill, so nothing is recomputed per
// packet but one max(), and a new limit (a reload) applies from the next packet with the
// used share of the burst carried over.
//
// Charges may run the bucket into debt: a packet passes while the bucket holds any tokens and
// is charged in full, so a packet larger than the whole bucket still gets through at a low
// limit, and over any span T at most limit x (kBurst + T) plus one packet pass. A stream
// (RFC 6062) charges what it already relayed and stops reading until the debt is repaid.
class TokenBucket {
 public:
  // `Limit` is a BandwidthLimit (bytes) or a RequestRateLimit (requests): anything with
  // unlimited(), cost(n) and burst().
  template <class Limit>
  bool hasTokens(const Limit& limit, TimePoint now) const noexcept {
    return limit.unlimited() || full_at_ - bucketTime(now) < limit.burst().count();
  }
  template <class Limit>
  void take(const Limit& limit, std::size_t amount, TimePoint now) noexcept {
    if (limit.unlimited()) return;
    full_at_ = std::max(full_at_, bucketTime(now)) + limit.cost(amount);
  }
  // How long until the bucket holds tokens again; zero if it does.
  template <class Limit>
  std::chrono::nanoseconds wait(const Limit& limit, TimePoint now) const noexcept {
    if (limit.unlimited()) return {};
    return std::chrono::nanoseconds(
        std::max<std::int64_t>(0, full_at_ - limit.burst().count() - bucketTime(now) + 1));
  }
  // When the bucket is full again, on the core's clock: an upgrade hand-over carries it to the
  // new process relative to both processes' `now` (allocation_snapshot.hpp).
  std::int64_t fullAt() const noexcept { return full_at_; }
  void setFullAt(std::int64_t full_at) noexcept { full_at_ = full_at; }

 private:
  std::int64_t full_at_ = 0;  // in the past: full
};

// The same bucket shared by every worker (a user's allocations may live on several): one
// atomic word updated with compare-and-swap, never a lock. Workers' loop clocks differ by
// the few milliseconds since each last looked; max() keeps the bucket from running backwards.
class SharedTokenBucket {
 public:
  // Takes `bytes` if the bucket holds any tokens; false (nothing taken) if it is empty.
  bool tryTake(const BandwidthLimit& limit, std::size_t bytes, TimePoint now) noexcept {
    if (limit.unlimited()) return true;
    const std::int64_t t = bucketTime(now);
    const std::int64_t cost = limit.cost(bytes);
    std::int64_t seen = full_at_.load(std::memory_order_relaxed);
    do {
      if (seen - t >= kBurstNs) return false;
    } while (!full_at_.compare_exchange_weak(seen, std::max(seen, t) + cost, std::memory_order_relaxed));
    return true;
  }
  // Takes `bytes` whether or not the bucket holds tokens (bytes a stream already relayed).
  void take(const BandwidthLimit& limit, std::size_t bytes, TimePoint now) noexcept {
    if (limit.unlimited()) return;
    const std::int64_t t = bucketTime(now);
    const std::int64_t cost = limit.cost(bytes);
    std::int64_t seen = full_at_.load(std::memory_order_relaxed);
    while (!full_at_.compare_exchange_weak(seen, std::max(seen, t) + cost, std::memory_order_relaxed)) {
    }
  }
  std::chrono::nanoseconds wait(const BandwidthLimit& limit, TimePoint now) const noexcept {
    if (limit.unlimited()) return {};
    const std::int64_t full_at = full_at_.load(std::memory_order_relaxed);
    return std::chrono::nanoseconds(std::max<std::int64_t>(0, full_at - kBurstNs - bucketTime(now) + 1));
  }

 private:
  static constexpr std::int64_t kBurstNs = BandwidthLimit::kBurst.count();
  std::atomic<std::int64_t> full_at_{0};
};

// What all allocations of one user (quotaKey) share across workers: one bucket per direction
// of relayed data, indexed by metrics::Direction. Lives from the user's first allocation to
// the end of its last; on a cache line of its own, so two users' buckets never make workers
// contend.
struct alignas(64) UserBandwidth {
  std::array<SharedTokenBucket, metrics::idx(metrics::Direction::kCount)> buckets;
};

}  // namespace tern::core
