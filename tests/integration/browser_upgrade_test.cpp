// A WebRTC call in a real browser across an in-place upgrade (docs/upgrade.md): headless
// Chromium (tests/browser/webrtc_upgrade.mjs) relays a data channel through tern over
// turn: UDP, relay candidates only, while the server is upgraded with SIGUSR2. The browser
// must not notice: the same selected candidate pair (same relayed addresses), ICE connected
// throughout, every message delivered in order, and the new process relaying after it.
#include <doctest/doctest.h>
#include <signal.h>

#include <ctime>

#include "auth/rest_credentials.hpp"
#include "support/process.hpp"
#include "support/tern_server.hpp"
#include "upgrade_support.hpp"

using namespace tern;
using namespace tern::test::upgrade;
using test::TernServer;

namespace {

constexpr const char* kRelayedToPeer =
    R"(tern_relayed_packets_total{direction="client_to_peer",transport="udp",path="user"})";

// The JSON the script printed after `prefix`, or empty.
std::string lineAfter(const std::string& output, const std::string& prefix) {
  const std::size_t at = output.find(prefix);
  if (at == std::string::npos) return {};
  const std::size_t from = at + prefix.size();
  return output.substr(from, output.find('\n', from) - from);
}

}  // namespace

TEST_CASE(
    "A Chromium data channel over turn: UDP keeps its selected relay pair across an upgrade") {
  becomeSubreaper();
  Workspace w;
  TernServer server(w.args(), nullptr, w.binary);
  const auto credential = auth::mintRestCredential(kSecret, "chromium", std::time(nullptr), 600);
  const std::string go_on = w.path + "/go-on";
  test::ChildProcess browser({"/usr/bin/node", TERN_BROWSER_DIR "/webrtc_upgrade.mjs", "--url",
                              "turn:" + server.udp().toString() + "?transport=udp", "--username",
                              credential.username, "--credential", credential.password, "--go-on",
                              go_on, "--after-ms", "2000"});
  const auto flowing = browser.waitForLine("flowing ", 60s);
  INFO(browser.output());
  REQUIRE(flowing.has_value());
  const std::string before = lineAfter(browser.output(), "flowing ");
  CHECK(before.find(R"("local":"relay","remote":"relay","relayProtocol":"udp")") !=
        std::string::npos);

  ::kill(server.process().pid(), SIGUSR2);
  const pid_t next = upgradedPid(server.process());
  REQUIRE(next > 0);
  AdoptedProcess successor(next);
  // Nothing stayed behind (both allocations are UDP), so the old process exits at once.
  CHECK(server.process().wait(15s) == 0);
  INFO(server.process().output());
  // The gauge describes the process that reports it: the new one holds both allocations.
  CHECK(test::metricValue(server, R"(tern_allocations_active{transport="udp",family="ipv4"})") ==
        2);
  const std::uint64_t at_upgrade = test::metricValue(server, kRelayedToPeer);
  test::writeFile(go_on, "");

  CHECK(browser.wait(60s) == 0);
  const std::string result = lineAfter(browser.output(), "result ");
  REQUIRE_FALSE(result.empty());
  // The pair's id and both relayed transport addresses, on each side, as before the upgrade.
  CHECK(result.find(R"("samePair":true)") != std::string::npos);
  // No ICE connection state change at all after 'connected': no restart, no disconnect.
  CHECK(result.find(R"("iceStates":[])") != std::string::npos);
  CHECK(result.find(R"("finalStates":["connected","connected"])") != std::string::npos);
  CHECK(result.find(R"("inOrder":true)") != std::string::npos);
  CHECK(result.find(R"("lost":0)") != std::string::npos);
  CHECK(result.find(R"("receivedAfterUpgrade":0)") == std::string::npos);
  // The old process had exited: what was relayed since, the new one relayed.
  CHECK(test::metricValue(server, kRelayedToPeer) > at_upgrade);
  CHECK(successor.stop(SIGTERM) == 0);
}
