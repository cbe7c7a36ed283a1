// The relay port range (--relay-ports), shared by every worker, and each worker's view of it.
// A worker hands out ports of its own share first, at random (RFC 8656 §7.2 recommends
// unpredictable relayed ports), and borrows ports of other shares only when its own share is
// empty: the kernel's SO_REUSEPORT hash may put more clients on one worker than on another,
// and a client must not get 508 while the range still has ports. Claims are lock-free atomic
// bit flips, taken on the control path (Allocate, reservations), never per packet.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <utility>

namespace tern::io {

class RelayPortRange {
 public:
  // Ports [first, last], inclusive. An empty range (first > last) hands out nothing.
  RelayPortRange(std::uint16_t first, std::uint16_t last);

  std::uint16_t first() const noexcept { return first_; }
  std::uint16_t last() const noexcept { return last_; }
  bool empty() const noexcept { return first_ > last_; }
  // Takes `port` if it is in the range and free; false otherwise. Any thread.
  bool claim(std::uint16_t port) noexcept;
  void release(std::uint16_t port) noexcept;
  // False when every port of the 64-port word holding `port` is taken (or `port` is outside
  // the range): lets a scan skip 64 taken ports at once.
  bool anyFreeInWord(std::uint16_t port) const noexcept;
  // Ports taken now, over the whole range.
  std::size_t taken() const noexcept;

 private:
  std::uint16_t first_;
  std::uint16_t last_;
  std::size_t words_count_;
  std::unique_ptr<std::atomic<std::uint64_t>[]> words_;  // bit (port - first): taken
};

class PortPool {
 public:
  // A worker's share [share_first, share_last] of `range` (see share()).
  PortPool(std::shared_ptr<RelayPortRange> range, std::uint16_t share_first,
           std::uint16_t share_last);
  // A pool that is a whole range of its own (tests, a single worker).
  PortPool(std::uint16_t first, std::uint16_t last);

  std::optional<std::uint16_t> take() noexcept;
  // RFC 8656 §7.2 EVEN-PORT: a random even port; with `pair`, also its odd successor, both
  // taken (the even one is returned).
  std::optional<std::uint16_t> takeEven(bool pair) noexcept;
  void release(std::uint16_t port) noexcept;
  // An upgrade (docs/upgrade.md): a port the old process's socket already holds. Claimed in
  // the range if it lies in it (a new --relay-ports may not cover it) and counted as held, so
  // its release() balances. False if another socket of this process holds it.
  bool adopt(std::uint16_t port) noexcept;
  // Ports of the whole range taken from other workers' shares since the start.
  std::uint64_t borrowed() const noexcept { return borrowed_; }
  // Ports taken through this pool minus ports released through it. A port may be released by
  // another worker than the one that took it (an allocation moved, RFC 8016), so only the sum
  // over all workers' pools is the number of ports in use.
  std::int64_t heldDelta() const noexcept { return held_; }

  // The share of worker `index` of `count` in [min, max]; shares are contiguous and disjoint.
  static std::pair<std::uint16_t, std::uint16_t> share(std::uint16_t min, std::uint16_t max,
                                                       unsigned index, unsigned count) noexcept;

 private:
  // The first port at or after a random start in [lo, hi] (wrapping) that can be claimed: any
  // port, an even one, or an even one whose odd successor is free too (`pair`).
  std::optional<std::uint16_t> claimIn(std::uint16_t lo, std::uint16_t hi, bool even,
                                       bool pair) noexcept;
  std::optional<std::uint16_t> claim(bool even, bool pair) noexcept;

  std::shared_ptr<RelayPortRange> range_;
  std::uint16_t share_first_;
  std::uint16_t share_last_;
  std::uint64_t borrowed_ = 0;
  std::int64_t held_ = 0;
  std::minstd_rand random_;
};

}  // namespace tern::io
