// One-way latency in microseconds, in log-linear buckets (HdrHistogram's idea at 1/32
// precision): constant memory and O(1) recording, whatever the rate.
#pragma once

#include <algorithm>
#include <array>
#include <bit>
#include <cstdint>

namespace tern::bench {

class LatencyHistogram {
 public:
  void record(std::uint64_t micros) noexcept {
    ++counts_[bucketOf(micros)];
    ++total_;
    max_ = std::max(max_, micros);
  }
  void merge(const LatencyHistogram& o) noexcept {
    for (std::size_t i = 0; i < counts_.size(); ++i) counts_[i] += o.counts_[i];
    total_ += o.total_;
    max_ = std::max(max_, o.max_);
  }
  std::uint64_t count() const noexcept { return total_; }
  std::uint64_t max() const noexcept { return max_; }
  // The upper bound of the bucket holding the q-quantile (0 < q <= 1), in microseconds.
  std::uint64_t quantile(double q) const noexcept {
    if (total_ == 0) return 0;
    const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total_ - 1)) + 1;
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < counts_.size(); ++i) {
      seen += counts_[i];
      if (seen >= rank) return std::min(upperOf(i), max_);
    }
    return max_;
  }

 private:
  static constexpr unsigned kSubBits = 5;  // 32 sub-buckets per power of two
  static constexpr std::size_t kBuckets = 64 << kSubBits;

  static std::size_t bucketOf(std::uint64_t v) noexcept {
    if (v < (1u << kSubBits)) return static_cast<std::size_t>(v);
    const unsigned exponent = static_cast<unsigned>(std::bit_width(v)) - 1 - kSubBits;
    const auto sub = static_cast<std::size_t>(v >> exponent) & ((1u << kSubBits) - 1);
    return (static_cast<std::size_t>(exponent + 1) << kSubBits) + sub;
  }
  static std::uint64_t upperOf(std::size_t bucket) noexcept {
    if (bucket < (1u << kSubBits)) return bucket;
    const std::size_t exponent = (bucket >> kSubBits) - 1;
    const std::uint64_t sub = bucket & ((1u << kSubBits) - 1);
    return (((1ull << kSubBits) + sub + 1) << exponent) - 1;
  }

  std::array<std::uint64_t, kBuckets> counts_{};
  std::uint64_t total_ = 0;
  std::uint64_t max_ = 0;
};

}  // namespace tern::bench
