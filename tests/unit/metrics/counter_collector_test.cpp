// Scrape-time summing of per-worker counters into Prometheus families.
#include <doctest/doctest.h>
#include <prometheus/text_serializer.h>

#include "metrics/counter_collector.hpp"

using namespace tern::metrics;

TEST_CASE("a scrape sums every worker's counters, with bounded labels") {
  WorkerCounters a, b;
  a.received(ClientTransport::kUdp, PacketKind::kStun);
  b.received(ClientTransport::kUdp, PacketKind::kStun);
  b.received(ClientTransport::kTcp, PacketKind::kChannelData);
  a.drop(DropReason::kBadFingerprint);
  a.responded(0x001, 200);
  b.responded(0x001, 200);
  b.responded(0x001, 420);
  b.responded(0x001, 299);  // never sent by tern: counted as 500

  CounterCollector collector;
  collector.addWorker(&a);
  collector.addWorker(&b);
  const std::string text = prometheus::TextSerializer{}.Serialize(collector.Collect());

  CHECK(text.find("tern_packets_received_total{transport=\"udp\",kind=\"stun\"} 2") != std::string::npos);
  CHECK(text.find("tern_packets_received_total{transport=\"tcp\",kind=\"channel_data\"} 1") != std::string::npos);
  CHECK(text.find("tern_dropped_packets_total{reason=\"bad_fingerprint\"} 1") != std::string::npos);
  CHECK(text.find("tern_requests_total{method=\"binding\",code=\"200\"} 2") != std::string::npos);
  CHECK(text.find("tern_requests_total{method=\"binding\",code=\"420\"} 1") != std::string::npos);
  CHECK(text.find("tern_requests_total{method=\"binding\",code=\"500\"} 1") != std::string::npos);
  CHECK(text.find("# TYPE tern_dropped_packets_total counter") != std::string::npos);
}

TEST_CASE("one-writer counters add without read-modify-write instructions") {
  OneWriterCounter c;
  for (int i = 0; i < 1000; ++i) c.add();
  c.add(5);
  CHECK(c.get() == 1005);
}

TEST_CASE("relayed traffic, auth results and allocation life cycle are exported, with live gauges") {
  WorkerCounters a, b;
  a.relayed(Direction::kClientToPeer, ClientTransport::kUdp, 160);
  b.relayed(Direction::kClientToPeer, ClientTransport::kUdp, 40);
  b.relayed(Direction::kPeerToClient, ClientTransport::kTcp, 1200);
  a.auth_results[idx(AuthResult::kStaleNonce)].add();
  for (int i = 0; i < 3; ++i) a.allocationCreated(ClientTransport::kUdp, Family::kIPv4);
  b.allocationCreated(ClientTransport::kUdp, Family::kIPv4);
  b.allocationCreated(ClientTransport::kTcp, Family::kIPv6);
  a.allocationEnded(ClientTransport::kUdp, Family::kIPv4, AllocationEnd::kExpired, 45.0);
  b.allocationEnded(ClientTransport::kUdp, Family::kIPv4, AllocationEnd::kDeleted, 700.0);
  a.rejected(Quota::kUserAllocations);
  b.rejected(Quota::kUserAllocations);
  b.permissions_active.set(5);
  a.permissions_active.set(2);
  a.channels_active.set(1);
  a.loop_lag_seconds.set(0.25);

  CounterCollector collector;
  collector.addWorker(&a);
  collector.addWorker(&b);
  const std::string text = prometheus::TextSerializer{}.Serialize(collector.Collect());
  auto has = [&](const std::string& line) {
    INFO(line);
    CHECK(text.find(line) != std::string::npos);
  };
  has("tern_relayed_packets_total{direction=\"client_to_peer\",transport=\"udp\",path=\"user\"} 2");
  has("tern_relayed_bytes_total{direction=\"client_to_peer\",transport=\"udp\",path=\"user\"} 200");
  has("tern_relayed_bytes_total{direction=\"peer_to_client\",transport=\"tcp\",path=\"user\"} 1200");
  has("tern_auth_results_total{result=\"stale_nonce\"} 1");
  has("tern_allocations_created_total{transport=\"udp\",family=\"ipv4\"} 4");
  has("tern_allocations_created_total{transport=\"tcp\",family=\"ipv6\"} 1");
  has("tern_allocations_ended_total{reason=\"expired\"} 1");
  has("# TYPE tern_allocations_active gauge");
  has("tern_allocations_active{transport=\"udp\",family=\"ipv4\"} 2");
  has("tern_allocations_active{transport=\"tcp\",family=\"ipv6\"} 1");
  has("tern_quota_rejections_total{quota=\"user_allocations\"} 2");
  has("tern_permissions_active 7");
  has("tern_channels_active 1");
  has("tern_event_loop_lag_seconds{worker=\"0\"} 0.25");
  has("tern_event_loop_lag_seconds{worker=\"1\"} 0");
  // Histograms: cumulative buckets summed over workers, +Inf equal to the count.
  has("# TYPE tern_allocation_duration_seconds histogram");
  has("tern_allocation_duration_seconds_bucket{le=\"30\"} 0");
  has("tern_allocation_duration_seconds_bucket{le=\"60\"} 1");
  has("tern_allocation_duration_seconds_bucket{le=\"600\"} 1");
  has("tern_allocation_duration_seconds_bucket{le=\"1800\"} 2");
  has("tern_allocation_duration_seconds_bucket{le=\"+Inf\"} 2");
  has("tern_allocation_duration_seconds_count 2");
  has("tern_allocation_duration_seconds_sum 745");
  CHECK(a.activeAllocations() + b.activeAllocations() == 3);
}

TEST_CASE("request durations land in their method's buckets") {
  WorkerCounters w;
  auto& allocate = w.request_duration[idx(RequestMethod::kAllocate)];
  allocate.observe(0.00004);  // below the first bound
  allocate.observe(0.0003);
  allocate.observe(2.0);      // past the last bound: only +Inf
  CounterCollector collector;
  collector.addWorker(&w);
  const std::string text = prometheus::TextSerializer{}.Serialize(collector.Collect());
  CHECK(text.find("tern_request_duration_seconds_bucket{method=\"allocate\",le=\"5e-05\"} 1") != std::string::npos);
  CHECK(text.find("tern_request_duration_seconds_bucket{method=\"allocate\",le=\"0.0005\"} 2") != std::string::npos);
  CHECK(text.find("tern_request_duration_seconds_bucket{method=\"allocate\",le=\"0.25\"} 2") != std::string::npos);
  CHECK(text.find("tern_request_duration_seconds_bucket{method=\"allocate\",le=\"+Inf\"} 3") != std::string::npos);
  CHECK(text.find("tern_request_duration_seconds_count{method=\"binding\"} 0") != std::string::npos);
}
