// See port_pool.hpp.
#include "relay/io/port_pool.hpp"

#include <algorithm>
#include <bit>

#include "relay/wire/checks.hpp"

namespace tern::io {

namespace {
constexpr std::uint64_t kAllTaken = ~std::uint64_t{0};
}

RelayPortRange::RelayPortRange(std::uint16_t first, std::uint16_t last)
    : first_(first),
      last_(last),
      words_count_(first <= last ? (std::size_t{last} - first) / 64 + 1 : 0),
      words_(
          std::make_unique<std::atomic<std::uint64_t>[]>(std::max<std::size_t>(words_count_, 1))) {}

bool RelayPortRange::claim(std::uint16_t port) noexcept {
  if (empty() || port < first_ || port > last_) return false;
  const auto bit = static_cast<std::size_t>(port - first_);
  const std::uint64_t mask = std::uint64_t{1} << (bit % 64);
  return (words_[bit / 64].fetch_or(mask, std::memory_order_acq_rel) & mask) == 0;
}

void RelayPortRange::release(std::uint16_t port) noexcept {
  if (empty() || port < first_ || port > last_) return;
  const auto bit = static_cast<std::size_t>(port - first_);
  const std::uint64_t mask = std::uint64_t{1} << (bit % 64);
  const std::uint64_t before = words_[bit / 64].fetch_and(~mask, std::memory_order_acq_rel);
  TERN_BUG_IF((before & mask) == 0, "a relay port was released that no worker held");
}

bool RelayPortRange::anyFreeInWord(std::uint16_t port) const noexcept {
  if (empty() || port < first_ || port > last_) return false;
  return words_[static_cast<std::size_t>(port - first_) / 64].load(std::memory_order_relaxed) !=
         kAllTaken;
}

std::size_t RelayPortRange::taken() const noexcept {
  std::size_t n = 0;
  for (std::size_t i = 0; i < words_count_; ++i) {
    n += static_cast<std::size_t>(std::popcount(words_[i].load(std::memory_order_relaxed)));
  }
  return n;
}

PortPool::PortPool(std::shared_ptr<RelayPortRange> range, std::uint16_t share_first,
                   std::uint16_t share_last)
    : range_(std::move(range)),
      share_first_(share_first),
      share_last_(share_last),
      random_(std::random_device{}()) {}

PortPool::PortPool(std::uint16_t first, std::uint16_t last)
    : PortPool(std::make_shared<RelayPortRange>(first, last), first, last) {}

std::optional<std::uint16_t> PortPool::claimIn(std::uint16_t lo, std::uint16_t hi, bool even,
                                               bool pair) noexcept {
  lo = std::max(lo, range_->first());
  hi = std::min(hi, range_->last());
  if (range_->empty() || lo > hi) return std::nullopt;
  const std::uint32_t span = std::uint32_t{hi} - lo + 1;
  std::uniform_int_distribution<std::uint32_t> pick(0, span - 1);
  const std::uint32_t start = pick(random_);
  for (std::uint32_t k = 0; k < span; ++k) {
    const auto port = static_cast<std::uint16_t>(lo + (start + k) % span);
    // A word whose 64 ports are all taken is skipped whole (to its last port in this span).
    if (!range_->anyFreeInWord(port)) {
      const std::uint32_t offset = port - range_->first();
      const std::uint32_t word_end = offset | 63u;
      const std::uint32_t skip = std::min<std::uint32_t>(word_end - offset, hi - port);
      k += skip;
      continue;
    }
    if (even && port % 2 != 0) continue;
    if (pair && port == 65535) continue;
    if (!range_->claim(port)) continue;
    if (pair && !range_->claim(static_cast<std::uint16_t>(port + 1))) {
      range_->release(port);
      continue;
    }
    held_ += pair ? 2 : 1;
    return port;
  }
  return std::nullopt;
}

std::optional<std::uint16_t> PortPool::claim(bool even, bool pair) noexcept {
  if (auto port = claimIn(share_first_, share_last_, even, pair)) return port;
  // Our share is used up: borrow from the whole range (control path: a scan of a few
  // thousand words at most). The port returns to the range on release, whoever took it.
  auto port = claimIn(range_->first(), range_->last(), even, pair);
  if (port) ++borrowed_;
  return port;
}

std::optional<std::uint16_t> PortPool::take() noexcept { return claim(false, false); }

std::optional<std::uint16_t> PortPool::takeEven(bool pair) noexcept { return claim(true, pair); }

void PortPool::release(std::uint16_t port) noexcept {
  range_->release(port);
  --held_;
}

bool PortPool::adopt(std::uint16_t port) noexcept {
  const bool outside = range_->empty() || port < range_->first() || port > range_->last();
  if (!outside && !range_->claim(port)) return false;
  ++held_;
  return true;
}

std::pair<std::uint16_t, std::uint16_t> PortPool::share(std::uint16_t min, std::uint16_t max,
                                                        unsigned index, unsigned count) noexcept {
  const std::uint32_t total = std::uint32_t{max} - min + 1;
  const std::uint32_t each = total / count;
  const std::uint32_t first = min + each * index;
  // The last worker also takes the remainder.
  const std::uint32_t last = index + 1 == count ? max : first + each - 1;
  return {static_cast<std::uint16_t>(first), static_cast<std::uint16_t>(last)};
}

}  // namespace tern::io
