// One worker's side of the kernel fast path (issue 21, docs/fast-path.md): the core's
// channel decisions written into the program's maps (core::ChannelCache), and what the
// program relayed credited back to the allocations' usage and the worker's counters. Each
// worker owns a range of the usage map's slots, so no two threads write the same entry.
// Control path only: the packet path is the kernel's.
#pragma once

#include <memory>
#include <unordered_map>
#include <vector>

#include "metrics/worker_counters.hpp"
#include "relay/core/server_output.hpp"
#include "relay/io/fast_path.hpp"

namespace tern::core {
class TurnServer;
}

namespace tern::io {

class RelaySockets;

class FastPathCache final : public core::ChannelCache {
 public:
  FastPathCache(std::shared_ptr<const FastPath> fast_path, unsigned worker, unsigned workers,
                const RelaySockets& relays, metrics::WorkerCounters& counters);
  ~FastPathCache() override;
  FastPathCache(const FastPathCache&) = delete;
  FastPathCache& operator=(const FastPathCache&) = delete;

  // --- core::ChannelCache
  void update(const core::Allocation& allocation, bool eligible,
              core::TimePoint now) noexcept override;
  core::AllocationUsage remove(const core::Allocation& allocation) noexcept override;

  // Every tick: credits what the program relayed since the last tick to the allocations
  // (through `server`) and the counters, and drops the entries whose time is over. Worker 0
  // also copies the program's own totals into its counters.
  void onTick(core::TurnServer& server, core::TimePoint now) noexcept;

 private:
  // An allocation the maps know: its usage slot, the keys written for it, the slot's totals
  // already credited, and when its earliest entry runs out.
  struct Record {
    std::uint32_t slot = 0;
    bool eligible = true;
    std::vector<tern_fp_channel_key> channels;
    std::vector<tern_fp_peer_key> peers;
    core::AllocationUsage credited;
    core::TimePoint next_expiry = core::TimePoint::max();
  };
  // One channel's two entries, as the allocation's state has them now.
  struct Entries {
    tern_fp_channel_key channel_key;
    tern_fp_channel_value channel;
    tern_fp_peer_key peer_key;
    tern_fp_peer_value peer;
    core::TimePoint expires;
  };

  // The entries `allocation` should have now (none for a channel the program cannot relay
  // exactly as user space would: own-address peers, other families, wildcard addresses).
  std::vector<Entries> wanted(const core::Allocation& allocation, core::TimePoint now) const;
  // wanted(), or none when not `eligible` or out of memory (user space relays it then).
  std::vector<Entries> entriesFor(const core::Allocation& allocation, bool eligible,
                                  core::TimePoint now) const noexcept;
  // Writes `wanted` for `record` and deletes what it no longer has.
  void write(Record& record, const std::vector<Entries>& wanted) noexcept;
  void deleteEntries(Record& record) noexcept;
  // The slot's totals over every CPU since it was taken; nothing if unreadable.
  std::optional<core::AllocationUsage> slotTotals(std::uint32_t slot) noexcept;
  // What the slot relayed since `record` was last credited, now counted as credited, and
  // added to the worker's counters.
  core::AllocationUsage takeNew(Record& record) noexcept;
  bool takeSlot(std::uint32_t& slot) noexcept;
  void releaseSlot(std::uint32_t slot) noexcept;

  std::shared_ptr<const FastPath> fast_path_;
  const RelaySockets& relays_;
  metrics::WorkerCounters& counters_;
  bool reports_program_ = false;  // worker 0
  std::unordered_map<const core::Allocation*, Record> records_;
  std::vector<std::uint32_t> free_slots_;
  std::vector<tern_fp_usage> per_cpu_;  // one read of a per-CPU slot
  std::int64_t entries_ = 0;
  bool full_logged_ = false;
};

}  // namespace tern::io
