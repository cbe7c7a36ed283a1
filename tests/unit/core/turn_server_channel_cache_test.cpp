// Issue 21: the core keeps the kernel fast path's channel cache (core::ChannelCache) a true
// mirror of its decisions: told after each change, emptied of an allocation before it ends
// (and what the cache relayed counted in its usage record), never holding an allocation a
// bandwidth limit applies to, and emptied at an upgrade's freeze.
#include <doctest/doctest.h>

#include "hand_over_fixture.hpp"
#include "relay/core/server_output.hpp"
#include "support/turn_harness.hpp"

using namespace tern;
using test::TestClient;
using test::TurnHarness;
using namespace std::chrono_literals;

namespace {

const wire::SocketAddress kPeer = test::socketAddress("8.8.8.8:5000");
constexpr std::uint16_t kChannel = 0x4000;

// Records what the core tells it; remove() hands back `relayed` as the kernel's count.
struct RecordingCache final : core::ChannelCache {
  struct Update {
    const core::Allocation* allocation;
    bool eligible;
    std::size_t channels;  // live channels at the time
  };
  void update(const core::Allocation& a, bool eligible, core::TimePoint now) noexcept override {
    updates.push_back({&a, eligible, a.activeChannels(now)});
  }
  core::AllocationUsage remove(const core::Allocation& a) noexcept override {
    removed.push_back(&a);
    return relayed;
  }
  std::vector<Update> updates;
  std::vector<const core::Allocation*> removed;
  core::AllocationUsage relayed;
};

const core::Allocation* onlyAllocation(const TurnHarness& h) {
  const core::Allocation* found = nullptr;
  h.server.forEachAllocation([&](const core::Allocation& a) { found = &a; });
  return found;
}

}  // namespace

TEST_CASE(
    "channel cache: a ChannelBind reaches the cache at once, a request that changes nothing does "
    "not") {
  TurnHarness h;
  RecordingCache cache;
  h.server.setChannelCache(&cache, h.now);
  TestClient c(h, test::udpTuple("192.0.2.7:40000"));
  c.mustAllocate();
  REQUIRE_FALSE(cache.updates.empty());
  CHECK(cache.updates.back().channels == 0);
  CHECK(cache.updates.back().eligible);
  REQUIRE(c.channelBind(kChannel, kPeer).success());
  REQUIRE_FALSE(cache.updates.empty());
  CHECK(cache.updates.back().allocation == onlyAllocation(h));
  CHECK(cache.updates.back().channels == 1);
  // A Refresh moves the expiry the entries carry: told again.
  const std::size_t before = cache.updates.size();
  REQUIRE(c.refresh(600).success());
  CHECK(cache.updates.size() == before + 1);
  // ChannelData is the packet path: the cache hears nothing of it.
  c.channelData(kChannel, test::payloadOf(10));
  CHECK(cache.updates.size() == before + 1);
}

TEST_CASE(
    "channel cache: an allocation leaves the cache before its usage record, which counts the "
    "kernel's packets") {
  TurnHarness h;
  RecordingCache cache;
  h.server.setChannelCache(&cache, h.now);
  TestClient c(h, test::udpTuple("192.0.2.7:40000"));
  c.mustAllocate();
  REQUIRE(c.channelBind(kChannel, kPeer).success());
  c.channelData(kChannel, test::payloadOf(10));  // one by user space
  cache.relayed = {5, 500, 7, 700};              // and these by the kernel
  REQUIRE(c.refresh(0).success());               // RFC 8656 §7: deleted at once
  REQUIRE(cache.removed.size() == 1);
  REQUIRE(h.output.ended.size() == 1);
  const core::AllocationUsage& usage = h.output.ended.front().usage;
  CHECK(usage.packets_to_peer == 6);
  CHECK(usage.bytes_to_peer == 510);
  CHECK(usage.packets_to_client == 7);
  CHECK(usage.bytes_to_client == 700);
}

