// ServerContext::relayToPeer, the client-to-peer step that ChannelData and Send indications
// share (RFC 8656 §11.2, §12.5): its checks in their order, each refusal counted once under
// its drop reason. The two paths end to end are turn_server_data_test.cpp and
// turn_server_channel_test.cpp.
#include <doctest/doctest.h>

#include <memory>
#include <vector>

#include "metrics/worker_counters.hpp"
#include "relay/core/server_context.hpp"
#include "support/core_services.hpp"
#include "support/context_harness.hpp"

using namespace tern;
using metrics::DropReason;

namespace {

const wire::SocketAddress kPeer = *wire::SocketAddress::parse("8.8.8.8:5000");
const wire::SocketAddress kDeniedPeer = *wire::SocketAddress::parse("203.0.113.5:5000");
const core::FiveTuple kTuple{core::Transport::kUdp, *wire::SocketAddress::parse("192.0.2.7:40000"),
                             *wire::SocketAddress::parse("198.51.100.1:3478")};

struct Relay : test::ContextHarness {
  Relay() : ContextHarness([] {
      test::ServicesOptions o;
      o.deny_peers = {"203.0.113.0/24"};
      return o;
    }()) {
    auto a = std::make_unique<core::Allocation>(kTuple, 0,
                                                *wire::SocketAddress::parse("198.51.100.7:50000"),
                                                "user", std::vector<std::uint8_t>(16, 1), now);
    a->setExpiry(now + std::chrono::seconds(600));
    allocation = &allocations.insert(std::move(a));
  }

  std::uint64_t dropped(DropReason r) const { return counters.dropped[metrics::idx(r)].get(); }
  std::uint64_t droppedTotal() const {
    std::uint64_t n = 0;
    for (const auto& c : counters.dropped) n += c.get();
    return n;
  }
  void permit(const wire::SocketAddress& peer) {
    REQUIRE(allocation->installPermission(peer.ip, now, now + std::chrono::seconds(300), 10));
  }
  std::optional<DropReason> relay(const wire::SocketAddress& peer, bool check_policy,
                                  std::size_t size = 100) {
    const std::vector<std::uint8_t> payload(size, 0x42);
    return server.relayToPeer(*allocation, peer, {payload.data(), payload.size()}, check_policy,
                              now);
  }

  core::Allocation* allocation = nullptr;
};

}  // namespace

TEST_CASE("relayToPeer sends from the allocation's relay socket and counts the packet") {
  Relay r;
  r.permit(kPeer);
  CHECK_FALSE(r.relay(kPeer, true).has_value());
  REQUIRE(r.output.to_peers.size() == 1);
  CHECK(r.output.to_peers[0].peer == kPeer);
  CHECK(r.counters
            .relayed_packets[metrics::idx(metrics::Direction::kClientToPeer)]
                            [metrics::idx(metrics::ClientTransport::kUdp)]
            .get() == 1);
  CHECK(r.allocation->usage().packets_to_peer == 1);
  CHECK(r.allocation->usage().bytes_to_peer == 100);
  CHECK(r.droppedTotal() == 0);
}

TEST_CASE(
    "relayToPeer: permission, then peer policy, then bandwidth, then the send, each drop counted "
    "once") {
  Relay r;
  SUBCASE("no permission comes first, even for a denied peer and a failing send") {
    r.output.accept = false;
    CHECK(r.relay(kDeniedPeer, true) == DropReason::kNoPermission);
    CHECK(r.dropped(DropReason::kNoPermission) == 1);
    CHECK(r.droppedTotal() == 1);
  }
  SUBCASE("the peer policy, when asked for, before the send") {
    r.permit(kDeniedPeer);
    r.output.accept = false;
    CHECK(r.relay(kDeniedPeer, true) == DropReason::kPeerDenied);
    CHECK(r.dropped(DropReason::kPeerDenied) == 1);
    CHECK(r.droppedTotal() == 1);
  }
  SUBCASE(
      "not asked for (a channel to a peer that is not this relay's own address): no policy check") {
    r.permit(kDeniedPeer);
    CHECK_FALSE(r.relay(kDeniedPeer, false).has_value());
    CHECK(r.output.to_peers.size() == 1);
    CHECK(r.droppedTotal() == 0);
  }
  SUBCASE("an empty bandwidth bucket") {
    r.permit(kPeer);
    r.options.allocation_bandwidth = core::BandwidthLimit(8'000);  // 1000 bytes a second
    std::optional<DropReason> refused;
    for (int i = 0; i < 20 && !refused; ++i) refused = r.relay(kPeer, true, 500);
    CHECK(refused == DropReason::kBandwidthLimit);
    CHECK(r.dropped(DropReason::kBandwidthLimit) == 1);
    CHECK(r.droppedTotal() == 1);
  }
  SUBCASE("a send the I/O layer refuses") {
    r.permit(kPeer);
    r.output.accept = false;
    CHECK(r.relay(kPeer, true) == DropReason::kSendFailed);
    CHECK(r.dropped(DropReason::kSendFailed) == 1);
    CHECK(r.droppedTotal() == 1);
    CHECK(r.allocation->usage().packets_to_peer == 0);
  }
}

TEST_CASE(
    "liveAllocation finds the allocation on a 5-tuple until it expires, else counts "
    "kNoAllocation") {
  Relay r;
  CHECK(r.server.liveAllocation(kTuple, r.now) == r.allocation);
  const core::FiveTuple other{core::Transport::kUdp, *wire::SocketAddress::parse("192.0.2.8:40000"),
                              kTuple.server};
  CHECK(r.server.liveAllocation(other, r.now) == nullptr);
  CHECK(r.server.liveAllocation(kTuple, r.now + std::chrono::seconds(601)) == nullptr);
  CHECK(r.dropped(DropReason::kNoAllocation) == 2);
}
