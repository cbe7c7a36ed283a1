// A reload that narrows the peer policy (issue 18, item 8): ChannelData checks only the
// permission per packet, so without more a channel to a peer the new policy denies would
// relay until it expired. On SIGHUP tern ends the permissions and channels to such peers at
// once, with a log line and tern_peer_policy_revoked_total. Driven by turnutils_uclient (its
// call to an echo peer stops getting answers) and tern's own client (its sink stops getting
// datagrams), while a peer the policy still allows keeps working.
#include <doctest/doctest.h>
#include <signal.h>

#include <chrono>
#include <ctime>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "auth/rest_credentials.hpp"
#include "relay/client/turn_session.hpp"
#include "support/process.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/turn_test_client.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::TurnTestClient;
using Outcome = client::TurnSession::Outcome;

namespace {

constexpr const char* kSecret = "reload-policy-secret";

}  // namespace

TEST_CASE("SIGHUP with a narrower peer policy ends the channels to the denied peers at once") {
  const std::string config = test::temporaryFile("allow-peer = [\"127.0.0.0/8\"]\n");
  test::TernServer server({"--config", config, "--auth-secret-file", test::temporaryFile(std::string(kSecret) + "\n"),
                           "--metrics-listen", "127.0.0.1:0", "--log-level", "info"});
  test::EchoPeer denied_peer("127.0.0.2");
  const auto denied_sink_address = test::socketAddress("127.0.0.2", test::freeUdpPort("127.0.0.2"));
  const auto kept_sink_address = test::socketAddress("127.0.0.3", test::freeUdpPort("127.0.0.3"));
  auto denied_sink = test::boundUdpSocket(denied_sink_address);
  auto kept_sink = test::boundUdpSocket(kept_sink_address);

  // A real client's call to the echo peer on 127.0.0.2, over a channel: about 6 s of media.
  test::ChildProcess call({"/usr/bin/turnutils_uclient", "-W", kSecret, "-u", "caller", "-e", "127.0.0.2", "-r",
                           std::to_string(denied_peer.port()), "-n", "300", "-m", "1", "-l", "160", "-z", "20", "-c",
                           "-p", std::to_string(server.udp().port), "127.0.0.1"});
  // tern's own client with a channel to each sink.
  const auto c = auth::mintRestCredential(kSecret, "own", std::time(nullptr), 600);
  TurnTestClient own(test::socketAddress("127.0.0.1", 0), server.udp(), c.username, c.password, false);
  REQUIRE(own.transact([&] { return own.session.allocate({}); }) == Outcome::kSuccess);
  REQUIRE(own.transact([&] { return own.session.channelBind(0x4000, denied_sink_address); }) == Outcome::kSuccess);
  REQUIRE(own.transact([&] { return own.session.channelBind(0x4001, kept_sink_address); }) == Outcome::kSuccess);
  const std::vector<std::uint8_t> payload{'m', 'e', 'd', 'i', 'a'};
  auto channelData = [&](std::uint16_t channel) {
    test::sendRaw(own.fd.get(), client::TurnSession::channelData(channel, {payload.data(), payload.size()}, false));
  };
  channelData(0x4000);
  channelData(0x4001);
  CHECK(test::receiveDatagram(denied_sink.get(), 2000ms) == payload);
  CHECK(test::receiveDatagram(kept_sink.get(), 2000ms) == payload);

  // The call is under way once uclient's echoes come back (it prints its totals each second).
  bool echoed = false;
  for (int i = 0; i < 100 && !echoed; ++i) {
    const std::string out = call.output();
    const auto at = out.rfind("tot_recv_msgs=");
    echoed = at != std::string::npos && out.compare(at, 16, "tot_recv_msgs=0,") != 0;
    if (!echoed) std::this_thread::sleep_for(100ms);
  }
  REQUIRE(echoed);
  test::writeFile(config, "allow-peer = [\"127.0.0.0/8\"]\ndeny-peer = [\"127.0.0.2/32\"]\n");
  ::kill(server.process().pid(), SIGHUP);
  REQUIRE(server.process().waitForLine("configuration reloaded").has_value());

  // The denied peer gets nothing more on the channel that is still bound in the client's eyes;
  // the other sink does.
  channelData(0x4000);
  channelData(0x4001);
  CHECK(test::receiveDatagram(kept_sink.get(), 2000ms) == payload);
  CHECK(test::receiveDatagram(denied_sink.get(), 500ms).empty());

  // uclient's echoes stopped mid-call.
  REQUIRE(call.wait(30s) >= 0);
  const auto report = test::parseUclientReport(call.output());
  INFO(report.output);
  CHECK(report.sent == 300);
  CHECK(report.received > 0);
  CHECK(report.received < report.sent);

  // Both allocations lost their channel and permission for 127.0.0.2, said and counted.
  CHECK(test::countOf(server.process().output(), "peers refused by the reloaded peer policy") == 2);
  // (uclient binds more than one channel to its peer; tern's own client one.)
  CHECK(test::metricValue(server, "tern_peer_policy_revoked_total{kind=\"channel\"}") >= 2);
  CHECK(test::metricValue(server, "tern_peer_policy_revoked_total{kind=\"permission\"}") == 2);
  CHECK(server.process().stop(SIGTERM) == 0);
}
