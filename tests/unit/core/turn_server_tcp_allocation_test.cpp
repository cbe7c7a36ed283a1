// TurnServer's TCP allocations (RFC 6062): Allocate with REQUESTED-TRANSPORT TCP, Connect,
// ConnectionAttempt, ConnectionBind, the 30 s timers and the hand-over of a ConnectionBind
// to the worker that owns its connection. Driven with a fake clock and a recording output.
#include <doctest/doctest.h>

#include "auth/rest_credentials.hpp"
#include "support/turn_harness.hpp"

using namespace tern;
using test::Reply;
using test::TestClient;
using test::TurnHarness;
using wire::AttributeType;
using wire::Method;

namespace {

const core::FiveTuple kControl = test::tcpTuple("192.0.2.7:40000");
const core::FiveTuple kData = test::tcpTuple("192.0.2.7:40001");
const wire::SocketAddress kPeer = test::socketAddress("8.8.8.8:5000");
const wire::SocketAddress kOtherPeer = test::socketAddress("1.1.1.1:6000");

client::TurnSession::AllocateOptions tcpAllocation() {
  client::TurnSession::AllocateOptions o;
  o.transport = wire::attr::RequestedTransport::kTcp;
  return o;
}

Reply connectTo(TestClient& c, const wire::SocketAddress& peer) {
  return c.request(Method::kConnect, [&](wire::MessageBuilder& b) { b.add(wire::attr::XorPeerAddress{peer}); });
}

// Sends a Connect that the server defers (it waits for the TCP handshake), after the
// session has a nonce; returns the id the server gave the outgoing connection.
core::ConnectionId startConnect(TurnHarness& h, TestClient& c, const wire::SocketAddress& peer) {
  const std::size_t connects = h.output.connects.size();
  const std::size_t sent = h.output.sent.size();
  h.fromClient(c.tuple, test::bytesOf(c.build(Method::kConnect, [&](wire::MessageBuilder& b) {
                 b.add(wire::attr::XorPeerAddress{peer});
               })));
  REQUIRE(h.output.connects.size() == connects + 1);
  CHECK(h.output.sent.size() == sent);  // no answer until the connection completes
  CHECK(h.output.connects.back().peer == peer);
  CHECK(h.output.connects.back().relay == c.relay());
  return h.output.connects.back().id;
}

Reply lastReplyTo(TurnHarness& h, const core::FiveTuple& tuple) {
  REQUIRE(!h.output.sent.empty());
  REQUIRE(h.output.sent.back().tuple == tuple);
  return Reply(h.output.sent.back().bytes);
}

Reply connectionBind(TestClient& data, core::ConnectionId id) {
  return data.request(Method::kConnectionBind, [&](wire::MessageBuilder& b) { b.add(wire::attr::ConnectionId{id}); });
}

// A TCP allocation with a nonce learnt, so later requests are signed at once.
struct TcpAllocation {
  explicit TcpAllocation(TurnHarness& h) : control(h, kControl) {
    control.mustAllocate(tcpAllocation());
    REQUIRE(h.output.last_request.tcp);
  }
  TestClient control;
};

// Connect to `peer`, completed by the (fake) network; returns the CONNECTION-ID answered.
core::ConnectionId connected(TurnHarness& h, TestClient& c, const wire::SocketAddress& peer) {
  const core::ConnectionId id = startConnect(h, c, peer);
  h.server.onPeerConnected(id, true, h.now);
  const Reply r = lastReplyTo(h, c.tuple);
  REQUIRE(r.success());
  const auto cid = r.get<wire::attr::ConnectionId>();
  REQUIRE(cid.has_value());
  CHECK(cid->id == id);
  return id;
}

}  // namespace

// --- Allocate --------------------------------------------------------------------------------

TEST_CASE("Allocate for TCP over TCP opens a TCP relay (RFC 6062 §5.1)") {
  TurnHarness h;
  TestClient c(h, kControl);
  const Reply r = c.allocate(tcpAllocation());
  REQUIRE(r.success());
  CHECK(h.output.last_request.tcp);
  CHECK(r.get<wire::attr::XorRelayedAddress>().has_value());
}

