// See bandwidth.hpp.
#include "relay/core/bandwidth.hpp"

namespace tern::core {

BandwidthLimit::BandwidthLimit(std::uint64_t bits_per_second) noexcept {
  if (bits_per_second == 0) return;
  bits_per_second_ = std::clamp(bits_per_second, kMinBitsPerSecond, kMaxBitsPerSecond);
  // 8e9 ns per bit-second, in 48.16 fixed point: (8e9 << 16) / bps. At the top of the range
  // that is 5242 (0.02 % low, so the limit is as much high); at the bottom 5.2e11, times a
  // clamped charge of 2^20 bytes still far below 2^64.
  constexpr std::uint64_t kNsPerBitSecondQ16 = 8'000'000'000ull << 16;
  ns_per_byte_q16_ = kNsPerBitSecondQ16 / bits_per_second_;
}

RequestRateLimit::RequestRateLimit(std::uint32_t per_second, std::uint32_t burst) noexcept {
  if (per_second == 0) return;
  per_second_ = std::clamp<std::uint32_t>(per_second, 1, kMaxPerSecond);
  burst_requests_ = std::clamp<std::uint32_t>(burst, 1, kMaxBurst);
  ns_per_request_ = 1'000'000'000 / per_second_;
  burst_ = std::chrono::nanoseconds(ns_per_request_ * burst_requests_);
}

}  // namespace tern::core
