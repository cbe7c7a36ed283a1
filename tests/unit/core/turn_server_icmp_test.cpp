// TurnServer's handling of ICMP errors about datagrams a relay socket sent (RFC 8656 §11.5):
// a Data indication with XOR-PEER-ADDRESS and ICMP (RFC 8656 §18.13) to a client with a
// permission for the peer, over the client's transport; everything else dropped and counted.
#include <doctest/doctest.h>

#include "support/turn_harness.hpp"

using namespace tern;
using test::TestClient;
using test::TurnHarness;
using wire::AttributeType;
using wire::MessageClass;
using wire::Method;

namespace {

const core::FiveTuple kTuple = test::udpTuple("192.0.2.7:40000");
const core::FiveTuple kTcpTuple = test::tcpTuple("192.0.2.7:40000");
const wire::SocketAddress kPeer = test::socketAddress("8.8.8.8:5000");
const wire::SocketAddress kPeerV6 = test::socketAddress("[2606:4700::1111]:8000");

// ICMPv4 (RFC 792, RFC 1191) and ICMPv6 (RFC 4443) numbers the tests use.
constexpr std::uint8_t kV4Unreachable = 3, kV4PortUnreachable = 3, kV4FragmentationNeeded = 4;
constexpr std::uint8_t kV4Redirect = 5, kV4TimeExceeded = 11, kV4ParameterProblem = 12;
constexpr std::uint8_t kV6Unreachable = 1, kV6PortUnreachable = 4, kV6PacketTooBig = 2;
constexpr std::uint8_t kV6TimeExceeded = 3, kV6ParameterProblem = 4, kV6EchoRequest = 128;

std::uint64_t icmpIndications(const TurnHarness& h) { return h.counters.icmp_indications.get(); }

// Checks that `bytes` is a Data indication about `peer` carrying exactly this ICMP attribute.
void checkIcmpIndication(const std::vector<std::uint8_t>& bytes, const wire::SocketAddress& peer,
                         std::uint8_t type, std::uint8_t code, std::uint32_t error_data) {
  auto view = wire::MessageView::parse(bytes);
  REQUIRE(view.has_value());
  CHECK(view->method() == static_cast<std::uint16_t>(Method::kData));
  CHECK(view->messageClass() == MessageClass::kIndication);
  CHECK(bytes.size() % 4 == 0);
  auto from = view->get<wire::attr::XorPeerAddress>();
  REQUIRE(from.has_value());
  CHECK(from->address == peer);
  auto icmp = view->get<wire::attr::Icmp>();
  REQUIRE(icmp.has_value());
  CHECK(icmp->type == type);
  CHECK(icmp->code == code);
  CHECK(icmp->error_data == error_data);
  // RFC 8656 §11.5: XOR-PEER-ADDRESS and ICMP; there is no application data to carry.
  CHECK_FALSE(view->has(AttributeType::kData));
  CHECK_FALSE(view->has(AttributeType::kMessageIntegrity));
}

// A client over `tuple` with an allocation (IPv6 relayed address if `v6`) and a permission
// for `peer`.
void allocateWithPermission(TurnHarness& h, TestClient& c, const wire::SocketAddress& peer,
                            bool v6 = false) {
  client::TurnSession::AllocateOptions options;
  if (v6) {
    h.output.ipv6 = true;
    options.address_family = 0x02;
  }
  c.mustAllocate(options);
  REQUIRE(c.createPermission({peer}).success());
}

}  // namespace

TEST_CASE(
    "ICMP port unreachable from a permitted peer reaches the client in a Data indication (RFC 8656 "
    "§11.5)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  allocateWithPermission(h, c, kPeer);
  const std::size_t before = c.received().size();
  h.server.onPeerIcmp(c.relay(), kPeer, kV4Unreachable, kV4PortUnreachable, 0, h.now);
  REQUIRE(c.received().size() == before + 1);
  checkIcmpIndication(c.received().back(), kPeer, kV4Unreachable, kV4PortUnreachable, 0);
  CHECK(icmpIndications(h) == 1);
  // Not application data: the relayed counters stay as they were.
  CHECK(h.relayedPackets(metrics::Direction::kPeerToClient) == 0);
}

TEST_CASE("an ICMP error goes to a TCP client as one whole Data indication (RFC 8656 §11.5)") {
  TurnHarness h;
  TestClient c(h, kTcpTuple);
  allocateWithPermission(h, c, kPeer);
  h.server.onPeerIcmp(c.relay(), kPeer, kV4TimeExceeded, 0, 0, h.now);
  REQUIRE(h.output.sent.back().tuple == kTcpTuple);
  checkIcmpIndication(h.output.sent.back().bytes, kPeer, kV4TimeExceeded, 0, 0);
  CHECK(icmpIndications(h) == 1);
}

