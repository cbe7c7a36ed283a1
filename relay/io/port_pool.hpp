// A worker's share of the relay port range (--relay-ports split across workers), handed out
// at random (RFC 8656 §7.2 recommends unpredictable relayed ports) and returned on release.
#pragma once

#include <cstdint>
#include <optional>
#include <random>
#include <vector>

namespace tern::io {

class PortPool {
 public:
  // Ports [first, last], inclusive. An empty range (first > last) hands out nothing.
  PortPool(std::uint16_t first, std::uint16_t last);

  std::optional<std::uint16_t> take() noexcept;
  // RFC 8656 §7.2 EVEN-PORT: a random even port; with `pair`, also its odd successor, both
  // taken (the even one is returned).
  std::optional<std::uint16_t> takeEven(bool pair) noexcept;
  void release(std::uint16_t port);
  std::size_t available() const noexcept { return free_.size(); }

  // The share of worker `index` of `count` in [min, max]; shares are contiguous and disjoint.
  static std::pair<std::uint16_t, std::uint16_t> share(std::uint16_t min, std::uint16_t max,
                                                       unsigned index, unsigned count) noexcept;

 private:
  std::vector<std::uint16_t> free_;
  std::minstd_rand random_;
};

}  // namespace tern::io
