// Scrape-time aggregation of per-worker counters into tern_* metric families.
#include "metrics/counter_collector.hpp"

#include <algorithm>
#include <array>
#include <limits>
#include <string>
#include <type_traits>

#include "relay/wire/checks.hpp"

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

using Labels = std::vector<prometheus::ClientMetric::Label>;
using Families = std::vector<prometheus::MetricFamily>;

// One scrape: sums over the registered workers. Each family group below appends its
// families in the order /metrics has always listed them.
class Scrape {
 public:
  explicit Scrape(const std::vector<const WorkerCounters*>& workers) : workers_(workers) {}

  const std::vector<const WorkerCounters*>& workers() const { return workers_; }

  // One counter summed over the workers; `pick` chooses it from a worker's counters.
  template <class Pick>
  std::uint64_t sum(Pick&& pick) const {
    std::uint64_t total = 0;
    for (const WorkerCounters* w : workers_) total += pick(*w).get();
    return total;
  }
  std::uint64_t total(OneWriterCounter WorkerCounters::*counter) const {
    return sum([&](const WorkerCounters& w) -> const OneWriterCounter& { return w.*counter; });
  }
  // One gauge summed over the workers: only the sum is meaningful (a worker may release
  // what another took).
  std::int64_t total(OneWriterGauge<std::int64_t> WorkerCounters::*gauge) const {
    std::int64_t sum = 0;
    for (const WorkerCounters* w : workers_) sum += (w->*gauge).get();
    return sum;
  }

  // A counter family with one label whose values are those of enum E, one sample per value.
  template <class E, std::size_t N>
  prometheus::MetricFamily byLabel(
      std::string name, std::string help, const std::string& label,
      std::array<OneWriterCounter, N> WorkerCounters::*counters) const {
    auto f = family(std::move(name), std::move(help));
    for (std::size_t i = 0; i < idx(E::kCount); ++i) {
      addSample(f, {{label, std::string(labelOf(static_cast<E>(i)))}},
                sum([&](const WorkerCounters& w) -> const OneWriterCounter& {
                  return (w.*counters)[i];
                }));
    }
    return f;
  }

  // A gauge family without labels: one gauge summed over the workers.
  prometheus::MetricFamily gaugeTotal(std::string name, std::string help,
                                      OneWriterGauge<std::int64_t> WorkerCounters::*gauge) const {
    auto f = family(std::move(name), std::move(help), prometheus::MetricType::Gauge);
    addGauge(f, {}, static_cast<double>(total(gauge)));
    return f;
  }

  // Sums one histogram over the workers into Prometheus's cumulative buckets.
  template <class Pick>
  void addHistogram(prometheus::MetricFamily& f, Labels labels, Pick&& pick) const {
    prometheus::ClientMetric m;
    m.label = std::move(labels);
    const auto& bounds = std::remove_cvref_t<decltype(pick(*workers_.front()))>::bounds;
    std::uint64_t cumulative = 0;
    double seconds = 0;
    for (std::size_t b = 0; b <= bounds.size(); ++b) {
      for (const WorkerCounters* w : workers_) cumulative += pick(*w).bucket(b);
      prometheus::ClientMetric::Bucket bucket;
      bucket.cumulative_count = cumulative;
      bucket.upper_bound = b < bounds.size() ? bounds[b] : std::numeric_limits<double>::infinity();
      m.histogram.bucket.push_back(bucket);
    }
    for (const WorkerCounters* w : workers_) seconds += pick(*w).sum();
    m.histogram.sample_count = cumulative;
    m.histogram.sample_sum = seconds;
    f.metric.push_back(std::move(m));
  }

 private:
  const std::vector<const WorkerCounters*>& workers_;
};