TEST_CASE(
    "an ICMP error is a Data indication even when a channel is bound to the peer (RFC 8656 "
    "§11.5)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  allocateWithPermission(h, c, kPeer);
  REQUIRE(c.channelBind(0x4000, kPeer).success());
  h.server.onPeerIcmp(c.relay(), kPeer, kV4Unreachable, kV4PortUnreachable, 0, h.now);
  checkIcmpIndication(c.received().back(), kPeer, kV4Unreachable, kV4PortUnreachable, 0);
}

TEST_CASE("the permission is checked against the peer's IP only, not its port (RFC 8656 §11.5)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  allocateWithPermission(h, c, kPeer);
  const auto other_port = test::socketAddress("8.8.8.8:9999");
  h.server.onPeerIcmp(c.relay(), other_port, kV4Unreachable, kV4PortUnreachable, 0, h.now);
  checkIcmpIndication(c.received().back(), other_port, kV4Unreachable, kV4PortUnreachable, 0);
}

TEST_CASE(
    "a kernel that cannot name the peer's port reports port 0, passed on as it is (RFC 8656 "
    "§11.5)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  allocateWithPermission(h, c, kPeer);
  const auto no_port = test::socketAddress("8.8.8.8:0");
  h.server.onPeerIcmp(c.relay(), no_port, kV4Unreachable, 1, 0, h.now);
  checkIcmpIndication(c.received().back(), no_port, kV4Unreachable, 1, 0);
}

TEST_CASE(
    "an ICMP error about a peer without permission is dropped silently and counted (RFC 8656 "
    "§11.5)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  allocateWithPermission(h, c, kPeer);
  const std::size_t before = c.received().size();
  h.server.onPeerIcmp(c.relay(), test::socketAddress("1.1.1.1:5000"), kV4Unreachable,
                      kV4PortUnreachable, 0, h.now);
  CHECK(c.received().size() == before);
  CHECK(h.dropped(metrics::DropReason::kNoPermission) == 1);
  CHECK(icmpIndications(h) == 0);
}

TEST_CASE("an ICMP error after the permission expired is dropped (RFC 8656 §9, §11.5)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  allocateWithPermission(h, c, kPeer);
  REQUIRE(c.refresh(3600).success());
  h.advance(std::chrono::seconds(301));  // RFC 8656 §9: permissions last 300 s
  const std::size_t before = c.received().size();
  h.server.onPeerIcmp(c.relay(), kPeer, kV4Unreachable, kV4PortUnreachable, 0, h.now);
  CHECK(c.received().size() == before);
  CHECK(h.dropped(metrics::DropReason::kNoPermission) == 1);
}

TEST_CASE("an ICMP error on a relay socket without an allocation is dropped and counted") {
  TurnHarness h;
  h.server.onPeerIcmp(7, kPeer, kV4Unreachable, kV4PortUnreachable, 0, h.now);
  CHECK(h.output.sent.empty());
  CHECK(h.dropped(metrics::DropReason::kNoAllocation) == 1);
}

TEST_CASE("only ICMPv4 types 3 and 11 are passed on (RFC 8656 §11.5)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  allocateWithPermission(h, c, kPeer);
  const std::size_t before = c.received().size();
  for (std::uint8_t type : {std::uint8_t{0}, std::uint8_t{4}, kV4Redirect, std::uint8_t{8},
                            kV4ParameterProblem, std::uint8_t{1}, std::uint8_t{2}}) {
    h.server.onPeerIcmp(c.relay(), kPeer, type, 0, 0, h.now);
  }
  CHECK(c.received().size() == before);
  CHECK(h.dropped(metrics::DropReason::kIcmpIgnored) == 7);
  h.server.onPeerIcmp(c.relay(), kPeer, kV4Unreachable, 1, 0, h.now);
  h.server.onPeerIcmp(c.relay(), kPeer, kV4TimeExceeded, 1, 0, h.now);
  CHECK(c.received().size() == before + 2);
  CHECK(icmpIndications(h) == 2);
}

