// Per-source token buckets in a fixed set-associative table; see source_rate_limiter.hpp.
#include "relay/core/source_rate_limiter.hpp"

#include <algorithm>
#include <bit>
#include <utility>

#include "relay/core/source_key.hpp"

namespace tern::core {

namespace {

constexpr std::uint64_t kUsed = 1;
constexpr std::uint64_t kIPv6 = 2;
constexpr std::uint64_t kVerified = 4;
constexpr std::uint32_t kMilli = 1000;

std::uint64_t loadLittleEndian(const std::uint8_t* p) noexcept {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

std::int64_t millisecondsOf(TimePoint t) noexcept {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
}

}  // namespace

SourceRateLimiter::SourceRateLimiter(std::size_t capacity,
                                     const std::array<std::uint8_t, 16>& hash_key)
    : entries_(std::bit_ceil(std::max(capacity, kWays))),
      k0_(loadLittleEndian(hash_key.data())),
      k1_(loadLittleEndian(hash_key.data() + 8)) {}

SourceRateLimiter::Key SourceRateLimiter::keyOf(const IpAddress& source, bool verified) noexcept {
  const SourceKey s = sourceKeyOf(source);
  return {s.prefix, kUsed | (s.v6 ? kIPv6 : 0) | (verified ? kVerified : 0)};
}

std::size_t SourceRateLimiter::setOf(const Key& key) const noexcept {
  const std::size_t sets = entries_.size() / kWays;
  return static_cast<std::size_t>(sipHash(k0_, k1_, key.address, key.kind) & (sets - 1));
}

SourceRateLimiter::Verdict SourceRateLimiter::admit(const IpAddress& source, bool verified,
                                                    const UnauthenticatedLimits& limits,
                                                    TimePoint now) noexcept {
  if (limits.per_second == 0) return Verdict::kAnswer;
  const Key key = keyOf(source, verified);
  const std::int64_t now_ms = millisecondsOf(now);
  const std::uint64_t full =
      std::uint64_t{std::clamp<std::uint32_t>(limits.burst, 1, UnauthenticatedLimits::kMaxBurst)} *
      kMilli;

  Entry* const set = entries_.data() + setOf(key) * kWays;
  Entry* entry = nullptr;
  Entry* stalest = set;
  for (std::size_t way = 0; way < kWays && entry == nullptr; ++way) {
    if (set[way].key == key) {
      entry = &set[way];
    } else if (set[way].key.kind == 0 ||
               (stalest->key.kind != 0 && set[way].last_ms < stalest->last_ms)) {
      // An empty entry is the best place for a newcomer; among used ones, the stalest.
      stalest = &set[way];
    }
  }
  if (entry == nullptr) {
    entry = stalest;
    *entry = Entry{key, now_ms, static_cast<std::uint32_t>(full), false};
  }

  // Refill for the time since the last use: per_second tokens a second is per_second
  // milli-tokens a millisecond. A clock that went back refills nothing.
  const std::uint64_t elapsed_ms =
      static_cast<std::uint64_t>(std::max<std::int64_t>(now_ms - entry->last_ms, 0));
  const std::uint64_t gained = std::min(elapsed_ms, full) * limits.per_second;
  const std::uint64_t tokens = std::min(full, std::uint64_t{entry->milli_tokens} + gained);
  entry->last_ms = std::max(now_ms, entry->last_ms);
  // A full bucket ends an episode of drops: the next one is news again.
  if (tokens == full) entry->limited = false;
  if (tokens >= kMilli) {
    entry->milli_tokens = static_cast<std::uint32_t>(tokens - kMilli);
    return Verdict::kAnswer;
  }
  entry->milli_tokens = static_cast<std::uint32_t>(tokens);
  return std::exchange(entry->limited, true) ? Verdict::kDrop : Verdict::kFirstDrop;
}

std::size_t SourceRateLimiter::used() const noexcept {
  return static_cast<std::size_t>(std::count_if(entries_.begin(), entries_.end(),
                                                [](const Entry& e) { return e.key.kind != 0; }));
}

}  // namespace tern::core