// Relayed packets and bytes, by direction, client transport and path: "user" through the
// workers, "kernel" by the fast path (UDP clients only).
void addRelayedFamilies(const Scrape& s, Families& out) {
  auto packets = family("tern_relayed_packets_total",
                        "Packets relayed, by direction, client transport and path (user space or the kernel fast path).");
  auto bytes = family("tern_relayed_bytes_total",
                      "Application bytes relayed (without TURN framing), by direction, client transport and path.");
  for (std::size_t d = 0; d < idx(Direction::kCount); ++d) {
    const std::string direction(labelOf(static_cast<Direction>(d)));
    for (std::size_t t = 0; t < idx(ClientTransport::kCount); ++t) {
      Labels labels{{"direction", direction},
                    {"transport", std::string(labelOf(static_cast<ClientTransport>(t)))},
                    {"path", "user"}};
      addSample(packets, labels, s.sum([&](const WorkerCounters& w) -> const OneWriterCounter& {
        return w.relayed_packets[d][t];
      }));
      addSample(bytes, labels, s.sum([&](const WorkerCounters& w) -> const OneWriterCounter& {
        return w.relayed_bytes[d][t];
      }));
    }
    const Labels kernel{{"direction", direction}, {"transport", "udp"}, {"path", "kernel"}};
    addSample(packets, kernel, s.sum([&](const WorkerCounters& w) -> const OneWriterCounter& {
      return w.kernel_relayed_packets[d];
    }));
    addSample(bytes, kernel, s.sum([&](const WorkerCounters& w) -> const OneWriterCounter& {
      return w.kernel_relayed_bytes[d];
    }));
  }
  out.push_back(std::move(packets));
  out.push_back(std::move(bytes));

  auto icmp = family("tern_icmp_indications_total",
                     "ICMP errors from peers passed to clients in Data indications (RFC 8656 "
                     "§11.5).");
  addSample(icmp, {}, s.total(&WorkerCounters::icmp_indications));
  out.push_back(std::move(icmp));
}

// Client packets: received, dropped, answered, relayed.
void addTrafficFamilies(const Scrape& s, Families& out) {
  auto received = family("tern_packets_received_total",
                         "Packets received from clients, by client transport and kind.");
  for (std::size_t t = 0; t < idx(ClientTransport::kCount); ++t) {
    for (std::size_t k = 0; k < idx(PacketKind::kCount); ++k) {
      addSample(received,
                {{"transport", std::string(labelOf(static_cast<ClientTransport>(t)))},
                 {"kind", std::string(labelOf(static_cast<PacketKind>(k)))}},
                s.sum([&](const WorkerCounters& w) -> const OneWriterCounter& {
                  return w.packets_received[t][k];
                }));
    }
  }
  out.push_back(std::move(received));
  out.push_back(s.byLabel<DropReason>("tern_dropped_packets_total", "Packets dropped, by reason.",
                                      "reason", &WorkerCounters::dropped));

  auto responses = family("tern_requests_total",
                          "STUN requests answered, by method and response code (200: success).");
  for (std::size_t m = 0; m < idx(RequestMethod::kCount); ++m) {
    for (std::size_t c = 0; c < kResponseCodes.size(); ++c) {
      const std::uint64_t v = s.sum(
          [&](const WorkerCounters& w) -> const OneWriterCounter& { return w.responses[m][c]; });
      // Method x code is a fixed but wide grid; export only the pairs that occurred.
      if (v == 0) continue;
      addSample(responses,
                {{"method", std::string(labelOf(static_cast<RequestMethod>(m)))},
                 {"code", std::to_string(kResponseCodes[c])}},
                v);
    }
  }
  out.push_back(std::move(responses));
  addRelayedFamilies(s, out);
}

// Allocations and what happens to them: moves, bandwidth pauses, authentication, creation,
// ending, quotas.
void addAllocationFamilies(const Scrape& s, Families& out) {
  auto moved = family("tern_allocations_moved_total",
                      "Allocations moved to a new client 5-tuple with a MOBILITY-TICKET (RFC 8016), by "
                      "whether the move crossed workers.");
  for (std::size_t i = 0; i < 2; ++i) {
    addSample(moved, {{"cross_worker", i == 0 ? "false" : "true"}},
              s.sum([&](const WorkerCounters& w) -> const OneWriterCounter& {
                return w.allocations_moved[i];
              }));
  }
  out.push_back(std::move(moved));
  out.push_back(s.byLabel<BandwidthLimitKind>(
      "tern_bandwidth_pauses_total",
      "Times an RFC 6062 TCP connection stopped reading until a bandwidth limit's bucket "
      "refilled, by limit (allocation: --max-bps, user: --max-bps-per-user).",
      "limit", &WorkerCounters::bandwidth_pauses));
  out.push_back(s.byLabel<AuthResult>("tern_auth_results_total",
                                      "Authentication outcomes of TURN requests, by result.",
                                      "result", &WorkerCounters::auth_results));

  auto created = family("tern_allocations_created_total",
                        "Allocations created, by client transport and relayed address family.");
  auto active = family("tern_allocations_active",
                       "Allocations that exist now, by client transport and relayed address family.",
                       prometheus::MetricType::Gauge);
  for (std::size_t t = 0; t < idx(ClientTransport::kCount); ++t) {
    for (std::size_t f = 0; f < idx(Family::kCount); ++f) {
      Labels labels{{"transport", std::string(labelOf(static_cast<ClientTransport>(t)))},
                    {"family", std::string(labelOf(static_cast<Family>(f)))}};
      addSample(created, labels, s.sum([&](const WorkerCounters& w) -> const OneWriterCounter& {
        return w.allocations_created[t][f];
      }));
      std::int64_t alive = 0;
      for (const WorkerCounters* w : s.workers()) alive += w->allocations_active[t][f].get();
      addGauge(active, std::move(labels), static_cast<double>(std::max<std::int64_t>(alive, 0)));
    }
  }
  out.push_back(std::move(created));
  out.push_back(std::move(active));
  out.push_back(s.byLabel<AllocationEnd>("tern_allocations_ended_total",
                                         "Allocations ended, by reason.", "reason",
                                         &WorkerCounters::allocations_ended));
  out.push_back(s.byLabel<Quota>("tern_quota_rejections_total",
                                 "Requests refused by a quota, by quota.", "quota",
                                 &WorkerCounters::quota_rejections));
}

