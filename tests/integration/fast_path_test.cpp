// The eBPF fast path (issue 21) in a lab of namespaces (fast_path_topology.hpp): a client,
// tern in the relay namespace, a peer. Real clients (coturn's turnutils_uclient,
// python3-aioice) and our own relay through it with the fast path off and on; with it on,
// the kernel must carry most of the ChannelData, byte-exact and with checksums the
// receivers accept (odd lengths, with and without padding, RFC 8656 §12.5), hand what it
// cannot fit under the MTU to user space, stop at a permission's expiry (RFC 8656 §9), keep
// peers without a permission out (RFC 8656 §9), and leave nothing behind when tern is killed.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "fast_path_topology.hpp"
#include "relay/client/turn_session.hpp"
#include "support/process.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/turn_test_client.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::Family;
using test::FastPathTopology;
using test::LabSocket;
using test::NetworkNamespace;
using test::TurnTestClient;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::uint16_t kPeerPort = 5000;
constexpr std::uint16_t kChannel = 0x4001;
constexpr auto kSuccess = TurnTestClient::Outcome::kSuccess;

// coturn's echo peer in the peer namespace, stopped by PID when this goes away.
std::unique_ptr<test::ChildProcess> echoPeer(const FastPathTopology& lab, const std::string& ip) {
  auto peer = std::make_unique<test::ChildProcess>(
      lab.peer.command({"/usr/bin/turnutils_peer", "-L", ip, "-p", std::to_string(kPeerPort)}));
  std::this_thread::sleep_for(300ms);  // it prints nothing when ready; give it a moment to bind
  return peer;
}

// Waits up to 3 s for `done` (the program's counters may reach the metrics a moment late).
bool eventually(const std::function<bool()>& done) {
  for (const auto give_up = Clock::now() + 3s; Clock::now() < give_up;
       std::this_thread::sleep_for(100ms)) {
    if (done()) return true;
  }
  return done();
}

// turnutils_uclient in the client namespace: two sessions of 200 160-byte messages each over
// channels (no -s), echoed by the peer; -c: one allocation per session, no RTCP pair.
void uclientThroughLab(Family family, bool fast_path) {
  FastPathTopology lab;
  auto tern = lab.startTern(fast_path);
  const auto& a = test::labAddresses(family);
  const auto peer = echoPeer(lab, a.peer);
  std::vector<std::string> argv{"/usr/bin/turnutils_uclient",
                                "-u",
                                test::kLabUser,
                                "-w",
                                test::kLabPassword,
                                "-e",
                                a.peer,
                                "-r",
                                std::to_string(kPeerPort),
                                "-p",
                                std::to_string(test::kTurnPort),
                                "-c",
                                "-n",
                                "200",
                                "-m",
                                "2",
                                "-l",
                                "160",
                                "-z",
                                "5"};
  if (family == Family::kIpv6) argv.emplace_back("-x");  // an IPv6 relayed address (RFC 6156)
  argv.push_back(a.relay_client);
  const auto report =
      test::parseUclientReport(test::runCommand(lab.client.command(argv), 60s).output);
  INFO(report.output);
  CHECK(report.lost == 0);
  CHECK(report.sent == 400);
  CHECK(report.received == 400);
  // Each message crossed tern twice: to the peer and back.
  CHECK(eventually([&] { return lab.relayedPackets(*tern, "", "") >= 800; }));
  const auto all = lab.settledRelayedPackets(*tern, "", ""),
             kernel = lab.relayedPackets(*tern, "", "kernel");
  CAPTURE(all);
  CAPTURE(kernel);
  const auto misses = lab.metricSum(*tern, "tern_fastpath_misses_total");
  const auto fallbacks = lab.metricSum(*tern, "tern_fastpath_fallbacks_total");
  const auto to_peer = lab.relayedPackets(*tern, "client_to_peer", "kernel");
  CAPTURE(misses);
  CAPTURE(fallbacks);
  CAPTURE(to_peer);
  if (fast_path) {
    CHECK(kernel > 0);
    CHECK(kernel * 2 > all);  // most of it: all but the first packets of each binding
  } else {
    CHECK(kernel == 0);
  }
  CHECK(tern->process().stop(SIGTERM) == 0);
}

