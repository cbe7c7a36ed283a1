// A worker's budget for log lines a remote party can trigger at will (refused requests,
// failed accepts, limited sources): ten lines a second on average, a hundred at once, enough
// to see what happens. The next line that passes says how many did not, and each refused
// line is counted in tern_log_lines_suppressed_total.
#pragma once

#include <cstdint>

#include "metrics/worker_counters.hpp"
#include "relay/io/event_loop.hpp"
#include "relay/io/log.hpp"

namespace tern::io {

class WorkerLog {
 public:
  WorkerLog(const EventLoop& loop, unsigned worker, metrics::WorkerCounters& counters) noexcept
      : loop_(loop), worker_(worker), counters_(counters) {}

  bool mayLog(std::uint64_t& suppressed) noexcept {
    const auto now_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(loop_.now().time_since_epoch());
    if (budget_.allow(static_cast<std::uint64_t>(now_ms.count()), suppressed)) return true;
    counters_.log_lines_suppressed.add();
    return false;
  }
  // The worker's index, for the "worker" field of its lines.
  unsigned worker() const noexcept { return worker_; }

 private:
  const EventLoop& loop_;
  unsigned worker_;
  metrics::WorkerCounters& counters_;
  log::LineBudget budget_{10, 100};
};

}  // namespace tern::io