// Client connections (TCP, TLS, DTLS), and the permissions and channels allocations hold.
void addConnectionFamilies(const Scrape& s, Families& out) {
  out.push_back(s.byLabel<ConnectionLimit>(
      "tern_tcp_connections_refused_total",
      "TCP and TLS client connections reset at accept, by the limit they were over.", "limit",
      &WorkerCounters::tcp_connections_refused));
  out.push_back(s.gaugeTotal("tern_tcp_connections_open",
                             "TCP and TLS client connections open now.",
                             &WorkerCounters::tcp_connections_open));
  out.push_back(s.byLabel<ProxyRejection>(
      "tern_proxy_protocol_rejected_total",
      "Connections from --proxy-protocol-from sources closed before a whole PROXY header, by "
      "reason.",
      "reason", &WorkerCounters::proxy_rejected));
  out.push_back(s.byLabel<DtlsLimit>(
      "tern_dtls_sessions_refused_total",
      "DTLS ClientHellos refused by a limit on handshakes or sessions, by that limit.", "limit",
      &WorkerCounters::dtls_refused));
  out.push_back(s.gaugeTotal("tern_dtls_sessions_open",
                             "DTLS sessions held now, in handshake or established.",
                             &WorkerCounters::dtls_sessions_open));
  out.push_back(s.gaugeTotal("tern_permissions_active", "Live permissions over all allocations.",
                             &WorkerCounters::permissions_active));
  out.push_back(s.gaugeTotal("tern_channels_active", "Live channel bindings over all allocations.",
                             &WorkerCounters::channels_active));
}

// The relay port range, and what a reload's peer policy took back.
void addRelayPortFamilies(const Scrape& s, Families& out) {
  out.push_back(
      s.gaugeTotal("tern_relay_ports_in_use",
                   "Ports of --relay-ports taken now: relayed addresses, reservations, and ports "
                   "another program held when tern tried them.",
                   &WorkerCounters::relay_ports_held));
  auto ports_borrowed = family("tern_relay_ports_borrowed_total",
                               "Relay ports a worker took beyond its share of --relay-ports, because the "
                               "kernel gave it more clients than the others.");
  addSample(ports_borrowed, {},
            static_cast<std::uint64_t>(s.total(&WorkerCounters::relay_ports_borrowed)));
  out.push_back(std::move(ports_borrowed));
  auto revoked = family("tern_peer_policy_revoked_total",
                        "Permissions, channels and RFC 6062 peer connections a reload's narrower peer policy ended.");
  constexpr std::array<const char*, 3> kRevokedKinds{"permission", "channel", "connection"};
  for (std::size_t k = 0; k < kRevokedKinds.size(); ++k) {
    addSample(revoked, {{"kind", kRevokedKinds[k]}},
              s.sum([&](const WorkerCounters& w) -> const OneWriterCounter& {
                return w.peers_revoked[k];
              }));
  }
  out.push_back(std::move(revoked));
}

