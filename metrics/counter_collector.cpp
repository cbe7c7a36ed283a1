// Scrape-time aggregation of per-worker counters into tern_* metric families.
#include "metrics/counter_collector.hpp"

#include <string>

namespace tern::metrics {

namespace {

prometheus::MetricFamily family(std::string name, std::string help) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = prometheus::MetricType::Counter;
  return f;
}

void addSample(prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> labels,
               std::uint64_t value) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.counter.value = static_cast<double>(value);
  f.metric.push_back(std::move(m));
}

}  // namespace

void CounterCollector::addWorker(const WorkerCounters* counters) {
  std::lock_guard lock(mutex_);
  workers_.push_back(counters);
}

std::vector<prometheus::MetricFamily> CounterCollector::Collect() const {
  std::lock_guard lock(mutex_);
  auto sum = [&](auto&& pick) {
    std::uint64_t total = 0;
    for (const WorkerCounters* w : workers_) total += pick(*w).get();
    return total;
  };

  auto received = family("tern_packets_received_total",
                         "Packets received from clients, by client transport and kind.");
  for (std::size_t t = 0; t < idx(ClientTransport::kCount); ++t) {
    for (std::size_t k = 0; k < idx(PacketKind::kCount); ++k) {
      addSample(received,
                {{"transport", std::string(labelOf(static_cast<ClientTransport>(t)))},
                 {"kind", std::string(labelOf(static_cast<PacketKind>(k)))}},
                sum([&](const WorkerCounters& w) -> const OneWriterCounter& {
                  return w.packets_received[t][k];
                }));
    }
  }

  auto dropped = family("tern_dropped_packets_total", "Packets dropped, by reason.");
  for (std::size_t r = 0; r < idx(DropReason::kCount); ++r) {
    addSample(dropped, {{"reason", std::string(labelOf(static_cast<DropReason>(r)))}},
              sum([&](const WorkerCounters& w) -> const OneWriterCounter& { return w.dropped[r]; }));
  }

  auto responses = family("tern_stun_responses_total",
                          "STUN responses sent, by request method and response code.");
  for (std::size_t m = 0; m < idx(RequestMethod::kCount); ++m) {
    for (std::size_t c = 0; c < kResponseCodes.size(); ++c) {
      const std::uint64_t v = sum(
          [&](const WorkerCounters& w) -> const OneWriterCounter& { return w.responses[m][c]; });
      // Method x code is a fixed but wide grid; export only the pairs that occurred.
      if (v == 0) continue;
      addSample(responses,
                {{"method", std::string(labelOf(static_cast<RequestMethod>(m)))},
                 {"code", std::to_string(kResponseCodes[c])}},
                v);
    }
  }
  return {std::move(received), std::move(dropped), std::move(responses)};
}

}  // namespace tern::metrics
