// The eBPF fast path (issue 21) keeps RFC 8656's lifetimes: a permission refreshed by
// CreatePermission (§9.2) or by ChannelBind (§12.2), and a channel refreshed by ChannelBind
// (§12.2), keep the kernel relaying past their first expiry, and it stops at the new one.
// Short lifetimes come from the hidden --permission-lifetime/--channel-lifetime. (Refresh
// lifetime 0 and a channel never rebound elsewhere: relay_cases_test.cpp's "(fast path on)".)
// ChannelData that is malformed (RFC 8656 §12.5), on an unbound channel or from a 5-tuple
// without an allocation (§12.4) goes nowhere, by either path.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "fast_path_topology.hpp"
#include "support/stun_socket.hpp"
#include "support/turn_test_client.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::Family;
using test::FastPathTopology;
using test::LabSocket;
using Clock = std::chrono::steady_clock;
using Outcome = test::TurnTestClient::Outcome;

namespace {

constexpr std::uint16_t kChannel = 0x4000;

std::vector<std::uint8_t> channelData(const std::vector<std::uint8_t>& payload) {
  std::vector<std::uint8_t> out{static_cast<std::uint8_t>(kChannel >> 8),
                                static_cast<std::uint8_t>(kChannel & 0xFF),
                                static_cast<std::uint8_t>(payload.size() >> 8),
                                static_cast<std::uint8_t>(payload.size() & 0xFF)};
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

// One datagram each way every 50 ms until `until`; how many arrived at each end.
struct Arrived {
  int sent = 0, at_peer = 0, at_client = 0;
};
Arrived exchangeUntil(const test::TurnTestClient& c, const LabSocket& peer,
                      Clock::time_point until) {
  Arrived a;
  for (std::uint32_t n = 0; Clock::now() < until; ++n) {
    const auto payload = test::patternPayload(n, 60);
    test::sendRaw(c.fd.get(), channelData(payload));
    peer.sendTo(*c.session.relayed(), payload);
    ++a.sent;
    for (const auto next = Clock::now() + 50ms; Clock::now() < next;) {
      if (peer.receive(5ms)) ++a.at_peer;
      if (!test::receiveDatagram(c.fd.get(), 0ms).empty()) ++a.at_client;
    }
  }
  return a;
}

// Our TURN client over UDP in the client namespace, with an IPv4 allocation.
std::unique_ptr<test::TurnTestClient> allocatedClient(const FastPathTopology& lab) {
  const auto& a = test::labAddresses(Family::kIpv4);
  std::unique_ptr<test::TurnTestClient> c;
  {
    test::NetworkNamespace::Inside inside(lab.client);
    c = std::make_unique<test::TurnTestClient>(test::socketAddress(a.client, 0),
                                               test::socketAddress(a.relay_client, test::kTurnPort),
                                               test::kLabUser, test::kLabPassword, false);
  }
  REQUIRE(c->transact([&] { return c->session.allocate({}); }) == Outcome::kSuccess);
  REQUIRE(c->session.relayed().has_value());
  return c;
}

enum class RefreshBy : std::uint8_t { kCreatePermission, kChannelBind };

// Lifetimes of 3 s; at 2 s the client refreshes by `by`; from 2.5 s to 4.5 s (past the first
// expiry) every datagram must arrive, and by the kernel; from 6.5 s (past the new one) none.
void refreshKeepsKernelRelaying(RefreshBy by) {
  FastPathTopology lab;
  const std::string channel_lifetime = by == RefreshBy::kChannelBind ? "3" : "60";
  auto tern =
      lab.startTern(true, {"--permission-lifetime", "3", "--channel-lifetime", channel_lifetime});
  const auto& a = test::labAddresses(Family::kIpv4);
  LabSocket peer(lab.peer, a.peer, 5000);
  auto c = allocatedClient(lab);
  const auto start = Clock::now();
  REQUIRE(c->transact([&] { return c->session.channelBind(kChannel, peer.local()); }) ==
          Outcome::kSuccess);
  // Resolves the neighbours on the way, so that the kernel takes every datagram from here.
  (void)exchangeUntil(*c, peer, Clock::now() + 200ms);
  std::this_thread::sleep_until(start + 2s);
  const wire::SocketAddress peers[] = {peer.local()};
  const auto refreshed = Clock::now();
  REQUIRE(c->transact([&] {
    return by == RefreshBy::kChannelBind ? c->session.channelBind(kChannel, peer.local())
                                         : c->session.createPermission(peers);
  }) == Outcome::kSuccess);
  std::this_thread::sleep_until(start + 2500ms);
  const auto to_peer = lab.relayedPackets(*tern, "client_to_peer", "kernel");
  const auto to_client = lab.relayedPackets(*tern, "peer_to_client", "kernel");
  const auto expired =
      lab.metricSum(*tern, "tern_fastpath_fallbacks_total", {{"reason", "expired"}});
  // Read before the 1 s tick credits what was sent before; settle only after the window.
  const auto kept = exchangeUntil(*c, peer, start + 4500ms);
  CHECK(kept.sent >= 30);
  CHECK(kept.at_peer == kept.sent);
  CHECK(kept.at_client == kept.sent);
  CHECK(lab.metricSum(*tern, "tern_fastpath_fallbacks_total", {{"reason", "expired"}}) == expired);
  std::this_thread::sleep_until(refreshed + 3500ms);
  const auto late = exchangeUntil(*c, peer, refreshed + 4500ms);
  CHECK(late.at_peer == 0);
  CHECK(late.at_client == 0);
  const auto by_kernel = lab.settledRelayedPackets(*tern, "client_to_peer", "kernel") - to_peer;
  CHECK(by_kernel == static_cast<std::uint64_t>(kept.sent));
  CHECK(lab.relayedPackets(*tern, "peer_to_client", "kernel") - to_client ==
        static_cast<std::uint64_t>(kept.sent));
  CHECK(tern->process().stop(SIGTERM) == 0);
}

}  // namespace

TEST_CASE(
    "fast path on: a permission refreshed by CreatePermission keeps the kernel relaying past its "
    "first expiry (RFC 8656 §9.2)") {
  refreshKeepsKernelRelaying(RefreshBy::kCreatePermission);
}

TEST_CASE(
    "fast path on: a channel and permission refreshed by ChannelBind keep the kernel relaying "
    "past their first expiry (RFC 8656 §12.2)") {
  refreshKeepsKernelRelaying(RefreshBy::kChannelBind);
}

TEST_CASE(
    "fast path on: ChannelData that is malformed, on an unbound channel or from another 5-tuple "
    "is relayed by neither path (RFC 8656 §12.4, §12.5)") {
  FastPathTopology lab;
  auto tern = lab.startTern(true);
  const auto& a = test::labAddresses(Family::kIpv4);
  LabSocket peer(lab.peer, a.peer, 5000);
  auto c = allocatedClient(lab);
  REQUIRE(c->transact([&] { return c->session.channelBind(kChannel, peer.local()); }) ==
          Outcome::kSuccess);
  // Resolves the neighbours on the way, so that the kernel takes the control datagram.
  const auto warm = exchangeUntil(*c, peer, Clock::now() + 200ms);
  CHECK(warm.at_peer == warm.sent);
  const auto kernel = lab.settledRelayedPackets(*tern, "client_to_peer", "kernel");
  const auto all = lab.relayedPackets(*tern, "client_to_peer", "");
  const auto payload = test::patternPayload(7, 100);
  auto longer = channelData(payload);  // its length field claims 4 bytes more than it carries
  longer[3] = static_cast<std::uint8_t>(payload.size() + 4);
  auto unbound = channelData(payload);
  unbound[0] = 0x43;
  unbound[1] = 0x21;
  std::vector<std::uint8_t> header_only{0x40, 0x00, 0x00};
  for (const auto* bytes : {&longer, &unbound, &header_only}) test::sendRaw(c->fd.get(), *bytes);
  {
    // The same client host, another port: a 5-tuple with no allocation (RFC 8656 §12.4).
    LabSocket stranger(lab.client, a.client);
    stranger.sendTo(test::socketAddress(a.relay_client, test::kTurnPort), channelData(payload));
  }
  CHECK_FALSE(peer.receive(1000ms).has_value());
  // The control: a well-formed one on the bound channel does go, by the kernel.
  test::sendRaw(c->fd.get(), channelData(payload));
  const auto got = peer.receive(1000ms);
  REQUIRE(got.has_value());
  CHECK(got->bytes == payload);
  CHECK(lab.settledRelayedPackets(*tern, "client_to_peer", "kernel") - kernel == 1);
  CHECK(lab.relayedPackets(*tern, "client_to_peer", "") - all == 1);
  CHECK(tern->process().stop(SIGTERM) == 0);
}