// How each worker's loop keeps up, and how long requests and allocations take.
void addLoopFamilies(const Scrape& s, Families& out) {
  const auto& workers = s.workers();
  auto lag = family("tern_event_loop_lag_seconds",
                    "How late each worker's one-second tick last ran: time its loop was busy or blocked.",
                    prometheus::MetricType::Gauge);
  for (std::size_t i = 0; i < workers.size(); ++i) {
    addGauge(lag, {{"worker", std::to_string(i)}}, workers[i]->loop_lag_seconds.get());
  }
  out.push_back(std::move(lag));
  auto handles = family("tern_event_loop_handles",
                        "libuv handles each worker's loop holds (sockets, timers): steady while allocations come "
                        "and go, unless something leaks.",
                        prometheus::MetricType::Gauge);
  for (std::size_t i = 0; i < workers.size(); ++i) {
    addGauge(handles, {{"worker", std::to_string(i)}},
             static_cast<double>(workers[i]->loop_handles.get()));
  }
  out.push_back(std::move(handles));
  auto suppressed = family("tern_log_lines_suppressed_total",
                           "Log lines an attacker could flood, dropped by the per-worker rate limit.");
  addSample(suppressed, {}, s.total(&WorkerCounters::log_lines_suppressed));
  out.push_back(std::move(suppressed));
  // Process-wide, from relay/wire/checks.hpp: both should stay at 0.
  auto bugs = family("tern_bugs_total",
                     "Impossible states the code met and recovered from (each site logs once); report them.");
  addSample(bugs, {}, checks::bugsSeen());
  out.push_back(std::move(bugs));
  auto out_of_memory = family("tern_out_of_memory_total",
                              "Requests or connections refused because memory could not be allocated.");
  addSample(out_of_memory, {}, checks::outOfMemorySeen());
  out.push_back(std::move(out_of_memory));

  auto request_duration = family("tern_request_duration_seconds",
                                 "Time from a request's arrival in its worker to its answer being queued.",
                                 prometheus::MetricType::Histogram);
  for (std::size_t m = 0; m < idx(RequestMethod::kCount); ++m) {
    s.addHistogram(
        request_duration, {{"method", std::string(labelOf(static_cast<RequestMethod>(m)))}},
        [&](const WorkerCounters& w) -> const auto& { return w.request_duration[m]; });
  }
  out.push_back(std::move(request_duration));
  auto allocation_duration = family("tern_allocation_duration_seconds", "Lifetime of ended allocations.",
                                    prometheus::MetricType::Histogram);
  s.addHistogram(
      allocation_duration, {},
      [](const WorkerCounters& w) -> const auto& { return w.allocation_duration; });
  out.push_back(std::move(allocation_duration));
}

}  // namespace

void CounterCollector::addWorker(const WorkerCounters* counters) {
  std::lock_guard lock(mutex_);
  workers_.push_back(counters);
}

// Issue 21: the kernel fast path's state (docs/fast-path.md).
void addFastPathFamilies(const Scrape& s, Families& out) {
  out.push_back(s.gaugeTotal("tern_fastpath_attached", "Interfaces the fast path program is attached to.",
                             &WorkerCounters::fastpath_attached));
  out.push_back(s.gaugeTotal("tern_fastpath_allocations", "Allocations with entries in the fast path's maps.",
                             &WorkerCounters::fastpath_allocations));
  auto entries = family("tern_fastpath_entries", "Entries in the fast path's maps: one per channel and direction.",
                        prometheus::MetricType::Gauge);
  const auto channels = static_cast<double>(s.total(&WorkerCounters::fastpath_entries));
  addGauge(entries, {{"map", "channels"}}, channels);
  addGauge(entries, {{"map", "peers"}}, channels);
  out.push_back(std::move(entries));
  auto full = family("tern_fastpath_full_total",
                     "Allocations left in user space because the fast path's maps were full (--fast-path-capacity).");
  addSample(full, {}, s.total(&WorkerCounters::fastpath_full));
  out.push_back(std::move(full));
  auto misses = family("tern_fastpath_misses_total",
                       "ChannelData the fast path program had no entry for (passed to user space).");
  addSample(misses, {}, static_cast<std::uint64_t>(s.total(&WorkerCounters::fastpath_misses)));
  out.push_back(std::move(misses));
  auto fallbacks = family("tern_fastpath_fallbacks_total",
                          "Packets with a fast path entry passed to user space, by reason.");
  for (std::size_t r = 0; r < kFastPathFallbacks.size(); ++r) {
    std::int64_t n = 0;
    for (const WorkerCounters* w : s.workers()) n += w->fastpath_fallbacks[r].get();
    addSample(fallbacks, {{"reason", std::string(kFastPathFallbacks[r])}}, static_cast<std::uint64_t>(n));
  }
  out.push_back(std::move(fallbacks));
}

// The families in the order /metrics has always listed them, one group at a time.
std::vector<prometheus::MetricFamily> CounterCollector::Collect() const {
  std::lock_guard lock(mutex_);
  const Scrape scrape(workers_);
  std::vector<prometheus::MetricFamily> out;
  addTrafficFamilies(scrape, out);
  addAllocationFamilies(scrape, out);
  addConnectionFamilies(scrape, out);
  addRelayPortFamilies(scrape, out);
  addLoopFamilies(scrape, out);
  addFastPathFamilies(scrape, out);
  return out;
}

}  // namespace tern::metrics
