// See connection_limits.hpp.
#include "relay/io/connection_limits.hpp"

#include <array>
#include <cstring>
#include <utility>

#include "auth/crypto.hpp"
#include "relay/wire/checks.hpp"

namespace tern::io {

namespace {

ConnectionLimits::Admission refuse(bool& refused, ConnectionLimits::Verdict verdict) noexcept {
  return {verdict, !std::exchange(refused, true)};
}

}  // namespace

ConnectionLimits::ConnectionLimits(std::uint32_t per_source, std::uint32_t total)
    : per_source_(per_source), max_total_(total), by_source_(0, [] {
        std::array<std::uint8_t, 16> key{};
        auth::randomBytes(key);
        Hash h;
        std::memcpy(&h.k0, key.data(), 8);
        std::memcpy(&h.k1, key.data() + 8, 8);
        return h;
      }()) {}

ConnectionLimits::Admission ConnectionLimits::acquire(const wire::IpAddress& source) noexcept {
  const core::SourceKey key = core::sourceKeyOf(source);
  std::lock_guard lock(mutex_);
  try {
    Count& count = by_source_[key];
    if (per_source_ != 0 && count.open >= per_source_)
      return refuse(count.refused, Verdict::kSourceLimit);
    if (max_total_ != 0 && total_ >= max_total_) {
      const bool first = !std::exchange(count.refused, true);
      // Not a connection of this source's: an entry made for the refusal goes again.
      if (count.open == 0) by_source_.erase(key);
      return {Verdict::kTotalLimit, first};
    }
    ++count.open;
    ++total_;
    return {};
  } catch (const std::bad_alloc&) {
    checks::outOfMemory("connection limits entry");  // refused like a connection over the limit
    return {Verdict::kTotalLimit, false};
  }
}

void ConnectionLimits::adopt(const wire::IpAddress& source) noexcept {
  const core::SourceKey key = core::sourceKeyOf(source);
  std::lock_guard lock(mutex_);
  try {
    ++by_source_[key].open;
    ++total_;
  } catch (const std::bad_alloc&) {
    checks::outOfMemory("connection limits entry");
    // Uncounted, it cannot be released either: release() finds no entry and does nothing.
  }
}

void ConnectionLimits::release(const wire::IpAddress& source) noexcept {
  const core::SourceKey key = core::sourceKeyOf(source);
  std::lock_guard lock(mutex_);
  auto it = by_source_.find(key);
  if (it == by_source_.end() || it->second.open == 0) return;
  --total_;
  if (--it->second.open == 0) {
    by_source_.erase(it);
  } else if (per_source_ == 0 || it->second.open < per_source_) {
    it->second.refused = false;
  }
}

ConnectionLimits::Admission ConnectionLimits::check(const wire::IpAddress& source) noexcept {
  const core::SourceKey key = core::sourceKeyOf(source);
  std::lock_guard lock(mutex_);
  auto it = by_source_.find(key);
  if (per_source_ != 0 && it != by_source_.end() && it->second.open >= per_source_) {
    return refuse(it->second.refused, Verdict::kSourceLimit);
  }
  if (max_total_ != 0 && total_ >= max_total_) {
    // A source with nothing open has no entry to mark: every refusal of it counts as first.
    return it != by_source_.end() ? refuse(it->second.refused, Verdict::kTotalLimit) : Admission{Verdict::kTotalLimit, true};
  }
  return {};
}

void ConnectionLimits::setLimits(std::uint32_t per_source, std::uint32_t total) noexcept {
  std::lock_guard lock(mutex_);
  per_source_ = per_source;
  max_total_ = total;
}

std::uint32_t ConnectionLimits::total() const {
  std::lock_guard lock(mutex_);
  return total_;
}

std::uint32_t ConnectionLimits::fromSource(const wire::IpAddress& source) const {
  std::lock_guard lock(mutex_);
  auto it = by_source_.find(core::sourceKeyOf(source));
  return it == by_source_.end() ? 0 : it->second.open;
}

}  // namespace tern::io