// Our TURN client over UDP in the client namespace, with an allocation of `family`.
std::unique_ptr<TurnTestClient> allocatedClient(const FastPathTopology& lab, Family family) {
  const auto& a = test::labAddresses(family);
  std::unique_ptr<TurnTestClient> c;
  {
    NetworkNamespace::Inside inside(lab.client);
    c = std::make_unique<TurnTestClient>(test::socketAddress(a.client, 0),
                                         test::socketAddress(a.relay_client, test::kTurnPort),
                                         test::kLabUser, test::kLabPassword, false);
  }
  client::TurnSession::AllocateOptions options;
  options.address_family = a.requested_family;
  REQUIRE(c->transact([&] { return c->session.allocate(options); }) == kSuccess);
  REQUIRE(c->session.relayed().has_value());
  CHECK(c->session.relayed()->ip.toString() == a.relay_peer);
  return c;
}

void bindChannel(TurnTestClient& c, const wire::SocketAddress& peer) {
  REQUIRE(c.transact([&] { return c.session.channelBind(kChannel, peer); }) == kSuccess);
}

// ChannelData of `payload` on kChannel; with `pad`, followed by the padding to 4 bytes that
// RFC 8656 §12.5 lets a UDP sender add, as 0xA5 bytes (their value means nothing).
std::vector<std::uint8_t> channelData(const std::vector<std::uint8_t>& payload, bool pad) {
  std::vector<std::uint8_t> out{static_cast<std::uint8_t>(kChannel >> 8),
                                static_cast<std::uint8_t>(kChannel & 0xFF),
                                static_cast<std::uint8_t>(payload.size() >> 8),
                                static_cast<std::uint8_t>(payload.size() & 0xFF)};
  out.insert(out.end(), payload.begin(), payload.end());
  while (pad && out.size() % 4 != 0) out.push_back(0xA5);
  return out;
}

// The next ChannelData at the client within `timeout` must carry `payload` on kChannel: its
// length field says the payload's length and the datagram holds no more than its padding.
void expectChannelData(const TurnTestClient& c, const std::vector<std::uint8_t>& payload,
                       std::chrono::milliseconds timeout = 1000ms) {
  const auto bytes = test::receiveDatagram(c.fd.get(), timeout);
  REQUIRE(bytes.size() >= 4);
  CHECK(((bytes[0] << 8) | bytes[1]) == kChannel);
  CHECK(static_cast<std::size_t>((bytes[2] << 8) | bytes[3]) == payload.size());
  const std::size_t padded = (payload.size() + 3) & ~std::size_t{3};
  CHECK((bytes.size() == 4 + payload.size() || bytes.size() == 4 + padded));
  REQUIRE(bytes.size() >= 4 + payload.size());
  CHECK(std::vector<std::uint8_t>(
            bytes.begin() + 4, bytes.begin() + 4 + static_cast<long>(payload.size())) == payload);
}

// One datagram each way through the channel, so every neighbour entry on the way is
// resolved before the counting starts (the program hands a packet with none to user space).
void warmUp(const TurnTestClient& c, const LabSocket& peer) {
  const auto relayed = *c.session.relayed();
  const auto hello = test::patternPayload(0xFFFF, 20);
  test::sendRaw(c.fd.get(), channelData(hello, false));
  const auto got = peer.receive(2000ms);
  REQUIRE(got.has_value());
  CHECK(got->bytes == hello);
  peer.sendTo(relayed, hello);
  expectChannelData(c, hello, 2000ms);
}

// Payloads of 1 to 9 bytes and two larger ones, all with 1 to 3 bytes of padding or none,
// both ways through a bound channel; every byte and length arrives as sent, the receivers'
// UDP stacks find no bad checksum, and the kernel path carried each one.
void oddLengthsBothWays(const FastPathTopology& lab, const test::TernServer& tern, Family family) {
  const auto& a = test::labAddresses(family);
  LabSocket peer(lab.peer, a.peer, kPeerPort);
  auto c = allocatedClient(lab, family);
  const auto relayed = *c->session.relayed();
  bindChannel(*c, peer.local());
  warmUp(*c, peer);
  const auto to_peer = lab.settledRelayedPackets(tern, "client_to_peer", "kernel");
  const auto to_client = lab.settledRelayedPackets(tern, "peer_to_client", "kernel");
  std::uint64_t sent_to_peer = 0, sent_to_client = 0;
  std::uint32_t seed = 0;
  for (const std::size_t size : {1u, 2u, 3u, 4u, 5u, 6u, 7u, 8u, 9u, 161u, 1201u}) {
    CAPTURE(size);
    for (const bool pad : {false, true}) {
      CAPTURE(pad);
      const auto payload = test::patternPayload(++seed, size);
      test::sendRaw(c->fd.get(), channelData(payload, pad));
      ++sent_to_peer;
      const auto got = peer.receive(1000ms);
      REQUIRE(got.has_value());
      CHECK(got->bytes == payload);  // the padding is not the peer's
      CHECK(got->from == relayed);
    }
    const auto payload = test::patternPayload(++seed, size);
    peer.sendTo(relayed, payload);
    ++sent_to_client;
    expectChannelData(*c, payload);
  }
  CHECK(eventually([&] {
    return lab.relayedPackets(tern, "client_to_peer", "kernel") - to_peer >= sent_to_peer &&
           lab.relayedPackets(tern, "peer_to_client", "kernel") - to_client >= sent_to_client;
  }));
  CHECK(lab.relayedPackets(tern, "client_to_peer", "kernel") - to_peer == sent_to_peer);
  CHECK(lab.relayedPackets(tern, "peer_to_client", "kernel") - to_client == sent_to_client);
}

