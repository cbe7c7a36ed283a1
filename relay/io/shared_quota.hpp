// Allocation admission shared by every worker (per-user and total limits, RFC 8656 §7.2: 486
// and 508). A mutex guards it: it is taken on Allocate and on the end of an allocation,
// never on the packet path.
#pragma once

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

  Grant acquire(std::string_view username) noexcept override;
  void release(std::string_view username) noexcept override;
  std::uint32_t total() const;
  // A reload: new limits apply to the next Allocate; allocations over them keep running.
  void setLimits(std::uint32_t max_total, std::uint32_t max_per_user) noexcept;

 private:
  mutable std::mutex mutex_;
  std::uint32_t max_total_;
  std::uint32_t max_per_user_;
  std::uint32_t total_ = 0;
  std::unordered_map<std::string, std::uint32_t> per_user_;
};

}  // namespace tern::io
