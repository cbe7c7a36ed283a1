// Scrape-time aggregation of per-worker counters into tern_* metric families.
#include "metrics/counter_collector.hpp"

#include <algorithm>
#include <limits>
#include <string>
#include <type_traits>

namespace tern::metrics {

namespace {

prometheus::MetricFamily family(std::string name, std::string help,
                                prometheus::MetricType type = prometheus::MetricType::Counter) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = type;
  return f;
}

void addGauge(prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> labels, double value) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  m.gauge.value = value;
  f.metric.push_back(std::move(m));
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
  // Sums one histogram over the workers into Prometheus's cumulative buckets.
  auto addHistogram = [&](prometheus::MetricFamily& f, std::vector<prometheus::ClientMetric::Label> labels,
                          auto&& pick) {
    prometheus::ClientMetric m;
    m.label = std::move(labels);
    const auto& bounds = std::remove_cvref_t<decltype(pick(*workers_.front()))>::bounds;
    std::uint64_t cumulative = 0;
    double total = 0;
    for (std::size_t b = 0; b <= bounds.size(); ++b) {
      for (const WorkerCounters* w : workers_) cumulative += pick(*w).bucket(b);
      prometheus::ClientMetric::Bucket bucket;
      bucket.cumulative_count = cumulative;
      bucket.upper_bound = b < bounds.size() ? bounds[b] : std::numeric_limits<double>::infinity();
      m.histogram.bucket.push_back(bucket);
    }
    for (const WorkerCounters* w : workers_) total += pick(*w).sum();
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = total;
    f.metric.push_back(std::move(m));
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

  auto responses = family("tern_requests_total",
                          "STUN requests answered, by method and response code (200: success).");
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

  auto icmp = family("tern_icmp_indications_total",
                     "ICMP errors from peers passed to clients in Data indications (RFC 8656 "
                     "§11.5).");
  addSample(icmp, {}, sum([](const WorkerCounters& w) -> const OneWriterCounter& {
              return w.icmp_indications;
            }));

  auto moved = family("tern_allocations_moved_total",
                      "Allocations moved to a new client 5-tuple with a MOBILITY-TICKET (RFC 8016), by "
                      "whether the move crossed workers.");
  for (std::size_t i = 0; i < 2; ++i) {
    addSample(moved, {{"cross_worker", i == 0 ? "false" : "true"}},
              sum([&](const WorkerCounters& w) -> const OneWriterCounter& { return w.allocations_moved[i]; }));
  }

  auto pauses = family("tern_bandwidth_pauses_total",
                       "Times an RFC 6062 TCP connection stopped reading until a bandwidth limit's bucket "
                       "refilled, by limit (allocation: --max-bps, user: --max-bps-per-user).");
  for (std::size_t k = 0; k < idx(BandwidthLimitKind::kCount); ++k) {
    addSample(pauses, {{"limit", std::string(labelOf(static_cast<BandwidthLimitKind>(k)))}},
              sum([&](const WorkerCounters& w) -> const OneWriterCounter& { return w.bandwidth_pauses[k]; }));
  }

  auto auth = family("tern_auth_results_total", "Authentication outcomes of TURN requests, by result.");
  for (std::size_t r = 0; r < idx(AuthResult::kCount); ++r) {
    addSample(auth, {{"result", std::string(labelOf(static_cast<AuthResult>(r)))}},
              sum([&](const WorkerCounters& w) -> const OneWriterCounter& { return w.auth_results[r]; }));
  }

  auto created = family("tern_allocations_created_total",
                        "Allocations created, by client transport and relayed address family.");
  auto active = family("tern_allocations_active",
                       "Allocations that exist now, by client transport and relayed address family.",
                       prometheus::MetricType::Gauge);
  for (std::size_t t = 0; t < idx(ClientTransport::kCount); ++t) {
    for (std::size_t f = 0; f < idx(Family::kCount); ++f) {
      std::vector<prometheus::ClientMetric::Label> labels{
          {"transport", std::string(labelOf(static_cast<ClientTransport>(t)))},
          {"family", std::string(labelOf(static_cast<Family>(f)))}};
      addSample(created, labels,
                sum([&](const WorkerCounters& w) -> const OneWriterCounter& { return w.allocations_created[t][f]; }));
      std::int64_t alive = 0;
      for (const WorkerCounters* w : workers_) alive += w->allocations_active[t][f].get();
      addGauge(active, std::move(labels), static_cast<double>(std::max<std::int64_t>(alive, 0)));
    }
  }
  auto ended = family("tern_allocations_ended_total", "Allocations ended, by reason.");
  for (std::size_t e = 0; e < idx(AllocationEnd::kCount); ++e) {
    addSample(ended, {{"reason", std::string(labelOf(static_cast<AllocationEnd>(e)))}},
              sum([&](const WorkerCounters& w) -> const OneWriterCounter& { return w.allocations_ended[e]; }));
  }
  auto quota = family("tern_quota_rejections_total", "Requests refused by a quota, by quota.");
  for (std::size_t q = 0; q < idx(Quota::kCount); ++q) {
    addSample(quota, {{"quota", std::string(labelOf(static_cast<Quota>(q)))}},
              sum([&](const WorkerCounters& w) -> const OneWriterCounter& { return w.quota_rejections[q]; }));
  }
  auto refused = family("tern_tcp_connections_refused_total",
                        "TCP and TLS client connections reset at accept, by the limit they were over.");
  for (std::size_t l = 0; l < idx(ConnectionLimit::kCount); ++l) {
    addSample(refused, {{"limit", std::string(labelOf(static_cast<ConnectionLimit>(l)))}},
              sum([&](const WorkerCounters& w) -> const OneWriterCounter& { return w.tcp_connections_refused[l]; }));
  }
  auto connections_open = family("tern_tcp_connections_open", "TCP and TLS client connections open now.",
                                 prometheus::MetricType::Gauge);
  std::int64_t open_count = 0;
  for (const WorkerCounters* w : workers_) open_count += w->tcp_connections_open.get();
  addGauge(connections_open, {}, static_cast<double>(open_count));
  auto dtls_refused = family("tern_dtls_sessions_refused_total",
                             "DTLS ClientHellos refused by a limit on handshakes or sessions, by that limit.");
  for (std::size_t l = 0; l < idx(DtlsLimit::kCount); ++l) {
    addSample(dtls_refused, {{"limit", std::string(labelOf(static_cast<DtlsLimit>(l)))}},
              sum([&](const WorkerCounters& w) -> const OneWriterCounter& { return w.dtls_refused[l]; }));
  }
  auto dtls_open = family("tern_dtls_sessions_open", "DTLS sessions held now, in handshake or established.",
                          prometheus::MetricType::Gauge);
  std::int64_t dtls_count = 0;
  for (const WorkerCounters* w : workers_) dtls_count += w->dtls_sessions_open.get();
  addGauge(dtls_open, {}, static_cast<double>(dtls_count));
  auto permissions = family("tern_permissions_active", "Live permissions over all allocations.",
                            prometheus::MetricType::Gauge);
  auto channels = family("tern_channels_active", "Live channel bindings over all allocations.",
                         prometheus::MetricType::Gauge);
  std::int64_t permission_count = 0;
  std::int64_t channel_count = 0;
  for (const WorkerCounters* w : workers_) {
    permission_count += w->permissions_active.get();
    channel_count += w->channels_active.get();
  }
  addGauge(permissions, {}, static_cast<double>(permission_count));
  addGauge(channels, {}, static_cast<double>(channel_count));

  auto ports_in_use = family("tern_relay_ports_in_use",
                             "Ports of --relay-ports taken now: relayed addresses, reservations, and ports "
                             "another program held when tern tried them.",
                             prometheus::MetricType::Gauge);
  auto ports_borrowed = family("tern_relay_ports_borrowed_total",
                               "Relay ports a worker took beyond its share of --relay-ports, because the "
                               "kernel gave it more clients than the others.");
  std::int64_t held = 0;
  std::int64_t borrowed = 0;
  for (const WorkerCounters* w : workers_) {
    held += w->relay_ports_held.get();
    borrowed += w->relay_ports_borrowed.get();
  }
  addGauge(ports_in_use, {}, static_cast<double>(held));
  addSample(ports_borrowed, {}, static_cast<std::uint64_t>(borrowed));
  auto revoked = family("tern_peer_policy_revoked_total",
                        "Permissions, channels and RFC 6062 peer connections a reload's narrower peer policy ended.");
  constexpr std::array<const char*, 3> kRevokedKinds{"permission", "channel", "connection"};
  for (std::size_t k = 0; k < kRevokedKinds.size(); ++k) {
    addSample(revoked, {{"kind", kRevokedKinds[k]}},
              sum([&](const WorkerCounters& w) -> const OneWriterCounter& { return w.peers_revoked[k]; }));
  }

  auto lag = family("tern_event_loop_lag_seconds",
                    "How late each worker's one-second tick last ran: time its loop was busy or blocked.",
                    prometheus::MetricType::Gauge);
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    addGauge(lag, {{"worker", std::to_string(i)}}, workers_[i]->loop_lag_seconds.get());
  }
  auto handles = family("tern_event_loop_handles",
                        "libuv handles each worker's loop holds (sockets, timers): steady while allocations come "
                        "and go, unless something leaks.",
                        prometheus::MetricType::Gauge);
  for (std::size_t i = 0; i < workers_.size(); ++i) {
    addGauge(handles, {{"worker", std::to_string(i)}}, static_cast<double>(workers_[i]->loop_handles.get()));
  }
  auto suppressed = family("tern_log_lines_suppressed_total",
                           "Log lines an attacker could flood, dropped by the per-worker rate limit.");
  addSample(suppressed, {},
            sum([](const WorkerCounters& w) -> const OneWriterCounter& { return w.log_lines_suppressed; }));

