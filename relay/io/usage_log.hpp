// The core's operator-facing events as log lines (core::ServerEvents). The usage records are
// here: one line when an allocation starts and one when it ends, with what it relayed each
// way; operators bill and audit from these. Never a secret (the username is the public half
// of a credential). Those are not rate-limited: each needs a valid credential and is bounded
// by the allocation quotas. Lines a remote party can provoke at will pass the worker's budget.
#pragma once

#include "relay/core/server_output.hpp"
#include "relay/io/worker_log.hpp"

namespace tern::io {

class UsageLog final : public core::ServerEvents {
 public:
  explicit UsageLog(WorkerLog& log) noexcept : log_(log) {}

  void onAllocationCreated(const core::Allocation& a, std::uint32_t lifetime) noexcept override;
  void onAllocationEnded(const core::Allocation& a, std::string_view reason,
                         std::chrono::seconds age) noexcept override;
  void onAllocationMoved(const core::Allocation& a, const wire::SocketAddress& previous_client,
                         bool cross_worker) noexcept override;
  void onPeersRevoked(const core::Allocation& a, std::size_t permissions, std::size_t channels,
                      std::size_t connections) noexcept override;
  void onRequestRefused(const core::FiveTuple& tuple, std::uint16_t method, std::uint16_t code,
                        std::string_view reason) noexcept override;
  void onSourceRateLimited(const core::FiveTuple& tuple,
                           const core::UnauthenticatedLimits& limits) noexcept override;
  void onAllocationRequestLimited(const core::Allocation& a,
                                  const core::RequestRateLimit& limit) noexcept override;

 private:
  WorkerLog& log_;
};

}  // namespace tern::io
