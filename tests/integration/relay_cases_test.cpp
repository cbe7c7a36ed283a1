// TURN relaying over UDP (RFC 8656) checked twice (issue 21): each body runs once with tern on
// loopback, all in user space, and once in the fast path's lab with `--fast-path on`, where
// the kernel carries ChannelData ("... (fast path on)"). Real clients (coturn's
// turnutils_uclient and turnutils_peer, python3-aioice) and our own: channels and Send/Data
// indications, several clients, a peer without permission kept out, a channel refreshed and
// not rebound elsewhere (RFC 8656 §12.2), a Refresh with lifetime 0 ending the relaying at once
// (RFC 8656 §7.3), allocations moved to new ports (RFC 8016), and a --max-bps a reload applies
// to a call (user space enforces it, so the kernel must give the allocation up), and IPv6 and
// dual-stack relaying (RFC 8656 §7.2, RFC 6156). In the lab the kernel must have carried the
// channel traffic, and never Send or Data indications (they are user space's alone).
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "relay/wire/attributes.hpp"
#include "relay/wire/message.hpp"
#include "relay_site.hpp"
#include "support/stun_socket.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::Family;
using test::RelaySite;
using test::Where;
using Outcome = test::TurnTestClient::Outcome;

// Registers `body` as two test cases: tern on loopback, and tern in the lab with the fast path.
#define TERN_RELAY_CASE(name, body)           \
  TEST_CASE(name) { body(Where::kLoopback); } \
  TEST_CASE(name " (fast path on)") { body(Where::kFastPathLab); }