TEST_CASE("Allocate for TCP over UDP gets 400 (RFC 6062 §5.1)") {
  TurnHarness h;
  TestClient c(h, test::udpTuple("192.0.2.7:40000"));
  const Reply r = c.allocate(tcpAllocation());
  CHECK(r.code() == 400);
  CHECK(h.output.open_relays.empty());
}

TEST_CASE("Allocate for TCP with DONT-FRAGMENT or EVEN-PORT gets 400 (RFC 6062 §5.1)") {
  SUBCASE("DONT-FRAGMENT") {
    TurnHarness h;
    TestClient c(h, kControl);
    auto o = tcpAllocation();
    o.dont_fragment = true;
    CHECK(c.allocate(o).code() == 400);
    CHECK(h.output.open_relays.empty());
  }
  SUBCASE("EVEN-PORT") {
    TurnHarness h;
    TestClient c(h, kControl);
    const Reply r = c.request(Method::kAllocate, [](wire::MessageBuilder& b) {
      b.add(wire::attr::RequestedTransport{wire::attr::RequestedTransport::kTcp}).add(wire::attr::EvenPort{false});
    });
    CHECK(r.code() == 400);
    CHECK(h.output.open_relays.empty());
  }
}

// --- Connect ---------------------------------------------------------------------------------

TEST_CASE("Connect is answered once the peer connection succeeds, with a CONNECTION-ID (RFC 6062 §5.2)") {
  TurnHarness h;
  TcpAllocation a(h);
  const core::ConnectionId id = connected(h, a.control, kPeer);
  CHECK(a.control.session.onResponse(lastReplyTo(h, kControl).view()) == client::TurnSession::Outcome::kSuccess);
  CHECK(a.control.session.lastResponseSigned());
  CHECK(h.server.connectionCount() == 1);
  CHECK(core::TcpConnectionTable::ownerOf(id) == 0);
}

TEST_CASE("Connect that fails gets 447 and leaves nothing behind (RFC 6062 §5.2)") {
  TurnHarness h;
  TcpAllocation a(h);
  const core::ConnectionId id = startConnect(h, a.control, kPeer);
  h.server.onPeerConnected(id, false, h.now);
  const Reply r = lastReplyTo(h, kControl);
  CHECK(r.code() == 447);
  CHECK(h.server.connectionCount() == 0);
  // The peer may be tried again.
  startConnect(h, a.control, kPeer);
}

TEST_CASE("Connect still pending after 30 s gets 447 and its socket is closed (RFC 6062 §5.2)") {
  TurnHarness h;
  TcpAllocation a(h);
  const core::ConnectionId id = startConnect(h, a.control, kPeer);
  const std::size_t sent = h.output.sent.size();
  h.advance(std::chrono::seconds(29));
  CHECK(h.output.sent.size() == sent);
  h.advance(std::chrono::seconds(2));
  CHECK(lastReplyTo(h, kControl).code() == 447);
  REQUIRE(h.output.closed_connections.size() == 1);
  CHECK(h.output.closed_connections[0] == id);
  // A late success from the network changes nothing.
  h.server.onPeerConnected(id, true, h.now);
  CHECK(h.output.sent.size() == sent + 1);
}

TEST_CASE("A second Connect to the same peer gets 446, pending or established (RFC 6062 §5.2)") {
  TurnHarness h;
  TcpAllocation a(h);
  const core::ConnectionId id = startConnect(h, a.control, kPeer);
  CHECK(connectTo(a.control, kPeer).code() == 446);
  h.server.onPeerConnected(id, true, h.now);
  CHECK(connectTo(a.control, kPeer).code() == 446);
  // Another port of the same host is another peer.
  startConnect(h, a.control, wire::SocketAddress{kPeer.ip, 5001});
  // Once the connection is gone, the peer may be connected again.
  h.server.onConnectionClosed(id);
  startConnect(h, a.control, kPeer);
}

