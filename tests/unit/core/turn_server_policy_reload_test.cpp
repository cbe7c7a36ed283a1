// A reload that narrows the peer policy (issue 18, item 8): the permissions and channels to
// peers it now refuses end at once, counted, instead of relaying until they expire.
#include <doctest/doctest.h>

#include "support/turn_harness.hpp"

using namespace tern;
using test::TestClient;
using test::TurnHarness;

namespace {

const core::FiveTuple kTuple = test::udpTuple("192.0.2.7:40000");
const wire::SocketAddress kKept = test::socketAddress("8.8.8.8:5000");
const wire::SocketAddress kDenied = test::socketAddress("1.1.1.1:6000");

std::uint64_t revoked(const TurnHarness& h, std::size_t kind) {
  return h.counters.peers_revoked[kind].get();
}

core::ServerServices denying(const char* range) {
  test::ServicesOptions o;
  o.deny_peers = {range};
  return test::makeServices(o);
}

TEST_SUITE_BEGIN("core/turn_server/policy_reload");

TEST_CASE("a reload that denies a peer ends its channel and permission at once (issue 18)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.channelBind(0x4000, kDenied).success());
  REQUIRE(c.channelBind(0x4001, kKept).success());
  c.channelData(0x4000, test::payloadOf(8));
  REQUIRE(h.output.to_peers.size() == 1);

  h.server.reconfigure({}, denying("1.1.1.0/24"), h.now);
  CHECK(revoked(h, 0) == 1);  // the permission for 1.1.1.1
  CHECK(revoked(h, 1) == 1);  // channel 0x4000
  // ChannelData, which checks no policy per packet, no longer reaches the denied peer...
  c.channelData(0x4000, test::payloadOf(8));
  CHECK(h.output.to_peers.size() == 1);
  CHECK(h.dropped(metrics::DropReason::kNoChannel) == 1);
  // ...nor does data from it reach the client...
  const std::size_t sent = h.output.sent.size();
  h.fromPeer(c.relay(), kDenied, test::bytesOf(test::payloadOf(4)));
  CHECK(h.output.sent.size() == sent);
  // ...while the other peer's channel relays on, and the denied peer cannot come back.
  c.channelData(0x4001, test::payloadOf(8));
  REQUIRE(h.output.to_peers.size() == 2);
  CHECK(h.output.to_peers.back().peer == kKept);
  CHECK(c.channelBind(0x4000, kDenied).code() == 403);
  CHECK(c.createPermission({kDenied}).code() == 403);
}

TEST_CASE("a reload that changes nothing for a call's peers leaves the call alone") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  REQUIRE(c.channelBind(0x4000, kKept).success());
  h.server.reconfigure({}, denying("1.1.1.0/24"), h.now);
  CHECK(revoked(h, 0) == 0);
  CHECK(revoked(h, 1) == 0);
  c.channelData(0x4000, test::payloadOf(8));
  CHECK(h.output.to_peers.size() == 1);
}

TEST_CASE("a reload ends the RFC 6062 connections to a peer it denies") {
  TurnHarness h;
  TestClient c(h, test::tcpTuple("192.0.2.7:40000"));
  client::TurnSession::AllocateOptions tcp;
  tcp.transport = 6;  // RFC 6062: REQUESTED-TRANSPORT TCP
  c.mustAllocate(tcp);
  h.fromClient(c.tuple, test::bytesOf(c.build(wire::Method::kConnect, [&](wire::MessageBuilder& b) {
                 b.add(wire::attr::XorPeerAddress{kDenied});
               })));
  REQUIRE(h.output.connects.size() == 1);
  const core::ConnectionId id = h.output.connects.back().id;
  h.server.onPeerConnected(id, true, h.now);
  h.server.reconfigure({}, denying("1.1.1.0/24"), h.now);
  CHECK(revoked(h, 2) == 1);
  CHECK(h.output.closed_connections.size() == 1);
  CHECK(h.output.closed_connections.back() == id);
}

TEST_SUITE_END();

}  // namespace