void checkNoChecksumErrors(const FastPathTopology& lab) {
  for (const auto* ns : {&lab.client, &lab.peer}) {
    CAPTURE(ns->name());
    const auto errors = test::udpChecksumErrors(*ns);
    CHECK(errors.udp == 0);
    CHECK(errors.udp6 == 0);
  }
}

}  // namespace

TEST_CASE(
    "the fast path's lab joins client and peer only through tern: the relay namespace routes "
    "nothing across") {
  FastPathTopology lab;
  const auto& a = test::labAddresses(Family::kIpv4);
  // Routes across, as a careless lab would have: the relay namespace forwards (the program's
  // bpf_fib_lookup needs that), so only its FORWARD chain's DROP policy stands in the way.
  lab.client.ip({"route", "add", "198.51.100.0/24", "via", a.relay_client});
  lab.peer.ip({"route", "add", "192.0.2.0/24", "via", a.relay_peer});
  LabSocket client(lab.client, a.client), peer(lab.peer, a.peer, kPeerPort);
  for (std::uint32_t n = 0; n < 5; ++n) client.sendTo(peer.local(), test::patternPayload(n, 100));
  CHECK_FALSE(peer.receive(1000ms).has_value());
  const auto chain = lab.relay.run({"/usr/sbin/iptables", "-nvxL", "FORWARD"});
  INFO(chain);
  CHECK(chain.find("policy DROP 5 packets") != std::string::npos);
}

TEST_CASE(
    "fast path off: turnutils_uclient relays channels over IPv4 from the client namespace with "
    "zero loss") {
  uclientThroughLab(Family::kIpv4, false);
}

TEST_CASE(
    "fast path on: turnutils_uclient relays channels over IPv4 with zero loss, mostly in the "
    "kernel") {
  uclientThroughLab(Family::kIpv4, true);
}

TEST_CASE(
    "fast path off: turnutils_uclient relays channels over IPv6 from the client namespace with "
    "zero loss") {
  uclientThroughLab(Family::kIpv6, false);
}

TEST_CASE(
    "fast path on: turnutils_uclient relays channels over IPv6 with zero loss, mostly in the "
    "kernel") {
  uclientThroughLab(Family::kIpv6, true);
}

