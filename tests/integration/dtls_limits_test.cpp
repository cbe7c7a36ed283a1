// DTLS admission limits per source (an IPv4 address or IPv6 /64) and in all: one host that
// echoes its cookies (RFC 6347 §4.2.1) and goes silent holds at most
// --max-dtls-handshakes-per-ip handshake slots, so clients from elsewhere still get theirs;
// finished sessions are capped per source and in all. Refusals are counted by limit.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/resource.h>

#include <atomic>
#include <chrono>
#include <thread>

#include "support/secure_client.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/test_certificates.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::TernServer;

namespace {

constexpr const char* kSecret = "dtls-limits-secret";
constexpr const char* kPeerHost = "127.0.0.2";
constexpr const char* kFloodHost = "127.0.0.5";

std::vector<std::string> dtlsArgs(std::vector<std::string> extra) {
  static const std::string secret_file = test::temporaryFile(std::string(kSecret) + "\n");
  const auto& certs = test::testCertificates();
  std::vector<std::string> args{"--dtls-listen",
                                "127.0.0.1:0",
                                "--cert",
                                certs.chain,
                                "--key",
                                certs.key,
                                "--relay-ip",
                                "127.0.0.1",
                                "--allow-peer",
                                "127.0.0.0/8",
                                "--auth-secret-file",
                                secret_file,
                                "--metrics-listen",
                                "127.0.0.1:0"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The uclient's "Total connect time is N" (seconds), or 999 if it did not say.
long connectSeconds(const std::string& output) {
  const auto at = output.find("Total connect time is ");
  return at == std::string::npos ? 999 : std::stol(output.substr(at + 22));
}

// 1,100 sockets at once need more than the usual 1024 descriptors.
void raiseOpenFilesLimit(rlim_t want) {
  rlimit limit{};
  REQUIRE(::getrlimit(RLIMIT_NOFILE, &limit) == 0);
  if (limit.rlim_cur >= want) return;
  limit.rlim_cur = std::min(want, limit.rlim_max);
  REQUIRE(::setrlimit(RLIMIT_NOFILE, &limit) == 0);
}

std::uint64_t refused(const TernServer& server, const char* limit) {
  return test::metricValue(
      server, std::string("tern_dtls_sessions_refused_total{limit=\"") + limit + "\"}");
}

}  // namespace

TEST_CASE(
    "one source echoing DTLS cookies and going silent holds only its own handshake slots: a DTLS "
    "call from another address relays with zero loss") {
  // One worker: its 1024 handshake slots are the whole node's, which one source could fill.
  TernServer server(dtlsArgs({"--workers", "1", "--max-dtls-handshakes-per-ip", "64"}));
  test::EchoPeer peer(kPeerHost);

  // The flood: 1,100 handshakes left in progress at once, more than the worker's 1024 slots,
  // and their cookie echoes sent again every second, so a slot that passes its 10 s deadline
  // is taken again at once. Bounded: it stops when the call has ended, or after 40 s.
  raiseOpenFilesLimit(4096);
  const test::SilentDtlsHandshakes flood(server.dtls(), kFloodHost, 1100, 500ms);
  // A source at its limit gets no HelloVerifyRequest either: at least the limit's worth echoed.
  REQUIRE(flood.echoed() >= 64);
  std::atomic<bool> stop{false};
  std::thread repeater([&] {
    const auto give_up = std::chrono::steady_clock::now() + 40s;
    while (!stop && std::chrono::steady_clock::now() < give_up) {
      flood.repeat();
      std::this_thread::sleep_for(1s);
    }
  });
  // The call starts once the flood's slots are full: the relay refuses its echoes.
  const auto full_by = std::chrono::steady_clock::now() + 10s;
  while (refused(server, "handshakes") + refused(server, "handshakes_per_ip") == 0 &&
         std::chrono::steady_clock::now() < full_by) {
    std::this_thread::sleep_for(100ms);
  }
  // clang-format off
  const auto r = test::runUclient({
      "-X", "-S", "-W", kSecret, "-u", "dtls-caller", "-e", kPeerHost,
      "-r", std::to_string(peer.port()), "-p", std::to_string(server.dtls().port),
      "-n", "100", "-m", "2", "-l", "161", "-z", "5", "127.0.0.1"});
  // clang-format on
  stop = true;
  repeater.join();
  INFO(r.output);
  // Before the per-source limit the call waited for a slot, or never got one.
  CHECK(connectSeconds(r.output) <= 2);
  CHECK(r.sent == 200);
  CHECK(r.received == 200);
  CHECK(r.lost == 0);
  CHECK(refused(server, "handshakes_per_ip") > 0);
  CHECK(refused(server, "handshakes") == 0);
  // The operator hears of the flooder once per episode, not once per ClientHello.
  const std::string log = server.process().output();
  CHECK(count(log, "dtls session refused") >= 1);
  CHECK(count(log, "dtls session refused") <= 4);  // at most one per 10 s deadline
  CHECK(log.find("client=127.0.0.5 limit=max-dtls-handshakes-per-ip") != std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "DTLS sessions past --max-dtls-sessions-per-ip and --max-dtls-sessions are refused and "
    "counted") {
  TernServer server(dtlsArgs({"--max-dtls-sessions-per-ip", "3", "--max-dtls-sessions", "5"}));
  std::vector<std::unique_ptr<test::SecureClient>> held;
  const auto open = [&](const char* host) {
    held.push_back(std::make_unique<test::SecureClient>(server.dtls(), true,
                                                        test::socketAddress(host, 0), 2s));
    return held.back()->handshake();
  };
  // Three from one address, the fourth refused: per source.
  for (int i = 0; i < 3; ++i) CHECK(open(kFloodHost));
  CHECK_FALSE(open(kFloodHost));
  // Two more from another address make five, the node's total; the next is refused.
  CHECK(open("127.0.0.6"));
  CHECK(open("127.0.0.6"));
  CHECK_FALSE(open("127.0.0.6"));
  CHECK(refused(server, "sessions_per_ip") >= 1);
  CHECK(refused(server, "sessions") >= 1);
  CHECK(test::metricValue(server, "tern_dtls_sessions_open") == 5);
  CHECK(server.process().stop(SIGTERM) == 0);
}
