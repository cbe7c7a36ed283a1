// See counter_snapshot.hpp.
#include "metrics/counter_snapshot.hpp"

#include <bit>

namespace tern::metrics {

namespace {

// Calls `counter(c)` for every OneWriterCounter and `sum(g)` for every histogram's sum, in
// declaration order. A new counter in WorkerCounters belongs here too.
template <class Counters, class OnCounter, class OnSum>
void visit(Counters& c, OnCounter counter, OnSum sum) {
  auto all = [&](auto& array) {
    for (auto& item : array) counter(item);
  };
  auto all2 = [&](auto& arrays) {
    for (auto& array : arrays) all(array);
  };
  auto histogram = [&](auto& h) {
    for (std::size_t i = 0; i <= std::remove_reference_t<decltype(h)>::bounds.size(); ++i) counter(h, i);
    sum(h);
  };
  all2(c.packets_received);
  all(c.dropped);
  all2(c.responses);
  all2(c.relayed_packets);
  all2(c.relayed_bytes);
  all(c.auth_results);
  all2(c.allocations_created);
  all(c.allocations_ended);
  histogram(c.allocation_duration);
  all(c.quota_rejections);
  for (auto& h : c.request_duration) histogram(h);
  counter(c.log_lines_suppressed);
  counter(c.icmp_indications);
  all(c.allocations_moved);
  all(c.bandwidth_pauses);
  all(c.tcp_connections_refused);
  all(c.peers_revoked);
  all(c.dtls_refused);
  all(c.proxy_rejected);
}

}  // namespace

void addCounterValues(const WorkerCounters& counters, std::vector<std::uint64_t>& totals) {
  std::vector<std::uint64_t> values;
  auto counter = [&](const auto& c, std::size_t bucket = 0) {
    if constexpr (requires { c.bucket(bucket); }) {
      values.push_back(c.bucket(bucket));
    } else {
      values.push_back(c.get());
    }
  };
  auto sum = [&](const auto& h) { values.push_back(std::bit_cast<std::uint64_t>(h.sum())); };
  visit(counters, counter, sum);
  if (totals.empty()) totals.resize(values.size());
  // Sums of doubles are added as doubles, the rest as integers: one pass tells which is which.
  std::size_t i = 0;
  auto add = [&](const auto&, std::size_t = 0) {
    totals[i] += values[i];
    ++i;
  };
  auto add_sum = [&](const auto&) {
    totals[i] = std::bit_cast<std::uint64_t>(std::bit_cast<double>(totals[i]) + std::bit_cast<double>(values[i]));
    ++i;
  };
  visit(counters, add, add_sum);
}

bool restoreCounterValues(WorkerCounters& counters, std::span<const std::uint64_t> values) {
  std::size_t expected = 0;
  visit(counters, [&](auto&, std::size_t = 0) { ++expected; }, [&](auto&) { ++expected; });
  if (values.size() != expected) return false;
  std::size_t i = 0;
  auto counter = [&](auto& c, std::size_t bucket = 0) {
    if constexpr (requires { c.restoreBucket(bucket, values[i]); }) {
      c.restoreBucket(bucket, values[i]);
    } else {
      c.add(values[i]);
    }
    ++i;
  };
  auto sum = [&](auto& h) { h.restoreSum(std::bit_cast<double>(values[i++])); };
  visit(counters, counter, sum);
  return true;
}

}  // namespace tern::metrics