TEST_CASE("only ICMPv6 types 1, 2 and 3 are passed on (RFC 8656 §11.5)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  allocateWithPermission(h, c, kPeerV6, true);
  const std::size_t before = c.received().size();
  for (std::uint8_t type :
       {std::uint8_t{0}, kV6ParameterProblem, kV6EchoRequest, std::uint8_t{11}}) {
    h.server.onPeerIcmp(c.relay(), kPeerV6, type, 0, 0, h.now);
  }
  CHECK(c.received().size() == before);
  CHECK(h.dropped(metrics::DropReason::kIcmpIgnored) == 4);
  h.server.onPeerIcmp(c.relay(), kPeerV6, kV6Unreachable, kV6PortUnreachable, 0, h.now);
  checkIcmpIndication(c.received().back(), kPeerV6, kV6Unreachable, kV6PortUnreachable, 0);
  h.server.onPeerIcmp(c.relay(), kPeerV6, kV6TimeExceeded, 0, 0, h.now);
  checkIcmpIndication(c.received().back(), kPeerV6, kV6TimeExceeded, 0, 0);
  CHECK(icmpIndications(h) == 2);
}

TEST_CASE(
    "Error Data is the next-hop MTU for ICMPv4 3/4 and ICMPv6 2, else zero (RFC 8656 §18.13)") {
  SUBCASE("ICMPv4 fragmentation needed and DF set carries the MTU") {
    TurnHarness h;
    TestClient c(h, kTuple);
    allocateWithPermission(h, c, kPeer);
    h.server.onPeerIcmp(c.relay(), kPeer, kV4Unreachable, kV4FragmentationNeeded, 1280, h.now);
    checkIcmpIndication(c.received().back(), kPeer, kV4Unreachable, kV4FragmentationNeeded, 1280);
    // Whatever else the kernel reported with another code is not passed on.
    h.server.onPeerIcmp(c.relay(), kPeer, kV4Unreachable, kV4PortUnreachable, 1280, h.now);
    checkIcmpIndication(c.received().back(), kPeer, kV4Unreachable, kV4PortUnreachable, 0);
    h.server.onPeerIcmp(c.relay(), kPeer, kV4TimeExceeded, 0, 1280, h.now);
    checkIcmpIndication(c.received().back(), kPeer, kV4TimeExceeded, 0, 0);
  }
  SUBCASE("ICMPv6 packet too big carries the MTU") {
    TurnHarness h;
    TestClient c(h, kTuple);
    allocateWithPermission(h, c, kPeerV6, true);
    h.server.onPeerIcmp(c.relay(), kPeerV6, kV6PacketTooBig, 0, 1280, h.now);
    checkIcmpIndication(c.received().back(), kPeerV6, kV6PacketTooBig, 0, 1280);
    // ICMPv6 type 1 code 4 is port unreachable, not "fragmentation needed".
    h.server.onPeerIcmp(c.relay(), kPeerV6, kV6Unreachable, 4, 1280, h.now);
    checkIcmpIndication(c.received().back(), kPeerV6, kV6Unreachable, 4, 0);
  }
}

TEST_CASE("an IPv4-mapped peer in an ICMPv6 report meets the IPv4 permission (RFC 4291 §2.5.5.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  allocateWithPermission(h, c, kPeer);
  // The family says ICMPv6, so type 1 is Destination Unreachable and passes.
  h.server.onPeerIcmp(c.relay(), test::socketAddress("[::ffff:8.8.8.8]:5000"), kV6Unreachable, 4, 0,
                      h.now);
  checkIcmpIndication(c.received().back(), kPeer, kV6Unreachable, 4, 0);
}

TEST_CASE("an ICMP indication the client's transport refuses is counted as a failed send") {
  TurnHarness h;
  TestClient c(h, kTuple);
  allocateWithPermission(h, c, kPeer);
  h.output.accept = false;
  h.server.onPeerIcmp(c.relay(), kPeer, kV4Unreachable, kV4PortUnreachable, 0, h.now);
  CHECK(h.dropped(metrics::DropReason::kSendFailed) == 1);
  CHECK(icmpIndications(h) == 0);
}

TEST_CASE("data still flows to the client after an ICMP error (RFC 8656 §11.3, §11.5)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  allocateWithPermission(h, c, kPeer);
  h.server.onPeerIcmp(c.relay(), kPeer, kV4Unreachable, kV4PortUnreachable, 0, h.now);
  const auto payload = test::payloadOf(5);
  h.fromPeer(c.relay(), kPeer, test::bytesOf(payload));
  const auto bytes = c.received().back();
  auto view = wire::MessageView::parse(bytes);
  REQUIRE(view.has_value());
  auto data = view->get<wire::attr::Data>();
  REQUIRE(data.has_value());
  CHECK(std::vector<std::uint8_t>(data->value.begin(), data->value.end()) == payload);
  CHECK_FALSE(view->has(AttributeType::kIcmp));
  CHECK(h.relayedPackets(metrics::Direction::kPeerToClient) == 1);
}