  auto request_duration = family("tern_request_duration_seconds",
                                 "Time from a request's arrival in its worker to its answer being queued.",
                                 prometheus::MetricType::Histogram);
  for (std::size_t m = 0; m < idx(RequestMethod::kCount); ++m) {
    addHistogram(request_duration, {{"method", std::string(labelOf(static_cast<RequestMethod>(m)))}},
                 [&](const WorkerCounters& w) -> const auto& { return w.request_duration[m]; });
  }
  auto allocation_duration = family("tern_allocation_duration_seconds", "Lifetime of ended allocations.",
                                    prometheus::MetricType::Histogram);
  addHistogram(allocation_duration, {},
               [](const WorkerCounters& w) -> const auto& { return w.allocation_duration; });

  std::vector<prometheus::MetricFamily> out;
  for (auto* f : {&received, &dropped, &responses, &packets, &bytes, &icmp, &moved, &pauses, &auth, &created,
                  &active, &ended, &quota, &refused, &connections_open, &dtls_refused, &dtls_open,
                  &permissions, &channels, &ports_in_use, &ports_borrowed, &revoked, &lag, &handles,
                  &suppressed,
                  &request_duration, &allocation_duration}) {
    out.push_back(std::move(*f));
  }
  return out;
}

}  // namespace tern::metrics
