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

}  // namespace tern::core
