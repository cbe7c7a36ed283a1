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
  CHECK(text.find("tern_stun_responses_total{method=\"binding\",code=\"200\"} 2") != std::string::npos);
  CHECK(text.find("tern_stun_responses_total{method=\"binding\",code=\"420\"} 1") != std::string::npos);
  CHECK(text.find("tern_stun_responses_total{method=\"binding\",code=\"500\"} 1") != std::string::npos);
  CHECK(text.find("# TYPE tern_dropped_packets_total counter") != std::string::npos);
}

TEST_CASE("one-writer counters add without read-modify-write instructions") {
  OneWriterCounter c;
  for (int i = 0; i < 1000; ++i) c.add();
  c.add(5);
  CHECK(c.get() == 1005);
}

TEST_CASE("relayed traffic, auth results and allocation life cycle are exported, with a live gauge") {
  WorkerCounters a, b;
  a.relayed(Direction::kClientToPeer, ClientTransport::kUdp, 160);
  b.relayed(Direction::kClientToPeer, ClientTransport::kUdp, 40);
  b.relayed(Direction::kPeerToClient, ClientTransport::kTcp, 1200);
  a.auth_results[idx(AuthResult::kStaleNonce)].add();
  a.allocations_created[idx(ClientTransport::kUdp)].add(3);
  b.allocations_created[idx(ClientTransport::kUdp)].add(1);
  a.allocations_ended[idx(AllocationEnd::kExpired)].add();
  b.allocations_ended[idx(AllocationEnd::kDeleted)].add();

  CounterCollector collector;
  collector.addWorker(&a);
  collector.addWorker(&b);
  const std::string text = prometheus::TextSerializer{}.Serialize(collector.Collect());
  CHECK(text.find("tern_relayed_packets_total{direction=\"client_to_peer\",transport=\"udp\"} 2") != std::string::npos);
  CHECK(text.find("tern_relayed_bytes_total{direction=\"client_to_peer\",transport=\"udp\"} 200") != std::string::npos);
  CHECK(text.find("tern_relayed_bytes_total{direction=\"peer_to_client\",transport=\"tcp\"} 1200") != std::string::npos);
  CHECK(text.find("tern_auth_results_total{result=\"stale_nonce\"} 1") != std::string::npos);
  CHECK(text.find("tern_allocations_created_total{transport=\"udp\"} 4") != std::string::npos);
  CHECK(text.find("tern_allocations_ended_total{reason=\"expired\"} 1") != std::string::npos);
  CHECK(text.find("# TYPE tern_allocations_active gauge") != std::string::npos);
  CHECK(text.find("tern_allocations_active 2") != std::string::npos);
}