TEST_CASE("Connect is refused without a TCP allocation, a peer, or the peer policy's consent") {
  SUBCASE("no allocation: 437") {
    TurnHarness h;
    TestClient c(h, kControl);
    CHECK(connectTo(c, kPeer).code() == 437);
  }
  SUBCASE("a UDP allocation: 400") {
    TurnHarness h;
    TestClient c(h, kControl);
    c.mustAllocate();
    CHECK(connectTo(c, kPeer).code() == 400);
  }
  SUBCASE("no XOR-PEER-ADDRESS: 400") {
    TurnHarness h;
    TcpAllocation a(h);
    CHECK(a.control.request(Method::kConnect, [](wire::MessageBuilder&) {}).code() == 400);
  }
  SUBCASE("a private peer: 403, as for CreatePermission") {
    TurnHarness h;
    TcpAllocation a(h);
    CHECK(connectTo(a.control, test::socketAddress("10.1.2.3:80")).code() == 403);
    CHECK(connectTo(a.control, test::socketAddress("[::ffff:127.0.0.1]:80")).code() == 403);
  }
  SUBCASE("the relay's own address outside the relay ports: 403") {
    TurnHarness h;
    TcpAllocation a(h);
    CHECK(connectTo(a.control, test::socketAddress("198.51.100.7:22")).code() == 403);
  }
  SUBCASE("an IPv6 peer from an IPv4 relay: 443") {
    TurnHarness h;
    TcpAllocation a(h);
    CHECK(connectTo(a.control, test::socketAddress("[2606:4700::1111]:80")).code() == 443);
  }
}

TEST_CASE("Connect beyond max_connections_per_allocation gets 508") {
  core::ServerOptions options;
  options.max_connections_per_allocation = 1;
  TurnHarness h(options);
  TcpAllocation a(h);
  startConnect(h, a.control, kPeer);
  CHECK(connectTo(a.control, kOtherPeer).code() == 508);
}

TEST_CASE("Connect that cannot even start gets 447 at once") {
  TurnHarness h;
  TcpAllocation a(h);
  h.output.accept = false;
  CHECK(connectTo(a.control, kPeer).code() == 447);
  CHECK(h.server.connectionCount() == 0);
}

// --- ConnectionBind --------------------------------------------------------------------------

TEST_CASE("ConnectionBind on a new connection joins it to the peer connection (RFC 6062 §5.4)") {
  TurnHarness h;
  TcpAllocation a(h);
  const core::ConnectionId id = connected(h, a.control, kPeer);
  TestClient data(h, kData);
  const Reply r = connectionBind(data, id);  // 401 first, then signed
  REQUIRE(r.success());
  CHECK(data.session.lastResponseSigned());
  REQUIRE(h.output.joined.size() == 1);
  CHECK(h.output.joined[0].first == id);
  CHECK(h.output.joined[0].second == kData);
  // Bound once only.
  TestClient again(h, test::tcpTuple("192.0.2.7:40002"));
  CHECK(connectionBind(again, id).code() == 400);
  // A bound connection outlives the 30 s bind timer.
  h.advance(std::chrono::seconds(60));
  CHECK(h.output.closed_connections.empty());
}

TEST_CASE("ConnectionBind with an unknown, missing or pending CONNECTION-ID gets 400 (RFC 6062 §5.4)") {
  TurnHarness h;
  TcpAllocation a(h);
  const core::ConnectionId pending = startConnect(h, a.control, kPeer);
  TestClient data(h, kData);
  CHECK(connectionBind(data, pending).code() == 400);
  CHECK(connectionBind(data, pending ^ 0x5A5A).code() == 400);
  CHECK(data.request(Method::kConnectionBind, [](wire::MessageBuilder&) {}).code() == 400);
  CHECK(h.output.joined.empty());
}