TEST_CASE(
    "channel cache: an allocation that expires leaves the cache, and so does every one at "
    "shutdown") {
  TurnHarness h;
  RecordingCache cache;
  h.server.setChannelCache(&cache, h.now);
  TestClient a(h, test::udpTuple("192.0.2.7:40000"));
  TestClient b(h, test::udpTuple("192.0.2.8:40000"));
  a.mustAllocate();
  b.mustAllocate();
  REQUIRE(a.refresh(3600).success());
  h.advance(700s);  // b's default 600 s are over, a's 3600 s are not
  CHECK(cache.removed.size() == 1);
  h.server.shutdown(h.now);
  CHECK(cache.removed.size() == 2);
}

TEST_CASE(
    "channel cache: a bandwidth limit keeps allocations out, and a reload that sets or lifts one tells "
    "the cache") {
  core::ServerOptions limited;
  limited.allocation_bandwidth = core::BandwidthLimit(400'000);
  TurnHarness h(limited);
  RecordingCache cache;
  h.server.setChannelCache(&cache, h.now);
  TestClient c(h, test::udpTuple("192.0.2.7:40000"));
  c.mustAllocate();
  REQUIRE(c.channelBind(kChannel, kPeer).success());
  CHECK_FALSE(cache.updates.back().eligible);
  // Lifted: every allocation is offered again, eligible.
  h.server.reconfigure(core::ServerOptions{}, h.services, h.now);
  CHECK(cache.updates.back().eligible);
  CHECK(cache.updates.back().channels == 1);
  // A per-user limit keeps them out too.
  core::ServerOptions per_user;
  per_user.user_bandwidth = core::BandwidthLimit(400'000);
  h.server.reconfigure(per_user, h.services, h.now);
  CHECK_FALSE(cache.updates.back().eligible);
}

TEST_CASE(
    "channel cache: an upgrade's freeze empties it with the kernel's counts credited, and a thaw fills "
    "it again") {
  TurnHarness h;
  RecordingCache cache;
  h.server.setChannelCache(&cache, h.now);
  TestClient c(h, test::udpTuple("192.0.2.7:40000"));
  c.mustAllocate();
  REQUIRE(c.channelBind(kChannel, kPeer).success());
  cache.relayed = {3, 300, 4, 400};
  h.server.uncacheAll();
  REQUIRE(cache.removed.size() == 1);
  const core::Allocation* a = onlyAllocation(h);
  REQUIRE(a != nullptr);
  // The snapshot the new process restores carries them.
  const core::AllocationSnapshot s = h.server.snapshot(*a, h.now);
  CHECK(s.usage.packets_to_peer == 3);
  CHECK(s.usage.bytes_to_client == 400);
  const std::size_t before = cache.updates.size();
  h.server.recacheAll(h.now);
  CHECK(cache.updates.size() == before + 1);
  CHECK(cache.updates.back().channels == 1);
}

TEST_CASE("channel cache: a periodic credit adds to the allocation's usage, never to another's") {
  TurnHarness h;
  RecordingCache cache;
  h.server.setChannelCache(&cache, h.now);
  TestClient c(h, test::udpTuple("192.0.2.7:40000"));
  c.mustAllocate();
  const core::Allocation* a = onlyAllocation(h);
  REQUIRE(a != nullptr);
  h.server.creditUsage(*a, {2, 200, 1, 100});
  CHECK(a->usage().packets_to_peer == 2);
  CHECK(a->usage().bytes_to_client == 100);
  // An allocation the table does not hold (ended meanwhile) gets nothing, and nothing breaks.
  core::Allocation stranger(test::udpTuple("192.0.2.9:40000"), 99,
                            test::socketAddress("198.51.100.1:50000"), "u",
                            std::vector<std::uint8_t>(16, 1), h.now);
  h.server.creditUsage(stranger, {1, 1, 1, 1});
  CHECK(stranger.usage().packets_to_peer == 0);
}
