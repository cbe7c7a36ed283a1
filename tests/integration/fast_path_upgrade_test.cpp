// The eBPF fast path (issue 21) across a reload and an upgrade, in the lab of namespaces
// (fast_path_topology.hpp), with a call of numbered datagrams at 50 per second each way
// through a bound channel. SIGHUP keeps the program, its maps and links: the same program
// stays attached and the kernel relays on; a reload that adds --max-bps moves the channel to
// user space (the limit is enforced there, packet by packet) and one that lifts it moves it
// back. SIGUSR2 hands over to a new process with a program of its own: nothing is lost, one
// program remains once the old process exits, the new one relays by the kernel, and the
// usage record counts what the old program relayed too (docs/upgrade.md). An upgrade that
// fails, before the old workers froze (a configuration the new process rejects) or after
// (strace makes the new process's last hand-over message fail), leaves the old process
// relaying by the kernel.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <cstdint>
#include <fstream>
#include <functional>
#include <memory>
#include <regex>
#include <set>
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
#include "upgrade_support.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::Family;
using test::FastPathTopology;
using test::LabSocket;
using test::NetworkNamespace;
using test::TernServer;
using test::TurnTestClient;
using Clock = std::chrono::steady_clock;

namespace {

constexpr std::uint16_t kPeerPort = 5000;
constexpr std::uint16_t kChannel = 0x4001;
constexpr std::size_t kPayload = 60;
constexpr auto kSuccess = TurnTestClient::Outcome::kSuccess;

// Waits up to `limit` for `done`.
bool eventually(const std::function<bool()>& done, std::chrono::milliseconds limit = 4000ms) {
  for (const auto give_up = Clock::now() + limit; Clock::now() < give_up;
       std::this_thread::sleep_for(100ms)) {
    if (done()) return true;
  }
  return done();
}

std::vector<std::uint8_t> channelData(const std::vector<std::uint8_t>& payload) {
  std::vector<std::uint8_t> out{static_cast<std::uint8_t>(kChannel >> 8),
                                static_cast<std::uint8_t>(kChannel & 0xFF),
                                static_cast<std::uint8_t>(payload.size() >> 8),
                                static_cast<std::uint8_t>(payload.size() & 0xFF)};
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

// Datagram `n` of the call: its number in the first four bytes, the rest a function of it.
std::vector<std::uint8_t> numbered(std::uint32_t n) {
  auto p = test::patternPayload(n, kPayload);
  for (int i = 0; i < 4; ++i)
    p[static_cast<std::size_t>(i)] = static_cast<std::uint8_t>(n >> (24 - 8 * i));
  return p;
}

// The number of a datagram of the call that arrived intact; 0 otherwise.
std::uint32_t numberOf(const std::vector<std::uint8_t>& payload) {
  if (payload.size() != kPayload) return 0;
  std::uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n = (n << 8) | payload[static_cast<std::size_t>(i)];
  return payload == numbered(n) ? n : 0;
}

// A client with a UDP allocation and kChannel bound to a peer socket, one datagram each way
// through it already (so every neighbour entry is resolved before the counting starts).
struct Call {
  explicit Call(const FastPathTopology& lab)
      : peer(lab.peer, test::labAddresses(Family::kIpv4).peer, kPeerPort) {
    const auto& a = test::labAddresses(Family::kIpv4);
    {
      NetworkNamespace::Inside inside(lab.client);
      client = std::make_unique<TurnTestClient>(
          test::socketAddress(a.client, 0), test::socketAddress(a.relay_client, test::kTurnPort),
          test::kLabUser, test::kLabPassword, false);
    }
    REQUIRE(client->transact([&] { return client->session.allocate({}); }) == kSuccess);
    relayed = *client->session.relayed();
    REQUIRE(client->transact([&] { return client->session.channelBind(kChannel, peer.local()); }) ==
            kSuccess);
    const auto hello = numbered(0);
    test::sendRaw(client->fd.get(), channelData(hello));
    const auto got = peer.receive(2000ms);
    REQUIRE(got.has_value());
    REQUIRE(got->bytes == hello);
    peer.sendTo(relayed, hello);
    const auto back = test::receiveDatagram(client->fd.get(), 2000ms);
    REQUIRE(back.size() == 4 + kPayload);
  }

  // `duration` of one datagram each way every 20 ms; `at_second` runs once a second in. Then
  // waits for stragglers and checks that each datagram arrived, once and intact. Returns how
  // many went each way.
  std::uint32_t talk(std::chrono::milliseconds duration,
                     const std::function<void()>& at_second = {}) {
    std::set<std::uint32_t> at_peer, at_client;
    std::uint32_t first = next, duplicates = 0;
    const auto start = Clock::now();
    bool called = !at_second;
    auto receive = [&](std::chrono::milliseconds wait) {
      if (auto d = peer.receive(wait)) {
        if (!at_peer.insert(numberOf(d->bytes)).second) ++duplicates;
      }
      const auto bytes = test::receiveDatagram(client->fd.get(), 0ms);
      if (bytes.size() > 4) {
        const std::vector<std::uint8_t> payload(bytes.begin() + 4, bytes.end());
        if (!at_client.insert(numberOf(payload)).second) ++duplicates;
      }
    };
    while (Clock::now() < start + duration) {
      if (!called && Clock::now() >= start + 1s) {
        at_second();
        called = true;
      }
      test::sendRaw(client->fd.get(), channelData(numbered(next)));
      peer.sendTo(relayed, numbered(next));
      ++next;
      for (const auto until = Clock::now() + 20ms; Clock::now() < until;) receive(2ms);
    }
    for (const auto until = Clock::now() + 500ms; Clock::now() < until;) receive(5ms);
    const std::uint32_t sent = next - first;
    std::set<std::uint32_t> all;
    for (std::uint32_t n = first; n < next; ++n) all.insert(n);
    CAPTURE(sent);
    CHECK(duplicates == 0);
    CHECK(at_peer == all);  // no loss, nothing mangled (a mangled one would read as 0)
    CHECK(at_client == all);
    total += sent;
    return sent;
  }

  LabSocket peer;
  std::unique_ptr<TurnTestClient> client;
  wire::SocketAddress relayed;
  std::uint32_t next = 1;
  std::uint32_t total = 1;  // the first datagram each way
};

// The TCX programs of the relay's two interfaces.
std::vector<std::uint32_t> programs(const FastPathTopology& lab) {
  auto ids = lab.tcxIngressProgramIds(FastPathTopology::kRelayClientIf);
  const auto more = lab.tcxIngressProgramIds(FastPathTopology::kRelayPeerIf);
  ids.insert(ids.end(), more.begin(), more.end());
  return ids;
}

// Both directions' relayed packets of `path`, once every count that should have grown did
// (kernel counts are credited on the worker's 1 s tick).
std::uint64_t countsReach(const FastPathTopology& lab, const TernServer& tern,
                          const std::string& path, std::uint64_t at_least) {
  (void)eventually([&] { return lab.relayedPackets(tern, "", path) >= at_least; });
  return lab.relayedPackets(tern, "", path);
}

void reload(TernServer& tern, const std::string& config, const std::string& contents,
            std::size_t nth) {
  test::writeFile(config, contents);
  ::kill(tern.process().pid(), SIGHUP);
  REQUIRE(test::upgrade::waitForCount(tern.process(), "configuration reloaded", nth));
}

std::uint64_t field(const std::string& line, const std::string& name) {
  std::smatch m;
  if (!std::regex_search(line, m, std::regex(name + "=([0-9]+)"))) return 0;
  return std::stoull(m[1].str());
}

// An upgrade meant to fail that succeeded: its new process (strace, and tern under it, which
// a signal to strace alone would leave running) stopped by PID.
void stopStray(const test::ChildProcess& log) {
  const pid_t next = test::upgrade::upgradedPid(log);
  if (next <= 0) return;
  std::ifstream children("/proc/" + std::to_string(next) + "/task/" + std::to_string(next) +
                         "/children");
  for (pid_t child = 0; children >> child;) ::kill(child, SIGKILL);
  test::upgrade::AdoptedProcess(next).stop(SIGKILL);
}

}  // namespace

TEST_CASE(
    "fast path on: SIGHUP keeps the program and the kernel path, --max-bps by reload moves a "
    "channel to user space and back, nothing lost") {
  FastPathTopology lab;
  const std::string base = "log-level = \"info\"\n";
  const std::string config = test::temporaryFile(base);
  auto tern = lab.startTern(true, {"--config", config});
  Call call(lab);
  const auto attached = programs(lab);
  REQUIRE(attached.size() == 2);

  auto kernel = lab.settledRelayedPackets(*tern, "", "kernel");
  auto user = lab.relayedPackets(*tern, "", "user");
  auto sent = call.talk(1000ms);
  CHECK(countsReach(lab, *tern, "kernel", kernel + 2 * sent) == kernel + 2 * sent);
  kernel += 2 * sent;

  // A reload with nothing to change for the fast path: same program, kernel relays on.
  reload(*tern, config, base + "# reloaded\n", 1);
  CHECK(programs(lab) == attached);
  sent = call.talk(1000ms);
  CHECK(countsReach(lab, *tern, "kernel", kernel + 2 * sent) == kernel + 2 * sent);
  kernel += 2 * sent;
  CHECK(lab.relayedPackets(*tern, "", "user") == user);

  // A limit: user space must see every packet to enforce it (10 Mbit/s: none dropped here).
  reload(*tern, config, base + "max-bps = 10000000\n", 2);
  CHECK(programs(lab) == attached);
  CHECK(eventually([&] {
    return lab.metricSum(*tern, "tern_fastpath_entries", {{"map", "channels"}}) == 0;
  }));
  sent = call.talk(1000ms);
  CHECK(countsReach(lab, *tern, "user", user + 2 * sent) == user + 2 * sent);
  user += 2 * sent;
  CHECK(lab.settledRelayedPackets(*tern, "", "kernel") == kernel);

  // Lifted: back to the kernel.
  reload(*tern, config, base, 3);
  CHECK(programs(lab) == attached);
  sent = call.talk(1000ms);
  CHECK(countsReach(lab, *tern, "kernel", kernel + 2 * sent) == kernel + 2 * sent);
  CHECK(lab.relayedPackets(*tern, "", "user") == user);
  CHECK(tern->process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "fast path on: SIGUSR2 under a call loses nothing, leaves one program, and the new process "
    "relays by the kernel and counts the old one's kernel packets in the usage record") {
  test::upgrade::becomeSubreaper();
  FastPathTopology lab;
  auto tern = lab.startTern(true);
  Call call(lab);
  const auto old_programs = programs(lab);
  REQUIRE(old_programs.size() == 2);
  auto sent = call.talk(1000ms);
  const auto old_kernel = countsReach(lab, *tern, "kernel", 2 * sent);
  CHECK(old_kernel >= 2 * sent);  // the old program relayed the call

  call.talk(3000ms, [&] { ::kill(tern->process().pid(), SIGUSR2); });
  const pid_t next = test::upgrade::upgradedPid(tern->process());
  INFO(tern->process().output());
  REQUIRE(next > 0);
  test::upgrade::AdoptedProcess successor(next);
  CHECK(tern->process().wait(15s) == 0);
  CHECK(successor.running());
  // The old process's links went with it: the new process's program alone, on each interface.
  const auto new_programs = programs(lab);
  REQUIRE(new_programs.size() == 2);
  CHECK(new_programs[0] != old_programs[0]);
  CHECK(new_programs[0] == new_programs[1]);

  // The new process answers on the same metrics port; its counters carry on from the old one's.
  const auto kernel = lab.settledRelayedPackets(*tern, "", "kernel");
  const auto user = lab.relayedPackets(*tern, "", "user");
  sent = call.talk(1000ms);
  CHECK(countsReach(lab, *tern, "kernel", kernel + 2 * sent) == kernel + 2 * sent);
  CHECK(lab.relayedPackets(*tern, "", "user") == user);

  // The usage record, written by the new process, counts every datagram: those the old
  // process's program relayed are credited into the allocation before the snapshot.
  REQUIRE(call.client->transact([&] { return call.client->session.refresh(0); }) == kSuccess);
  const auto ended = tern->process().waitForLine("allocation ended");
  REQUIRE(ended.has_value());
  INFO(*ended);
  CHECK(field(*ended, "packets_to_peer") == call.total);
  CHECK(field(*ended, "packets_to_client") == call.total);
  CHECK(field(*ended, "bytes_to_peer") == call.total * kPayload);
  CHECK(successor.stop(SIGTERM) == 0);
}

TEST_CASE(
    "fast path on: an upgrade that fails, before or after the old process froze, leaves it "
    "relaying by the kernel") {
  test::upgrade::becomeSubreaper();
  test::upgrade::Workspace w;
  FastPathTopology lab;
  const std::string config = w.path + "/tern.toml";
  test::writeFile(config, "log-level = \"info\"\n");
  auto tern = lab.startTern(true, {"--config", config}, w.binary);
  Call call(lab);
  const auto attached = programs(lab);
  REQUIRE(attached.size() == 2);
  call.talk(500ms);
  const auto user = lab.relayedPackets(*tern, "", "user");

  std::function<void()> upgrade;
  bool after_freeze = false;
  SUBCASE("a configuration the new process rejects") {
    upgrade = [&] {
      test::writeFile(config, "max-allocations = \"many\"\n");
      ::kill(tern->process().pid(), SIGUSR2);
    };
  }
  SUBCASE("a new process whose last hand-over message fails, after the freeze") {
    // strace makes its eighth sendto fail, as if the channel broke there: HELLO's header
    // and payload, PRECOPIED, then TAKEN, sent once the old workers froze (taking their
    // channels out of the old maps) and it applied what they sent; before HELLO and before
    // PRECOPIED, getifaddrs sends two netlink requests each. Should the count drift, the
    // "taken over" check below fails (or the upgrade succeeds and the test fails).
    // LeakSanitizer cannot run under ptrace: it would fail at exit and leave a report that
    // fails the run. Every other check of an ASan build stays on.
    w.installScript(
        "export ASAN_OPTIONS=\"${ASAN_OPTIONS:-}:detect_leaks=0\"\n"
        "exec /usr/bin/strace -f -qq -o /dev/null -e trace=sendto -e "
        "inject=sendto:error=EPIPE:when=8 " +
        test::ternBinary() + " \"$@\"");
    upgrade = [&] { ::kill(tern->process().pid(), SIGUSR2); };
    after_freeze = true;
  }
  call.talk(2000ms, upgrade);
  INFO(tern->process().output());
  const bool failed =
      tern->process().waitForLine("upgrade failed; this process serves on").has_value();
  if (!failed) stopStray(tern->process());
  REQUIRE(failed);
  // The new process's own lines: it applied what the frozen workers sent.
  CHECK((tern->process().output().find("taken over") != std::string::npos) == after_freeze);
  CHECK(tern->process().running());
  CHECK(programs(lab) == attached);
  // Afterwards, the kernel's alone.
  const auto kernel = lab.settledRelayedPackets(*tern, "", "kernel");
  const auto before = lab.relayedPackets(*tern, "", "user");
  const auto sent = call.talk(1000ms);
  CHECK(countsReach(lab, *tern, "kernel", kernel + 2 * sent) == kernel + 2 * sent);
  CHECK(lab.relayedPackets(*tern, "", "user") == before);
  CHECK(before >= user);
  CHECK(tern->process().stop(SIGTERM) == 0);
}