TEST_CASE("ConnectionBind over UDP or on the control connection gets 400 (RFC 6062 §5.4)") {
  TurnHarness h;
  TcpAllocation a(h);
  const core::ConnectionId id = connected(h, a.control, kPeer);
  TestClient udp(h, test::udpTuple("192.0.2.7:40003"));
  CHECK(connectionBind(udp, id).code() == 400);
  CHECK(connectionBind(a.control, id).code() == 400);
  CHECK(h.output.joined.empty());
}

TEST_CASE("ConnectionBind by another user gets 441") {
  TurnHarness h;
  TcpAllocation a(h);
  const core::ConnectionId id = connected(h, a.control, kPeer);
  // The harness's credential store knows one static user; a REST credential is another user.
  const auto rest = auth::mintRestCredential(test::kTestSecret, "mallory", h.unix_now, 3600);
  TestClient mallory(h, kData, rest.username, rest.password);
  CHECK(connectionBind(mallory, id).code() == 441);
  CHECK(h.output.joined.empty());
}

TEST_CASE("ConnectionBind with the allocation's expired REST credential still binds, strictly it gets 401") {
  for (const bool strict : {false, true}) {
    CAPTURE(strict);
    core::ServerOptions options;
    options.strict_expiry = strict;
    TurnHarness h(options);
    const auto rest = auth::mintRestCredential(test::kTestSecret, "bob", h.unix_now, 300);
    TestClient control(h, kControl, rest.username, rest.password);
    control.mustAllocate(tcpAllocation());
    h.advance(std::chrono::seconds(250));
    if (!strict) REQUIRE(control.refresh().success());
    h.advance(std::chrono::seconds(100));  // the credential has expired
    if (strict) {
      CHECK(h.server.allocationCount() == 0);  // its lifetime ended with the credential
      continue;
    }
    const core::ConnectionId id = connected(h, control, kPeer);
    TestClient data(h, kData, rest.username, rest.password);
    CHECK(connectionBind(data, id).success());
    // Another user's expired credential gets no such pass.
    const auto other = auth::mintRestCredential(test::kTestSecret, "eve", h.unix_now - 400, 300);
    TestClient eve(h, test::tcpTuple("192.0.2.7:40003"), other.username, other.password);
    CHECK(connectionBind(eve, id).code() == 401);
  }
}

TEST_CASE("A connection not bound within 30 s is closed (RFC 6062 §5.2)") {
  TurnHarness h;
  TcpAllocation a(h);
  const core::ConnectionId id = connected(h, a.control, kPeer);
  h.advance(std::chrono::seconds(31));
  REQUIRE(h.output.closed_connections.size() == 1);
  CHECK(h.output.closed_connections[0] == id);
  TestClient data(h, kData);
  CHECK(connectionBind(data, id).code() == 400);
}

TEST_CASE("A ConnectionBind for another worker's connection moves there unanswered") {
  TurnHarness h;
  TestClient data(h, kData);
  const core::ConnectionId foreign = (core::ConnectionId{3} << 24) | 0x123456;
  const auto request = data.build(Method::kConnectionBind, [&](wire::MessageBuilder& b) {
    b.add(wire::attr::ConnectionId{foreign});
  });
  const std::size_t sent = h.output.sent.size();
  h.fromClient(kData, test::bytesOf(request));
  CHECK(h.output.sent.size() == sent);
  REQUIRE(h.output.transfers.size() == 1);
  CHECK(h.output.transfers[0].owner == 3);
  CHECK(h.output.transfers[0].client == kData);
  CHECK(h.output.transfers[0].request == request);
}

TEST_CASE("A ConnectionBind naming a worker that does not exist gets 400") {
  TurnHarness h;
  h.output.workers = 2;
  TestClient data(h, kData);
  CHECK(connectionBind(data, (core::ConnectionId{9} << 24) | 0x123456).code() == 400);
  CHECK(h.output.transfers.empty());
}

// --- Connections from peers ------------------------------------------------------------------

