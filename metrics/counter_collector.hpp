// Sums every worker's counters into Prometheus metric families at scrape time, so the packet
// path never touches prometheus-cpp's CAS-based counters.
#pragma once

#include <prometheus/collectable.h>
#include <prometheus/metric_family.h>

#include <mutex>
#include <vector>

#include "metrics/worker_counters.hpp"

namespace tern::metrics {

class CounterCollector : public prometheus::Collectable {
 public:
  // Workers register once at start-up; the counters must outlive the collector's use.
  void addWorker(const WorkerCounters* counters);
  std::vector<prometheus::MetricFamily> Collect() const override;

 private:
  mutable std::mutex mutex_;  // guards the list, never a packet-path counter
  std::vector<const WorkerCounters*> workers_;
};

}  // namespace tern::metrics
