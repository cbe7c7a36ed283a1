// Issue 20 for RFC 6062 in the sans-I/O core: TurnServer A (the old process) hands over a TCP
// allocation with its CONNECTION-ID entries, TurnServer B (the new process, another clock)
// restores them, and a ConnectionBind for a waiting connection binds in B within the rest of
// its 30 s (RFC 6062 §5.3). A Connect still in progress does not cross.
#include <doctest/doctest.h>

#include "relay/core/allocation_snapshot.hpp"
#include "support/turn_harness.hpp"

using namespace tern;
using test::Reply;
using test::TestClient;
using test::TurnHarness;
using wire::Method;

namespace {

const core::FiveTuple kControl = test::tcpTuple("192.0.2.7:40000");
const core::FiveTuple kData = test::tcpTuple("192.0.2.7:40001");
const wire::SocketAddress kPeer = test::socketAddress("8.8.8.8:5000");
const wire::SocketAddress kOtherPeer = test::socketAddress("1.1.1.1:6000");
constexpr core::RelayId kNewRelay = 40;

Reply connectionBind(TestClient& data, core::ConnectionId id) {
  return data.request(Method::kConnectionBind,
                      [&](wire::MessageBuilder& b) { b.add(wire::attr::ConnectionId{id}); });
}

core::ConnectionId startConnect(TurnHarness& h, TestClient& c, const wire::SocketAddress& peer) {
  h.fromClient(c.tuple, test::bytesOf(c.build(Method::kConnect, [&](wire::MessageBuilder& b) {
                 b.add(wire::attr::XorPeerAddress{peer});
               })));
  REQUIRE(!h.output.connects.empty());
  return h.output.connects.back().id;
}

// A's TCP allocation with one connection waiting for its bind since 10 s (Connect to kPeer
// completed) and a Connect to kOtherPeer in progress.
struct OldProcess {
  OldProcess() : control(h, kControl) {
    client::TurnSession::AllocateOptions o;
    o.transport = wire::attr::RequestedTransport::kTcp;
    control.mustAllocate(o);
    waiting = startConnect(h, control, kPeer);
    h.server.onPeerConnected(waiting, true, h.now);
    h.advance(std::chrono::seconds(10));
    connecting = startConnect(h, control, kOtherPeer);
  }
  TurnHarness h;
  TestClient control;
  core::ConnectionId waiting = 0;
  core::ConnectionId connecting = 0;
};

// The record through its encoding, as it crosses.
core::TcpConnectionSnapshot crossed(const core::TcpConnectionSnapshot& s) {
  std::vector<std::uint8_t> bytes;
  core::encodeTcpConnection(s, bytes);
  wire::Bytes in(bytes);
  auto decoded = core::decodeTcpConnection(in);
  REQUIRE(decoded.has_value());
  return *decoded;
}

// B restores the allocation (its listener adopted as kNewRelay) and then the connection.
void restoreAllocationOn(TurnHarness& b, OldProcess& a) {
  const auto moving =
      a.h.server.snapshotAllocations(a.h.now, [](const core::Allocation&) { return true; });
  REQUIRE(moving.size() == 1);
  b.output.open_relays[kNewRelay] = moving[0].relays[0].relayed;
  const std::array<core::RelayId, 1> relays{kNewRelay};
  REQUIRE(b.server.restoreAllocation(moving[0], relays, b.now));
  CHECK(b.server.connectionCount() == 0);  // the connections come one by one
}

}  // namespace

TEST_CASE(
    "An RFC 6062 connection waiting for its bind crosses an upgrade and binds in the new process "
    "(RFC 6062 §5.4)") {
  OldProcess a;
  CHECK_FALSE(a.h.server.snapshotConnection(a.connecting, a.h.now).has_value());  // too transient
  const auto s = a.h.server.snapshotConnection(a.waiting, a.h.now);
  REQUIRE(s.has_value());
  CHECK_FALSE(s->bound);
  CHECK(s->control == kControl);
  CHECK(s->peer == kPeer);
  CHECK(s->deadline_in_ns == std::chrono::nanoseconds(std::chrono::seconds(20)).count());

  TurnHarness b;
  b.now = core::TimePoint{std::chrono::seconds(5000)};  // another process, another clock
  restoreAllocationOn(b, a);
  REQUIRE(b.server.restoreConnection(crossed(*s), b.now));
  CHECK_FALSE(b.server.restoreConnection(*s, b.now));  // its id is taken now
  CHECK(b.server.connectionCount() == 1);
  TestClient data(b, kData);
  REQUIRE(connectionBind(data, a.waiting).success());
  REQUIRE(b.output.joined.size() == 1);
  CHECK(b.output.joined[0].first == a.waiting);
  CHECK(b.output.joined[0].second == kData);
}

TEST_CASE(
    "A restored RFC 6062 connection not bound in the rest of its 30 s is closed (RFC 6062 §5.3)") {
  OldProcess a;
  const auto s = a.h.server.snapshotConnection(a.waiting, a.h.now);
  REQUIRE(s.has_value());
  TurnHarness b;
  restoreAllocationOn(b, a);
  REQUIRE(b.server.restoreConnection(*s, b.now));
  b.advance(std::chrono::seconds(19));
  CHECK(b.output.closed_connections.empty());
  b.advance(std::chrono::seconds(2));
  REQUIRE(b.output.closed_connections.size() == 1);
  CHECK(b.output.closed_connections[0] == a.waiting);
  CHECK(b.server.connectionCount() == 0);
}

TEST_CASE(
    "A restored RFC 6062 connection needs its allocation, and a waiting one an id of this worker") {
  OldProcess a;
  auto s = a.h.server.snapshotConnection(a.waiting, a.h.now);
  REQUIRE(s.has_value());
  TurnHarness b;
  CHECK_FALSE(b.server.restoreConnection(*s, b.now));  // no allocation restored
  restoreAllocationOn(b, a);
  // Another worker's id (the worker count changed): its ConnectionBind would be routed there.
  core::TcpConnectionSnapshot foreign = *s;
  foreign.id = (foreign.id & 0xFFFFFFu) | (5u << 24);
  CHECK_FALSE(b.server.restoreConnection(foreign, b.now));
  // Bound, it needs no routing any more.
  foreign.bound = true;
  CHECK(b.server.restoreConnection(foreign, b.now));
  b.advance(std::chrono::seconds(60));
  CHECK(b.output.closed_connections.empty());
}

TEST_CASE(
    "Restored RFC 6062 connections close in the order of their deadlines, whatever the order they "
    "came in") {
  OldProcess a;
  const auto s = a.h.server.snapshotConnection(a.waiting, a.h.now);
  REQUIRE(s.has_value());
  TurnHarness b;
  restoreAllocationOn(b, a);
  // The first to come has 20 s left, the second 5 s: the expiry queue must not keep the
  // second waiting behind the first.
  core::TcpConnectionSnapshot sooner = *s;
  sooner.id = s->id ^ 0x1;
  sooner.peer = kOtherPeer;
  sooner.deadline_in_ns = std::chrono::nanoseconds(std::chrono::seconds(5)).count();
  REQUIRE(b.server.restoreConnection(*s, b.now));
  REQUIRE(b.server.restoreConnection(sooner, b.now));
  b.advance(std::chrono::seconds(6));
  REQUIRE(b.output.closed_connections.size() == 1);
  CHECK(b.output.closed_connections[0] == sooner.id);
  b.advance(std::chrono::seconds(15));
  REQUIRE(b.output.closed_connections.size() == 2);
  CHECK(b.output.closed_connections[1] == s->id);
}
