// See shared_quota.hpp.
#include "relay/io/shared_quota.hpp"

#include "relay/wire/checks.hpp"

namespace tern::io {

core::AllocationQuota::Admission SharedQuota::acquire(std::string_view username) noexcept {
  return admit(username, true);
}

core::AllocationQuota::Admission SharedQuota::forceAcquire(std::string_view username) noexcept {
  return admit(username, false);
}

core::AllocationQuota::Admission SharedQuota::admit(std::string_view username, bool enforce) noexcept {
  std::lock_guard lock(mutex_);
  if (enforce && max_total_ != 0 && total_ >= max_total_) return {Grant::kTotalQuotaReached, nullptr};
  try {
    auto [it, added] = per_user_.try_emplace(std::string(username));
    User& user = it->second;
    if (enforce && max_per_user_ != 0 && user.allocations >= max_per_user_) return {Grant::kUserQuotaReached, nullptr};
    if (added) {
      try {
        user.bandwidth = std::make_unique<core::UserBandwidth>();
      } catch (const std::bad_alloc&) {
        per_user_.erase(it);
        throw;
      }
    }
    ++user.allocations;
    ++total_;
    return {Grant::kGranted, user.bandwidth.get()};
  } catch (const std::bad_alloc&) {
    checks::outOfMemory("allocation quota entry");  // refused with 508 like a full node
    return {Grant::kTotalQuotaReached, nullptr};
  }
}

void SharedQuota::release(std::string_view username) noexcept {
  std::lock_guard lock(mutex_);
  TERN_BUG_IF(total_ == 0, "allocation quota released more often than acquired");
  if (total_ > 0) --total_;
  auto it = per_user_.find(std::string(username));
  TERN_BUG_IF(it == per_user_.end(), "allocation quota released for a user that holds none");
  if (it == per_user_.end()) return;
  if (--it->second.allocations == 0) per_user_.erase(it);
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
