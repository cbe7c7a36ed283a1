// Token buckets by source address for the answers tern gives to requests that prove nothing
// (DESIGN.md §4: "rate-limit them per source address"): a flood of spoofed requests cannot
// aim tern's answers at one victim, and the table's memory is fixed whatever the number of
// sources. Sans-I/O: time comes in as an argument.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "relay/core/five_tuple.hpp"
#include "relay/core/server_options.hpp"

namespace tern::core {

// A fixed-size, set-associative table of token buckets (a CPU cache's layout): a source's
// key picks one set of kWays entries through a hash keyed with a per-process secret, and a
// source not in its set takes the place of the entry touched least recently there. Every
// call is O(kWays), allocates nothing and never fails.
//
// Keys: the source's SourceKey (an IPv4 address or an IPv6 /64, see source_key.hpp) and
// whether the transport verified the source (TCP, TLS, DTLS: a handshake) or not (UDP,
// where the source can be spoofed). The two never share a bucket, so a spoofer who drains a
// victim's UDP bucket leaves the victim's TCP and TLS clients untouched.
//
// Eviction: a source that comes back after losing its entry starts with a full bucket.
// That never hurts the evicted source. It could help an attacker only by evicting the
// entry of the address it aims at, which needs kWays newer sources in that entry's set
// while the aimed-at address sends nothing; the set is secret, so that takes about as many
// requests (each answered to its own source) as the table has entries, for one more burst.
class SourceRateLimiter {
 public:
  static constexpr std::size_t kWays = 8;

  // `capacity` sources, rounded up to a power of two of at least kWays; all the memory is
  // taken here. `hash_key` is a per-process random secret.
  SourceRateLimiter(std::size_t capacity, const std::array<std::uint8_t, 16>& hash_key);

  enum class Verdict : std::uint8_t {
    kAnswer,     // a token was taken: answer
    kDrop,       // over the limit: drop silently
    kFirstDrop,  // over the limit for the first time since its bucket was last full
  };
  // One answer to a request from `source` (over a transport that verified it or not) at
  // `now`, under `limits`.
  Verdict admit(const IpAddress& source, bool verified, const UnauthenticatedLimits& limits,
                TimePoint now) noexcept;

  std::size_t capacity() const noexcept { return entries_.size(); }
  // Entries in use (for tests: never more than capacity()).
  std::size_t used() const noexcept;

 private:
  struct Key {
    std::uint64_t address = 0;  // SourceKey::prefix
    std::uint64_t kind = 0;     // family and verified bits; 0 marks an empty entry
    friend bool operator==(const Key&, const Key&) noexcept = default;
  };
  struct Entry {
    Key key;
    std::int64_t last_ms = 0;        // last refill, which is also the last use
    std::uint32_t milli_tokens = 0;  // tokens x 1000, so refills need no floating point
    bool limited = false;            // dropping since the bucket was last full
  };

  static Key keyOf(const IpAddress& source, bool verified) noexcept;
  std::size_t setOf(const Key& key) const noexcept;

  std::vector<Entry> entries_;
  std::uint64_t k0_ = 0;
  std::uint64_t k1_ = 0;
};

}  // namespace tern::core
