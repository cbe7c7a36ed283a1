// Process-wide state that the HTTP endpoint reports and Prometheus scrapes: readiness,
// draining and configuration reloads. Written by the main thread, read by scrapes.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

namespace tern::metrics {

struct NodeState {
  std::atomic<bool> ready{false};     // accepting new allocations
  std::atomic<bool> draining{false};  // refusing new allocations, letting calls finish
  std::atomic<std::uint64_t> reloads_succeeded{0};
  std::atomic<std::uint64_t> reloads_failed{0};
  std::atomic<double> last_good_config_unix{0};  // start-up or the last good reload
  // Issue 22, --redis: -1 without it, else 1 while connected and 0 while not; failed
  // connections and drops since start-up.
  std::atomic<int> redis_connected{-1};
  std::atomic<std::uint64_t> redis_failures{0};
};

// tern_ready, tern_draining, tern_build_info, tern_redis_* (with --redis), the reload metrics and the standard process_*
// metrics (CPU, resident memory, open and maximum descriptors, start time), read from the
// kernel at scrape time.
class NodeCollector : public prometheus::Collectable {
 public:
  NodeCollector(const NodeState& state, std::string version);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  const NodeState& state_;
  std::string version_;
  double start_unix_;
};

}  // namespace tern::metrics