TEST_CASE(
    "fast path on: python3-aioice relays datagrams byte-identical through a channel to a peer "
    "namespace") {
  FastPathTopology lab;
  auto tern = lab.startTern(true);
  const auto& a = test::labAddresses(Family::kIpv4);
  const auto peer = echoPeer(lab, a.peer);
  // Twenty datagrams, all under the 1500-byte MTU with their headers.
  std::string sizes = "1";
  for (const char* size :
       {"2", "3", "7", "100", "160", "161", "500", "1000", "1200", "1201", "1400"}) {
    sizes.append(",").append(size);
  }
  sizes += ",5,9,13,333,777,1111,1399,1";
  const auto result = test::runCommand(
      lab.client.command({"/usr/bin/python3", TERN_CLIENTS_DIR "/aioice_echo.py", "--server",
                          a.relay_client + ":" + std::to_string(test::kTurnPort), "--username",
                          test::kLabUser, "--password", test::kLabPassword, "--peer",
                          a.peer + ":" + std::to_string(kPeerPort), "--sizes", sizes}),
      60s);
  INFO(result.output);
  CHECK(result.status == 0);
  CHECK(result.output.find("\"intact\": 20") != std::string::npos);
  CHECK(eventually([&] { return lab.relayedPackets(*tern, "", "kernel") > 0; }));
  CHECK(tern->process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "fast path on: ChannelData of odd lengths, padded or not, arrives byte-exact with valid "
    "checksums") {
  FastPathTopology lab;
  auto tern = lab.startTern(true);
  SUBCASE("IPv4") { oddLengthsBothWays(lab, *tern, Family::kIpv4); }
  SUBCASE("IPv6") { oddLengthsBothWays(lab, *tern, Family::kIpv6); }
  checkNoChecksumErrors(lab);
  CHECK(tern->process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "fast path on: a peer datagram whose ChannelData exceeds the client side's MTU goes by user "
    "space") {
  FastPathTopology lab;
  // IPv4: 20 + 8 bytes of headers and 4 of ChannelData's, so a 1248-byte payload fills 1280.
  lab.setRelayClientMtu(1280);
  auto tern = lab.startTern(true);
  const auto& a = test::labAddresses(Family::kIpv4);
  LabSocket peer(lab.peer, a.peer, kPeerPort);
  auto c = allocatedClient(lab, Family::kIpv4);
  const auto relayed = *c->session.relayed();
  bindChannel(*c, peer.local());
  warmUp(*c, peer);
  const auto kernel = lab.settledRelayedPackets(*tern, "peer_to_client", "kernel");
  const auto mtu = lab.metricSum(*tern, "tern_fastpath_fallbacks_total", {{"reason", "mtu"}});
  std::uint32_t seed = 100;
  // Two that fit (the kernel's) and four 1 to 4 bytes too long (user space's: it fragments).
  for (const std::size_t size : {1000u, 1249u, 1248u, 1250u, 1251u, 1252u}) {
    CAPTURE(size);
    const auto payload = test::patternPayload(++seed, size);
    peer.sendTo(relayed, payload);
    expectChannelData(*c, payload);
  }
  CHECK(eventually([&] {
    return lab.relayedPackets(*tern, "peer_to_client", "kernel") - kernel >= 2 &&
           lab.metricSum(*tern, "tern_fastpath_fallbacks_total", {{"reason", "mtu"}}) - mtu >= 4;
  }));
  CHECK(lab.relayedPackets(*tern, "peer_to_client", "kernel") - kernel == 2);
  CHECK(lab.metricSum(*tern, "tern_fastpath_fallbacks_total", {{"reason", "mtu"}}) - mtu == 4);
  checkNoChecksumErrors(lab);
  CHECK(tern->process().stop(SIGTERM) == 0);
}

TEST_CASE("fast path on: a permission's expiry stops kernel forwarding within a second") {
  FastPathTopology lab;
  // The channel outlives the permission: only the permission's expiry may stop the data.
  constexpr auto kPermission = 3s;
  auto tern = lab.startTern(true, {"--permission-lifetime", "3", "--channel-lifetime", "60"});
  const auto& a = test::labAddresses(Family::kIpv4);
  LabSocket peer(lab.peer, a.peer, kPeerPort);
  auto c = allocatedClient(lab, Family::kIpv4);
  const auto relayed = *c->session.relayed();
  const auto asked = Clock::now();
  bindChannel(*c, peer.local());  // installs the permission (RFC 8656 §12.2)
  const auto answered = Clock::now();
  warmUp(*c, peer);
  const auto kernel = lab.relayedPackets(*tern, "client_to_peer", "kernel");
  // 5.5 s of one datagram each way every 50 ms, numbered; what arrives is noted by number.
  std::map<std::uint32_t, Clock::time_point> sent_at;
  std::vector<std::uint32_t> at_peer, at_client;
  auto numbered = [](std::uint32_t n) {
    auto p = test::patternPayload(n, 40);
    p[0] = static_cast<std::uint8_t>(n >> 8);
    p[1] = static_cast<std::uint8_t>(n & 0xFF);
    return p;
  };
  auto number = [](const std::vector<std::uint8_t>& bytes, std::size_t at) {
    return static_cast<std::uint32_t>((bytes.at(at) << 8) | bytes.at(at + 1));
  };
  for (std::uint32_t n = 1; Clock::now() < answered + 5500ms; ++n) {
    sent_at[n] = Clock::now();
    test::sendRaw(c->fd.get(), channelData(numbered(n), false));
    peer.sendTo(relayed, numbered(n));
    for (const auto until = Clock::now() + 50ms; Clock::now() < until;) {
      if (auto d = peer.receive(5ms)) at_peer.push_back(number(d->bytes, 0));
      const auto bytes = test::receiveDatagram(c->fd.get(), 0ms);
      if (bytes.size() >= 6) at_client.push_back(number(bytes, 4));
    }
  }
  // Sent well before the expiry: arrived, the client's by the kernel. Sent a second or more
  // after it: nothing, either way.
  for (const auto* arrived : {&at_peer, &at_client}) {
    std::size_t early = 0, late = 0;
    for (const auto n : *arrived) {
      if (sent_at.at(n) < asked + kPermission - 500ms) ++early;
      if (sent_at.at(n) > answered + kPermission + 1s) ++late;
    }
    CAPTURE(arrived->size());
    CHECK(early >= 30);
    CHECK(late == 0);
  }
  CHECK(lab.relayedPackets(*tern, "client_to_peer", "kernel") > kernel);
  CHECK(tern->process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "fast path on: a peer address without a permission reaches the client neither by the kernel "
    "nor at all") {
  FastPathTopology lab;
  auto tern = lab.startTern(true);
  const auto& a = test::labAddresses(Family::kIpv4);
  LabSocket peer(lab.peer, a.peer, kPeerPort);
  LabSocket stranger(lab.peer, a.other_peer, kPeerPort);
  auto c = allocatedClient(lab, Family::kIpv4);
  const auto relayed = *c->session.relayed();
  bindChannel(*c, peer.local());  // a permission for a.peer alone
  warmUp(*c, peer);
  const auto kernel = lab.settledRelayedPackets(*tern, "peer_to_client", "kernel");
  const auto refused =
      lab.metricSum(*tern, "tern_dropped_packets_total", {{"reason", "no_permission"}});
  for (std::uint32_t n = 0; n < 10; ++n) stranger.sendTo(relayed, test::patternPayload(n, 100));
  CHECK(test::receiveDatagram(c->fd.get(), 1000ms).empty());
  // User space saw and refused them all; the kernel passed none.
  CHECK(eventually([&] {
    return lab.metricSum(*tern, "tern_dropped_packets_total", {{"reason", "no_permission"}}) -
               refused >=
           10;
  }));
  CHECK(lab.relayedPackets(*tern, "peer_to_client", "kernel") == kernel);
  // The control: the permitted peer's datagrams do go by the kernel meanwhile.
  for (std::uint32_t n = 0; n < 10; ++n) {
    const auto payload = test::patternPayload(50 + n, 100);
    peer.sendTo(relayed, payload);
    expectChannelData(*c, payload);
  }
  CHECK(eventually(
      [&] { return lab.relayedPackets(*tern, "peer_to_client", "kernel") - kernel >= 10; }));
  CHECK(tern->process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "fast path on: tern killed with SIGKILL leaves no program attached and nothing forwarding") {
  FastPathTopology lab;
  auto tern = lab.startTern(true);
  const auto& a = test::labAddresses(Family::kIpv4);
  LabSocket peer(lab.peer, a.peer, kPeerPort);
  auto c = allocatedClient(lab, Family::kIpv4);
  bindChannel(*c, peer.local());
  warmUp(*c, peer);
  const auto kernel = lab.settledRelayedPackets(*tern, "client_to_peer", "kernel");
  for (std::uint32_t n = 0; n < 10; ++n) {
    const auto payload = test::patternPayload(n, 100);
    test::sendRaw(c->fd.get(), channelData(payload, false));
    const auto got = peer.receive(1000ms);
    REQUIRE(got.has_value());
    CHECK(got->bytes == payload);
  }
  CHECK(eventually(
      [&] { return lab.relayedPackets(*tern, "client_to_peer", "kernel") - kernel >= 10; }));
  CHECK(lab.tcxIngressPrograms(FastPathTopology::kRelayClientIf) +
            lab.tcxIngressPrograms(FastPathTopology::kRelayPeerIf) >
        0);

  CHECK(tern->process().stop(SIGKILL) != -1);
  // The program is gone with the last reference to its links, the process's descriptors.
  CHECK(eventually([&] {
    return lab.tcxIngressPrograms(FastPathTopology::kRelayClientIf) +
               lab.tcxIngressPrograms(FastPathTopology::kRelayPeerIf) ==
           0;
  }));
  for (const char* interface : {FastPathTopology::kRelayClientIf, FastPathTopology::kRelayPeerIf}) {
    CAPTURE(interface);
    // Nor a classic tc filter (cls_bpf on a clsact qdisc) in its place.
    CHECK(lab.relay.run({"/usr/sbin/tc", "filter", "show", "dev", interface, "ingress"}).empty());
  }
  const auto listing = lab.relay.run({"/usr/sbin/bpftool", "net", "show"});
  INFO(listing);
  CHECK(listing.find("id ") == std::string::npos);
  for (std::uint32_t n = 0; n < 20; ++n) {
    // Nothing listens at tern's address any more: the ICMP errors it draws fail later sends.
    const auto bytes = channelData(test::patternPayload(n, 100), false);
    (void)::send(c->fd.get(), bytes.data(), bytes.size(), MSG_NOSIGNAL);
  }
  CHECK_FALSE(peer.receive(1000ms).has_value());
}