TEST_CASE("A peer connection with a permission is announced in a ConnectionAttempt (RFC 6062 §5.3)") {
  TurnHarness h;
  TcpAllocation a(h);
  REQUIRE(a.control.createPermission({kPeer}).success());
  const std::size_t sent = h.output.sent.size();
  const auto id = h.server.onPeerConnection(a.control.relay(), kPeer, h.now);
  REQUIRE(id.has_value());
  REQUIRE(h.output.sent.size() == sent + 1);
  const Reply indication = lastReplyTo(h, kControl);
  CHECK(indication.view().messageClass() == wire::MessageClass::kIndication);
  CHECK(indication.view().method() == static_cast<std::uint16_t>(Method::kConnectionAttempt));
  CHECK(indication.view().fingerprintMatches());
  const auto peer = indication.get<wire::attr::XorPeerAddress>();
  REQUIRE(peer.has_value());
  CHECK(peer->address == kPeer);
  const auto cid = indication.get<wire::attr::ConnectionId>();
  REQUIRE(cid.has_value());
  CHECK(cid->id == *id);
  TestClient data(h, kData);
  CHECK(connectionBind(data, *id).success());
}

TEST_CASE("A peer connection without a permission is refused (RFC 6062 §5.3)") {
  TurnHarness h;
  TcpAllocation a(h);
  const std::size_t sent = h.output.sent.size();
  CHECK_FALSE(h.server.onPeerConnection(a.control.relay(), kPeer, h.now).has_value());
  CHECK(h.output.sent.size() == sent);
  CHECK(h.dropped(metrics::DropReason::kNoPermission) == 1);
  // A permission expires after 300 s; so does the peer's right to connect.
  REQUIRE(a.control.createPermission({kPeer}).success());
  CHECK(h.server.onPeerConnection(a.control.relay(), kPeer, h.now).has_value());
  h.advance(std::chrono::seconds(301));
  CHECK_FALSE(h.server.onPeerConnection(a.control.relay(), wire::SocketAddress{kPeer.ip, 5001}, h.now).has_value());
}

TEST_CASE("A peer connection to a UDP allocation's relay is refused") {
  TurnHarness h;
  TestClient c(h, kControl);
  c.mustAllocate();
  REQUIRE(c.createPermission({kPeer}).success());
  CHECK_FALSE(h.server.onPeerConnection(c.relay(), kPeer, h.now).has_value());
}

// --- Lifetimes -------------------------------------------------------------------------------

TEST_CASE("Deleting a TCP allocation closes its connections") {
  TurnHarness h;
  TcpAllocation a(h);
  const core::ConnectionId first = connected(h, a.control, kPeer);
  const core::ConnectionId second = startConnect(h, a.control, kOtherPeer);
  REQUIRE(a.control.refresh(0).success());
  CHECK(h.output.closed_connections == std::vector<core::ConnectionId>{first, second});
  CHECK(h.server.connectionCount() == 0);
  CHECK(h.output.closed_relays.size() == 1);
}

TEST_CASE("The allocation of a TCP connection ends when the connection closes") {
  TurnHarness h;
  TcpAllocation a(h);
  const core::ConnectionId id = connected(h, a.control, kPeer);
  h.server.onClientClosed(kData, h.now);  // not the control connection: nothing happens
  CHECK(h.server.allocationCount() == 1);
  h.server.onClientClosed(kControl, h.now);
  CHECK(h.server.allocationCount() == 0);
  CHECK(h.ended(metrics::AllocationEnd::kConnectionClosed) == 1);
  CHECK(h.output.closed_connections == std::vector<core::ConnectionId>{id});
}

TEST_CASE("ChannelBind and Send do not apply to a TCP allocation (RFC 6062 §4)") {
  TurnHarness h;
  TcpAllocation a(h);
  REQUIRE(a.control.createPermission({kPeer}).success());
  CHECK(a.control.channelBind(0x4000, kPeer).code() == 400);
  a.control.sendIndication(kPeer, test::payloadOf(8));
  CHECK(h.output.to_peers.empty());
  CHECK(h.dropped(metrics::DropReason::kNoAllocation) == 1);
}
