// See shared_quota.hpp.
#include "relay/io/shared_quota.hpp"

namespace tern::io {

core::AllocationQuota::Grant SharedQuota::acquire(std::string_view username) noexcept {
  std::lock_guard lock(mutex_);
  if (max_total_ != 0 && total_ >= max_total_) return Grant::kTotalQuotaReached;
  try {
    auto& count = per_user_[std::string(username)];
    if (max_per_user_ != 0 && count >= max_per_user_) return Grant::kUserQuotaReached;
    ++count;
  } catch (const std::bad_alloc&) {
    return Grant::kTotalQuotaReached;
  }
  ++total_;
  return Grant::kGranted;
}

void SharedQuota::release(std::string_view username) noexcept {
  std::lock_guard lock(mutex_);
  if (total_ > 0) --total_;
  auto it = per_user_.find(std::string(username));
  if (it == per_user_.end()) return;
  if (--it->second == 0) per_user_.erase(it);
}

void SharedQuota::setLimits(std::uint32_t max_total, std::uint32_t max_per_user) noexcept {
  std::lock_guard lock(mutex_);
  max_total_ = max_total;
  max_per_user_ = max_per_user;
}

std::uint32_t SharedQuota::total() const {
  std::lock_guard lock(mutex_);
  return total_;
}

}  // namespace tern::io
