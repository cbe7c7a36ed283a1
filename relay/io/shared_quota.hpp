// Allocation admission shared by every worker (per-user and total limits, RFC 8656 §7.2: 486
// and 508), and each user's shared bandwidth buckets. A mutex guards the table: it is taken
// on Allocate and on the end of an allocation, never on the packet path, where allocations
// reach their user's buckets through the pointer acquire() gave them.
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "relay/core/server_output.hpp"

namespace tern::io {

class SharedQuota final : public core::AllocationQuota {
 public:
  // 0 means no limit.
  SharedQuota(std::uint32_t max_total, std::uint32_t max_per_user) noexcept
      : max_total_(max_total), max_per_user_(max_per_user) {}

  // A user's entry, buckets included, lives while the user has an allocation: at most one per
  // allocation, so the table is bounded like the allocations are.
  Admission acquire(std::string_view username) noexcept override;
  Admission forceAcquire(std::string_view username) noexcept override;
  void release(std::string_view username) noexcept override;
  std::uint32_t total() const;
  // A reload: new limits apply to the next Allocate; allocations over them keep running.
  void setLimits(std::uint32_t max_total, std::uint32_t max_per_user) noexcept;

 private:
  // acquire() (`enforce`: the limits apply) and forceAcquire() (an upgrade's restored call).
  Admission admit(std::string_view username, bool enforce) noexcept;
  mutable std::mutex mutex_;
  std::uint32_t max_total_;
  std::uint32_t max_per_user_;
  std::uint32_t total_ = 0;
  struct User {
    std::uint32_t allocations = 0;
    // Its own node, so the address acquire() hands out stays put while the table grows.
    std::unique_ptr<core::UserBandwidth> bandwidth;
  };
  std::unordered_map<std::string, User> per_user_;
};

}  // namespace tern::io
