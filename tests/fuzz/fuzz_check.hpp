// A check for fuzz targets that stays on in every build type: a property that fails prints what
// and where, then aborts so libFuzzer (or the replay program) reports the input.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <span>

#define TERN_FUZZ_CHECK(condition)                                                          \
  do {                                                                                      \
    if (!(condition)) {                                                                     \
      std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                         \
    }                                                                                       \
  } while (false)

namespace tern::fuzz {

// Reads every byte of `bytes`, so AddressSanitizer reports a span that points outside its
// buffer even when the code under test never looks at those bytes itself.
inline void touch(std::span<const std::uint8_t> bytes) {
  static volatile std::uint8_t sink = 0;
  std::uint8_t x = 0;
  for (std::uint8_t b : bytes) x = static_cast<std::uint8_t>(x ^ b);
  sink = static_cast<std::uint8_t>(sink + x);
}

// True when `inner` lies within `outer` (both may be empty).
inline bool within(std::span<const std::uint8_t> inner, std::span<const std::uint8_t> outer) {
  if (inner.empty()) return true;
  // Compared as integers: ordering pointers into different arrays is unspecified.
  const auto lo = reinterpret_cast<std::uintptr_t>(outer.data());
  const auto hi = lo + outer.size();
  const auto begin = reinterpret_cast<std::uintptr_t>(inner.data());
  return begin >= lo && begin + inner.size() <= hi;
}

}  // namespace tern::fuzz