namespace {

constexpr std::uint16_t kChannel = 0x4000;

// turnutils_uclient from the client side, to tern's listener of `server`, against an echo
// peer of `peer`; its closing report.
test::UclientReport uclient(RelaySite& site, std::vector<std::string> flags,
                            Family server = Family::kIpv4, Family peer = Family::kIpv4) {
  const auto peer_port = site.echoPeer(peer);
  std::vector<std::string> argv{"/usr/bin/turnutils_uclient"};
  for (auto& f : site.uclientCredential()) argv.push_back(f);
  for (auto& f :
       std::vector<std::string>{"-e", site.peerHost(peer), "-r", std::to_string(peer_port), "-p",
                                std::to_string(site.server(server).port)}) {
    argv.push_back(f);
  }
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back(site.server(server).ip.toString());
  return test::parseUclientReport(site.runOnClient(argv).output);
}

void checkNoLoss(const test::UclientReport& r, long expected) {
  INFO(r.output);
  CHECK(r.lost == 0);
  CHECK(r.sent == expected);
  CHECK(r.received == expected);
}

// 50 160-byte messages for each of two clients (-m 2).
const std::vector<std::string> kCall{"-n", "50", "-l", "160", "-z", "5", "-m", "2"};

std::vector<std::string> callWith(std::vector<std::string> flags) {
  flags.insert(flags.end(), kCall.begin(), kCall.end());
  return flags;
}

// The program relays a channel only between addresses of one family; the mixed-family cases
// below (-x, -X) are user space's in the lab too, and run there for their relaying alone.
void uclientIpv6Relayed(Where where) {
  RelaySite site(where);
  // Without -c: RTP/RTCP pairs, EVEN-PORT and RESERVATION-TOKEN on IPv6 ports.
  checkNoLoss(uclient(site, callWith({"-x"}), Family::kIpv4, Family::kIpv6), 100);
  CHECK(site.tern().process().output().find("relayed=[") != std::string::npos);
  CHECK(site.tern().process().stop(SIGTERM) == 0);
}

void uclientIpv6EndToEnd(Where where) {
  RelaySite site(where);
  checkNoLoss(uclient(site, callWith({"-c"}), Family::kIpv6, Family::kIpv6), 100);
  CHECK(site.tern().process().output().find("client=[") != std::string::npos);
  if (site.fastPath()) CHECK(site.kernelPackets() > 0);
  CHECK(site.tern().process().stop(SIGTERM) == 0);
}

void uclientIpv4RelayedForIpv6Client(Where where) {
  RelaySite site(where);
  checkNoLoss(uclient(site, callWith({"-X", "-c"}), Family::kIpv6, Family::kIpv4), 100);
  CHECK(site.tern().process().stop(SIGTERM) == 0);
}

void uclientDualAllocations(Where where) {
  RelaySite site(where);
  checkNoLoss(uclient(site, callWith({"-Z"}), Family::kIpv4, Family::kIpv6), 100);
  checkNoLoss(uclient(site, callWith({"-Z"}), Family::kIpv4, Family::kIpv4), 100);
  // Every allocation got both relayed addresses.
  const std::string log = site.tern().process().output();
  CHECK(log.find(",[") != std::string::npos);
  CHECK(log.find("ADDRESS-ERROR") == std::string::npos);
  // The IPv4 client's channels to the IPv4 peer: the kernel's.
  if (site.fastPath()) CHECK(site.kernelPackets() > 0);
  CHECK(site.tern().process().stop(SIGTERM) == 0);
}

void uclientChannels(Where where) {
  RelaySite site(where);
  // Without -c every client opens an RTP allocation with EVEN-PORT (R bit) and an RTCP one
  // with the RESERVATION-TOKEN, from another socket that may land on the other worker.
  const auto r = uclient(site, {"-n", "100", "-m", "4", "-l", "160", "-z", "5"});
  INFO(r.output);
  CHECK(r.lost == 0);
  CHECK(r.sent == 400);
  CHECK(r.received == 400);
  CHECK(site.tern().process().output().find("code=508") == std::string::npos);
  CHECK(site.tern().process().waitForLine("allocation created").has_value());
  if (site.fastPath()) {
    CHECK(site.kernelPackets("client_to_peer") > 0);
    CHECK(site.kernelPackets("peer_to_client") > 0);
  }
  CHECK(site.tern().process().stop(SIGTERM) == 0);
}

void uclientIndications(Where where) {
  RelaySite site(where);
  const auto r = uclient(site, {"-c", "-s", "-n", "100", "-m", "2", "-l", "500", "-z", "5"});
  INFO(r.output);
  CHECK(r.lost == 0);
  CHECK(r.sent == 200);
  CHECK(r.received == 200);
  // Send and Data indications are STUN messages: user space's, never the kernel's.
  if (site.fastPath()) CHECK(site.kernelPackets() == 0);
  CHECK(site.tern().process().stop(SIGTERM) == 0);
}

void aioiceChannel(Where where) {
  RelaySite site(where);
  const auto peer_port = site.echoPeer();
  const auto [username, password] = site.credential("aioice");
  // The default sizes include 8000 bytes: in the lab, IP fragments on both sides.
  const auto result =
      site.runOnClient({"/usr/bin/python3", TERN_CLIENTS_DIR "/aioice_echo.py", "--server",
                        site.server().toString(), "--username", username, "--password", password,
                        "--peer", site.peerHost() + ":" + std::to_string(peer_port)});
  INFO(result.output);
  CHECK(result.status == 0);
  CHECK(result.output.find("\"intact\": 6") != std::string::npos);
  if (site.fastPath()) CHECK(site.kernelPackets() > 0);
  CHECK(site.tern().process().stop(SIGTERM) == 0);
}

std::unique_ptr<test::TurnTestClient> allocated(const RelaySite& site, const std::string& name) {
  auto c = site.turnClient(name);
  REQUIRE(c->transact([&] { return c->session.allocate({}); }) == Outcome::kSuccess);
  REQUIRE(c->session.relayed().has_value());
  return c;
}

// A Data indication from `from` carrying `payload`, within `timeout`.
void expectDataIndication(const test::TurnTestClient& c, const wire::SocketAddress& from,
                          const std::vector<std::uint8_t>& payload) {
  const auto data = test::receiveDatagram(c.fd.get(), 2000ms);
  auto view = wire::MessageView::parse(data);
  REQUIRE(view.has_value());
  CHECK(view->method() == static_cast<std::uint16_t>(wire::Method::kData));
  CHECK(view->get<wire::attr::XorPeerAddress>()->address == from);
  auto got = view->get<wire::attr::Data>();
  REQUIRE(got.has_value());
  CHECK(std::vector<std::uint8_t>(got->value.begin(), got->value.end()) == payload);
}

void permissionThenDataIndications(Where where) {
  RelaySite site(where);
  auto c = allocated(site, "guarded");
  const auto relayed = *c->session.relayed();
  const auto peer = site.peerSocket();
  const std::vector<std::uint8_t> hello{'h', 'e', 'l', 'l', 'o'};
  peer->sendTo(relayed, hello);
  CHECK(test::receiveDatagram(c->fd.get(), 500ms).empty());

  const wire::SocketAddress peers[] = {peer->local()};
  REQUIRE(c->transact([&] { return c->session.createPermission(peers); }) == Outcome::kSuccess);
  peer->sendTo(relayed, hello);
  expectDataIndication(*c, peer->local(), hello);
  if (site.fastPath()) CHECK(site.kernelPackets() == 0);
  CHECK(site.tern().process().stop(SIGTERM) == 0);
}

std::vector<std::uint8_t> channelData(std::uint16_t channel,
                                      const std::vector<std::uint8_t>& payload) {
  std::vector<std::uint8_t> out{static_cast<std::uint8_t>(channel >> 8),
                                static_cast<std::uint8_t>(channel & 0xFF),
                                static_cast<std::uint8_t>(payload.size() >> 8),
                                static_cast<std::uint8_t>(payload.size() & 0xFF)};
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

// `count` datagrams each way through kChannel between `c` and `peer`, each one arriving.
void relayBothWays(const test::TurnTestClient& c, const test::LabSocket& peer, std::uint32_t seed,
                   int count) {
  for (int i = 0; i < count; ++i) {
    const auto payload = test::patternPayload(seed + static_cast<std::uint32_t>(i), 100);
    test::sendRaw(c.fd.get(), channelData(kChannel, payload));
    const auto got = peer.receive(1000ms);
    REQUIRE(got.has_value());
    CHECK(got->bytes == payload);
    CHECK(got->from == *c.session.relayed());
    peer.sendTo(*c.session.relayed(), payload);
    CHECK(test::receiveDatagram(c.fd.get(), 1000ms) == channelData(kChannel, payload));
  }
}

void channelRefreshedNotRebound(Where where) {
  RelaySite site(where);
  auto c = allocated(site, "binder");
  const auto peer = site.peerSocket(), other = site.peerSocket();
  REQUIRE(c->transact([&] { return c->session.channelBind(kChannel, peer->local()); }) ==
          Outcome::kSuccess);
  relayBothWays(*c, *peer, 1, 5);
  // RFC 8656 §12.2: binding the same pair again refreshes it ...
  REQUIRE(c->transact([&] { return c->session.channelBind(kChannel, peer->local()); }) ==
          Outcome::kSuccess);
  relayBothWays(*c, *peer, 10, 5);
  // ... but the channel cannot move to another peer, nor the peer to another channel.
  CHECK(c->transact([&] { return c->session.channelBind(kChannel, other->local()); }) ==
        Outcome::kError);
  CHECK(c->session.lastErrorCode() == 400);
  CHECK(c->transact([&] { return c->session.channelBind(kChannel + 1, peer->local()); }) ==
        Outcome::kError);
  CHECK(c->session.lastErrorCode() == 400);
  // The channel still leads to the first peer alone, by whichever path.
  relayBothWays(*c, *peer, 20, 5);
  CHECK_FALSE(other->receive(500ms).has_value());
  if (site.fastPath()) {
    CHECK(site.kernelPackets("client_to_peer") > 0);
    CHECK(site.kernelPackets("peer_to_client") > 0);
  }
  CHECK(site.tern().process().stop(SIGTERM) == 0);
}

void refreshZeroEndsRelaying(Where where) {
  RelaySite site(where);
  auto c = allocated(site, "leaver");
  const auto relayed = *c->session.relayed();
  const auto peer = site.peerSocket();
  REQUIRE(c->transact([&] { return c->session.channelBind(kChannel, peer->local()); }) ==
          Outcome::kSuccess);
  relayBothWays(*c, *peer, 1, 10);
  const auto kernel = site.kernelPackets();
  if (site.fastPath()) CHECK(kernel > 0);  // the channel was the kernel's
  // RFC 8656 §7.3: lifetime 0 deletes the allocation, and with it its channels: relaying
  // stops at once, not on some later tick (sent right after the success response).
  REQUIRE(c->transact([&] { return c->session.refresh(0); }) == Outcome::kSuccess);
  for (std::uint32_t n = 0; n < 10; ++n) {
    const auto payload = test::patternPayload(100 + n, 100);
    test::sendRaw(c->fd.get(), channelData(kChannel, payload));
    peer->sendTo(relayed, payload);
  }
  CHECK_FALSE(peer->receive(1000ms).has_value());
  CHECK(test::receiveDatagram(c->fd.get(), 200ms).empty());
  if (site.fastPath()) CHECK(site.kernelPackets() == kernel);
  CHECK(site.tern().process().stop(SIGTERM) == 0);
}

void uclientMoves(Where where) {
  RelaySite site(where);
  // Each run is 4 clients; the kernel decides which moves cross workers, so run again (few
  // times at most) until one did.
  bool cross_worker = false;
  for (int run = 0; run < 4 && !cross_worker; ++run) {
    const auto r = uclient(site, {"-M", "-c", "-n", "100", "-m", "4", "-l", "120"});
    INFO(r.output);
    CHECK(r.lost == 0);
    CHECK(r.sent == 400);
    CHECK(r.received == 400);
    REQUIRE(site.tern().process().waitForLine("allocation moved").has_value());
    cross_worker = site.tern().process().output().find("cross_worker=1") != std::string::npos;
  }
  CHECK(cross_worker);
  CHECK(site.tern().process().output().find("code=400") == std::string::npos);
  // The moved channels' entries follow the new 5-tuples (RFC 8016 §3.2).
  if (site.fastPath()) CHECK(site.kernelPackets() > 0);
  CHECK(site.tern().process().stop(SIGTERM) == 0);
}

// Datagrams waiting on `fd`, read without blocking.
std::size_t drain(int fd) {
  std::size_t n = 0;
  std::uint8_t buf[2048];
  while (::recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0) ++n;
  return n;
}

void reloadedBandwidthLimit(Where where) {
  const std::string config = test::temporaryFile("max-bps = \"0\"\n");
  RelaySite site(where, {"--config", config});
  auto c = allocated(site, "reloaded");
  const auto peer = site.peerSocket();
  REQUIRE(c->transact([&] { return c->session.channelBind(kChannel, peer->local()); }) ==
          Outcome::kSuccess);
  const auto channel_data = channelData(kChannel, std::vector<std::uint8_t>(1000, 0x5A));
  // Forty packets at once (few enough for the peer socket's buffer); how many reach the peer,
  // and how many of them the kernel carried.
  auto burst = [&] {
    const auto kernel = site.kernelPackets("client_to_peer");
    for (int i = 0; i < 40; ++i) test::sendRaw(c->fd.get(), channel_data);
    std::this_thread::sleep_for(200ms);
    return std::pair{drain(peer->fd()), site.kernelPackets("client_to_peer") - kernel};
  };
  auto reload = [&](const char* max_bps, const char* logged) {
    std::ofstream(config) << "max-bps = \"" << max_bps << "\"\n";
    ::kill(site.tern().process().pid(), SIGHUP);
    REQUIRE(site.tern().process().waitForLine(logged).has_value());
  };
  auto [unlimited, unlimited_by_kernel] = burst();
  CHECK(unlimited == 40);
  reload("200K", "max_bps=200000 ");
  // The allocation's bucket starts full at the new limit: one second's worth, 25 packets. The
  // limit is enforced packet by packet in user space: the kernel must carry none of them.
  const auto [limited, limited_by_kernel] = burst();
  CHECK(limited >= 24);
  CHECK(limited <= 27);
  CHECK(limited_by_kernel == 0);
  reload("0", "max_bps=0 ");
  const auto [lifted, lifted_by_kernel] = burst();
  CHECK(lifted == 40);
  if (site.fastPath()) {
    CHECK(unlimited_by_kernel > 0);
    CHECK(lifted_by_kernel > 0);
  }
  CHECK(site.tern().process().stop(SIGTERM) == 0);
}

}  // namespace

TERN_RELAY_CASE(
    "turnutils_uclient relays RTP/RTCP pairs (EVEN-PORT, RESERVATION-TOKEN) through channels "
    "with zero loss",
    uclientChannels)
TERN_RELAY_CASE("turnutils_uclient relays with Send and Data indications (-s) with zero loss",
                uclientIndications)
TERN_RELAY_CASE("python3-aioice relays datagrams of several sizes byte-identical through a channel",
                aioiceChannel)
TERN_RELAY_CASE("a peer without permission cannot reach the client, with one it can (RFC 8656 §9)",
                permissionThenDataIndications)
TERN_RELAY_CASE(
    "ChannelBind refreshes a channel but never rebinds it to another peer (RFC 8656 §12.2)",
    channelRefreshedNotRebound)
TERN_RELAY_CASE(
    "a Refresh with lifetime 0 stops the relaying of the allocation's channel at once (RFC 8656 "
    "§7.3)",
    refreshZeroEndsRelaying)
TERN_RELAY_CASE(
    "turnutils_uclient -M moves its allocations to new ports and relays with zero loss (RFC "
    "8016)",
    uclientMoves)
TERN_RELAY_CASE(
    "turnutils_uclient -x: an IPv4 client relays through an IPv6 relayed address to an IPv6 "
    "peer",
    uclientIpv6Relayed)
TERN_RELAY_CASE("turnutils_uclient over IPv6 relays to an IPv6 peer over UDP", uclientIpv6EndToEnd)
TERN_RELAY_CASE("turnutils_uclient -X: an IPv6 client relays through an IPv4 relayed address",
                uclientIpv4RelayedForIpv6Client)
TERN_RELAY_CASE("turnutils_uclient -Z: dual allocations reach IPv6 and IPv4 peers (RFC 8656 §7.2)",
                uclientDualAllocations)
TERN_RELAY_CASE("SIGHUP applies a new --max-bps to a call in progress, and lifts it again",
                reloadedBandwidthLimit)
