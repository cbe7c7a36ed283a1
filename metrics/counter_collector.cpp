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
  auto packets = family("tern_relayed_packets_total",
                        "Packets relayed, by direction and client transport.");
  auto bytes = family("tern_relayed_bytes_total",
                      "Application bytes relayed (without TURN framing), by direction and client transport.");
  for (std::size_t d = 0; d < idx(Direction::kCount); ++d) {
    for (std::size_t t = 0; t < idx(ClientTransport::kCount); ++t) {
      std::vector<prometheus::ClientMetric::Label> labels{
          {"direction", std::string(labelOf(static_cast<Direction>(d)))},
          {"transport", std::string(labelOf(static_cast<ClientTransport>(t)))}};
      addSample(packets, labels,
                sum([&](const WorkerCounters& w) -> const OneWriterCounter& { return w.relayed_packets[d][t]; }));
      addSample(bytes, labels,
                sum([&](const WorkerCounters& w) -> const OneWriterCounter& { return w.relayed_bytes[d][t]; }));
    }
  }

  auto auth = family("tern_auth_results_total", "Authentication outcomes of TURN requests, by result.");
  for (std::size_t r = 0; r < idx(AuthResult::kCount); ++r) {
    addSample(auth, {{"result", std::string(labelOf(static_cast<AuthResult>(r)))}},
              sum([&](const WorkerCounters& w) -> const OneWriterCounter& { return w.auth_results[r]; }));
  }

  auto created = family("tern_allocations_created_total", "Allocations created, by client transport.");
  std::uint64_t created_total = 0;
  for (std::size_t t = 0; t < idx(ClientTransport::kCount); ++t) {
    const auto v = sum([&](const WorkerCounters& w) -> const OneWriterCounter& { return w.allocations_created[t]; });
    created_total += v;
    addSample(created, {{"transport", std::string(labelOf(static_cast<ClientTransport>(t)))}}, v);
  }
  auto ended = family("tern_allocations_ended_total", "Allocations ended, by reason.");
  std::uint64_t ended_total = 0;
  for (std::size_t e = 0; e < idx(AllocationEnd::kCount); ++e) {
    const auto v = sum([&](const WorkerCounters& w) -> const OneWriterCounter& { return w.allocations_ended[e]; });
    ended_total += v;
    addSample(ended, {{"reason", std::string(labelOf(static_cast<AllocationEnd>(e)))}}, v);
  }
  prometheus::MetricFamily active;
  active.name = "tern_allocations_active";
  active.help = "Allocations that exist now.";
  active.type = prometheus::MetricType::Gauge;
  prometheus::ClientMetric m;
  m.gauge.value = static_cast<double>(created_total >= ended_total ? created_total - ended_total : 0);
  active.metric.push_back(std::move(m));

  return {std::move(received), std::move(dropped), std::move(responses), std::move(packets),
          std::move(bytes), std::move(auth), std::move(created), std::move(ended), std::move(active)};
}

}  // namespace tern::metrics
