// See port_pool.hpp.
#include "relay/io/port_pool.hpp"

namespace tern::io {

PortPool::PortPool(std::uint16_t first, std::uint16_t last) : random_(std::random_device{}()) {
  for (std::uint32_t p = first; p <= last && first <= last; ++p) free_.push_back(static_cast<std::uint16_t>(p));
}

std::optional<std::uint16_t> PortPool::take() noexcept {
  if (free_.empty()) return std::nullopt;
  std::uniform_int_distribution<std::size_t> pick(0, free_.size() - 1);
  const std::size_t i = pick(random_);
  const std::uint16_t port = free_[i];
  free_[i] = free_.back();
  free_.pop_back();
  return port;
}

std::optional<std::uint16_t> PortPool::takeEven(bool pair) noexcept {
  if (free_.empty()) return std::nullopt;
  // Start at a random place and walk the free list once: control path, at most a few
  // thousand entries.
  std::uniform_int_distribution<std::size_t> pick(0, free_.size() - 1);
  const std::size_t start = pick(random_);
  for (std::size_t k = 0; k < free_.size(); ++k) {
    const std::size_t i = (start + k) % free_.size();
    const std::uint16_t port = free_[i];
    if (port % 2 != 0) continue;
    std::size_t next = free_.size();
    if (pair) {
      if (port == 65534) continue;
      for (std::size_t j = 0; j < free_.size(); ++j) {
        if (free_[j] == port + 1) next = j;
      }
      if (next == free_.size()) continue;
    }
    // Remove the higher index first so the lower stays valid.
    for (std::size_t idx : {std::max(i, next), std::min(i, next)}) {
      if (idx == free_.size()) continue;
      free_[idx] = free_.back();
      free_.pop_back();
    }
    return port;
  }
  return std::nullopt;
}

void PortPool::release(std::uint16_t port) { free_.push_back(port); }

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
