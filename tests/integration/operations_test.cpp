// Operating a node without dropping a call, against a real `tern serve`: the HTTP port
// (/metrics, /healthz, /readyz, POST /drain) scraped by a real Prometheus server while
// turnutils_uclient relays; SIGHUP reloads (secrets, bad configurations, log level) under a
// live stream; draining on SIGTERM and `tern drain`; the usage records in the log.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/socket.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "auth/rest_credentials.hpp"
#include "relay/app/http_request.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "support/stun_socket.hpp"
#include "support/process.hpp"
#include "support/prometheus_server.hpp"
#include "support/tern_server.hpp"
#include "support/turn_test_client.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::TernServer;

namespace {

constexpr const char* kRealm = "tern.test";
constexpr const char* kPeerHost = "127.0.0.2";  // 127.0.0.1 is the relay's own address

app::HttpResponse get(const wire::SocketAddress& at, const std::string& target, std::string_view method = "GET") {
  return app::httpRequest(at, method, target, 5s);
}

std::string metricsOf(TernServer& server) {
  auto r = get(*server.http(), "/metrics");
  REQUIRE(r.ok());
  REQUIRE(r.status == 200);
  return r.body;
}

// The value of the first sample line that starts with `series` (name and labels), or -1.
double sample(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Waits until `text` has appeared `n` times in the process's output.
bool waitForCount(const test::ChildProcess& process, const std::string& text, std::size_t n,
                  std::chrono::milliseconds timeout = 10s) {
  const auto give_up = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < give_up) {
    if (count(process.output(), text) >= n) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

// A REST credential minted with `secret`, valid for an hour.
auth::RestCredential credential(const std::string& secret, const std::string& user) {
  return auth::mintRestCredential(secret, user, static_cast<std::int64_t>(std::time(nullptr)), 3600);
}

struct AllocateResult {
  int code = -1;  // 0: success
  std::string reason;
  std::optional<wire::SocketAddress> alternate;
};

// One Allocate over UDP from 127.0.0.1 with a credential of `secret` (401 retry included).
// The allocation, if made, is left to expire.
AllocateResult allocateWith(const wire::SocketAddress& server, const std::string& secret) {
  const auto c = credential(secret, "ops");
  test::TurnTestClient client({*wire::IpAddress::parse("127.0.0.1"), 0}, server, c.username, c.password, false);
  client.transact([&] { return client.session.allocate({}); });
  const auto view = client.view();
  AllocateResult r;
  if (view.messageClass() == wire::MessageClass::kSuccessResponse) {
    r.code = 0;
    return r;
  }
  if (auto e = view.get<wire::attr::ErrorCode>()) {
    r.code = e->code;
    r.reason = std::string(e->reason);
  }
  if (auto a = view.get<wire::attr::AlternateServer>()) r.alternate = a->address;
  return r;
}

std::vector<std::string> relayArgs(const std::string& secret_file, std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--realm", kRealm, "--auth-secret-file", secret_file, "--relay-ip", "127.0.0.1",
                                "--allow-peer", "127.0.0.0/8", "--metrics-listen", "127.0.0.1:0"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// turnutils_uclient relaying to `peer_port` on kPeerHost with a REST secret; `flags` choose
// transport, count and pace.
test::ChildProcess startUclient(const std::string& secret, std::uint16_t server_port, std::uint16_t peer_port,
                                std::vector<std::string> flags) {
  std::vector<std::string> argv{"/usr/bin/turnutils_uclient", "-W", secret, "-u", "ops", "-e", kPeerHost, "-r",
                                std::to_string(peer_port), "-p", std::to_string(server_port)};
  argv.insert(argv.end(), flags.begin(), flags.end());
  argv.push_back("127.0.0.1");
  return test::ChildProcess(argv);
}

// A directory removed when the test ends.
struct TempDir {
  TempDir() {
    char name[] = "/tmp/tern-ops-XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    path = name;
  }
  ~TempDir() { std::filesystem::remove_all(path); }
  std::string path;
};

}  // namespace

TEST_CASE("the HTTP port answers /metrics, /healthz and /readyz, and nothing else") {
  const std::string secrets = test::temporaryFile("http-secret\n");
  TernServer server(relayArgs(secrets));
  REQUIRE(server.http().has_value());
  const auto at = *server.http();

  auto health = get(at, "/healthz");
  CHECK(health.status == 200);
  CHECK(health.body == "ok\n");
  auto ready = get(at, "/readyz");
  CHECK(ready.status == 200);
  CHECK(ready.body == "ready\n");
  CHECK(get(at, "/readyz", "HEAD").status == 200);
  CHECK(get(at, "/nothing-here").status == 404);
  CHECK(get(at, "/metricsx").status == 404);
  CHECK(get(at, "/drain").status == 405);  // GET: only POST drains

  const std::string text = metricsOf(server);
  CHECK(text.find("# TYPE tern_requests_total counter") != std::string::npos);
  CHECK(text.find("tern_build_info{version=") != std::string::npos);
  CHECK(sample(text, "tern_ready") == 1);
  CHECK(sample(text, "tern_draining") == 0);
  CHECK(sample(text, "process_open_fds") > 5);
  CHECK(sample(text, "process_max_fds") > 0);
  CHECK(text.find("tern_event_loop_lag_seconds{worker=\"1\"}") != std::string::npos);
  // Bounded labels: nothing about a client appears until one shows up, and no address ever.
  CHECK(text.find("127.0.0.1") == std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("a real Prometheus server sees a uclient session's traffic while it runs, and every dashboard query") {
  TempDir dir;
  const std::string secret = "prometheus-secret";
  TernServer server(relayArgs(test::temporaryFile(secret + "\n")));
  test::PrometheusServer prometheus({*server.http()}, dir.path);
  test::EchoPeer peer(kPeerHost);

  // About 12 s of media: 600 messages, 20 ms apart, over channels.
  auto call = startUclient(secret, server.udp().port, peer.port(), {"-n", "600", "-m", "1", "-l", "160", "-z", "20", "-c"});
  std::optional<double> packets, active;
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < give_up && call.running()) {
    packets = prometheus.scalar("sum(tern_relayed_packets_total{job=\"tern\",direction=\"client_to_peer\"})");
    active = prometheus.scalar("sum(tern_allocations_active{job=\"tern\"})");
    if (packets && *packets > 0 && active && *active >= 1) break;
    std::this_thread::sleep_for(250ms);
  }
  // Seen while the call was still running: metrics update live, not when a session ends.
  CHECK(call.running());
  REQUIRE(packets.has_value());
  CHECK(*packets > 0);
  REQUIRE(active.has_value());
  CHECK(*active >= 1);
  CHECK(call.wait(60s) == 0);

  // Every expression of the Grafana dashboard runs on this Prometheus without an error.
  auto exprs = test::runCommand({"/usr/bin/python3", TERN_DEPLOY_DIR "/check_dashboard.py",
                                 TERN_DEPLOY_DIR "/grafana/tern-dashboard.json", "--print-exprs"});
  REQUIRE(exprs.status == 0);
  std::istringstream lines(exprs.output);
  int queries = 0;
  for (std::string expr; std::getline(lines, expr);) {
    if (expr.empty()) continue;
    ++queries;
    const std::string answer = prometheus.query(expr);
    INFO(expr);
    INFO(answer);
    CHECK(answer.find("\"status\":\"success\"") != std::string::npos);
  }
  CHECK(queries > 10);
  // The alert rules loaded and evaluate without errors against tern's real series: every
  // rule reports health "ok" once evaluated (before that, "unknown").
  std::string rules;
  const auto evaluated = std::chrono::steady_clock::now() + 20s;
  do {
    std::this_thread::sleep_for(500ms);
    rules = prometheus.request("/api/v1/rules").body;
  } while (rules.find("\"health\":\"unknown\"") != std::string::npos && std::chrono::steady_clock::now() < evaluated);
  INFO(rules);
  CHECK(rules.find("TernDown") != std::string::npos);
  CHECK(count(rules, "\"health\":\"ok\"") >= 9);
  CHECK(rules.find("\"health\":\"unknown\"") == std::string::npos);
  CHECK(rules.find("\"health\":\"err\"") == std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("SIGHUP under a live stream: no loss, a rotated secret for new allocations, a bad file changes nothing") {
  TempDir dir;
  const std::string secrets = dir.path + "/secrets";
  const std::string config = dir.path + "/tern.toml";
  test::writeFile(secrets, "secret-a\n");
  test::writeFile(config, "log-level = \"debug\"\n");
  TernServer server(relayArgs(secrets, {"--config", config}));
  test::EchoPeer peer(kPeerHost);

  // About 4 s of media, with three reloads in the middle of it.
  auto call = startUclient("secret-a", server.udp().port, peer.port(), {"-n", "200", "-m", "1", "-l", "160", "-z", "20", "-c"});
  REQUIRE(server.process().waitForLine("allocation created").has_value());
  for (std::size_t i = 1; i <= 3; ++i) {
    ::kill(server.process().pid(), SIGHUP);
    REQUIRE(waitForCount(server.process(), "configuration reloaded", i));
    std::this_thread::sleep_for(300ms);
  }
  test::expectNoLoss(call, 200);

  // Rotation: secret-b replaces secret-a; new allocations need the new one.
  CHECK(allocateWith(server.udp(), "secret-a").code == 0);
  test::writeFile(secrets, "secret-b\n");
  ::kill(server.process().pid(), SIGHUP);
  REQUIRE(waitForCount(server.process(), "configuration reloaded", 4));
  CHECK(allocateWith(server.udp(), "secret-a").code == 401);
  CHECK(allocateWith(server.udp(), "secret-b").code == 0);

  // A configuration with a mistake: a clear line naming it, and nothing changes.
  test::writeFile(config, "log-level = \"debug\"\ndeny-peer = [\"not-a-cidr\"]\n");
  test::writeFile(secrets, "secret-c\n");
  ::kill(server.process().pid(), SIGHUP);
  const auto rejected = server.process().waitForLine("configuration reload rejected");
  REQUIRE(rejected.has_value());
  CHECK(rejected->find("not-a-cidr") != std::string::npos);
  CHECK(allocateWith(server.udp(), "secret-b").code == 0);
  CHECK(allocateWith(server.udp(), "secret-c").code == 401);
  const std::string text = metricsOf(server);
  CHECK(sample(text, "tern_config_reloads_total{result=\"success\"}") == 4);
  CHECK(sample(text, "tern_config_reloads_total{result=\"failure\"}") == 1);

  // The log level follows the file: at warn, allocations no longer log their info lines.
  test::writeFile(config, "log-level = \"warn\"\n");
  ::kill(server.process().pid(), SIGHUP);
  REQUIRE(waitForCount(server.process(), "configuration reloaded", 5));
  std::this_thread::sleep_for(200ms);
  const auto before = count(server.process().output(), "allocation created");
  CHECK(allocateWith(server.udp(), "secret-c").code == 0);
  std::this_thread::sleep_for(200ms);
  CHECK(count(server.process().output(), "allocation created") == before);

  // Quotas: a per-user limit below what the user holds refuses the next Allocate (486).
  test::writeFile(config, "log-level = \"warn\"\nmax-allocations-per-user = 1\n");
  ::kill(server.process().pid(), SIGHUP);
  REQUIRE(waitForCount(server.process(), "configuration reloaded", 6));
  CHECK(allocateWith(server.udp(), "secret-c").code == 486);

  // A setting that needs a restart is named, and keeps its running value.
  test::writeFile(config, "log-level = \"info\"\nudp-receive-buffer = \"1M\"\n");
  ::kill(server.process().pid(), SIGHUP);
  const auto restart = server.process().waitForLine("need a restart");
  REQUIRE(restart.has_value());
  CHECK(restart->find("udp-receive-buffer") != std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("SIGTERM drains: readiness fails, new allocations are redirected, the live call finishes, then exit 0") {
  const std::string secret = "drain-secret";
  TernServer server(relayArgs(test::temporaryFile(secret + "\n"),
                              {"--drain-timeout", "60", "--alternate-server", "127.0.0.1:3479",
                               "--alternate-server", "[::1]:3479"}));
  test::EchoPeer peer(kPeerHost);
  // About 5 s of media over TCP; uclient deletes its allocation at the end. It makes a trial
  // allocation first: the drain starts once the second, the real one, exists.
  auto call = startUclient(secret, server.tcp().port, peer.port(), {"-t", "-n", "250", "-m", "1", "-l", "160", "-z", "20", "-c"});
  REQUIRE(waitForCount(server.process(), "allocation created", 2));

  ::kill(server.process().pid(), SIGTERM);
  REQUIRE(server.process().waitForLine(" draining ").has_value());
  const auto ready = get(*server.http(), "/readyz");
  CHECK(ready.status == 503);
  CHECK(ready.body == "draining\n");
  CHECK(get(*server.http(), "/healthz").status == 200);  // alive, just not taking calls
  const std::string text = metricsOf(server);
  CHECK(sample(text, "tern_draining") == 1);
  CHECK(sample(text, "tern_ready") == 0);

  // RFC 8489 §10: 300 Try Alternate with the alternate of the client's family.
  const auto redirected = allocateWith(server.udp(), secret);
  CHECK(redirected.code == 300);
  REQUIRE(redirected.alternate.has_value());
  CHECK(redirected.alternate->toString() == "127.0.0.1:3479");

  // The call carries on to its end with nothing lost; then the relay exits by itself.
  test::expectNoLoss(call, 250);
  CHECK(server.process().wait(15s) == 0);
  CHECK(server.process().output().find("drained: every allocation has ended") != std::string::npos);
  CHECK(server.process().output().find("stopped clean=true") != std::string::npos);
}

TEST_CASE("a drain ends at --drain-timeout, or at once on a second SIGTERM, tern drain starts one") {
  const std::string secret = "timeout-secret";
  const std::string secrets = test::temporaryFile(secret + "\n");
  const std::string admin_token = test::temporaryFile("operations-admin-token\n");
  SUBCASE("the deadline ends the allocations left, with exit 0") {
    TernServer server(relayArgs(secrets, {"--drain-timeout", "1"}));
    REQUIRE(allocateWith(server.udp(), secret).code == 0);
    ::kill(server.process().pid(), SIGTERM);
    CHECK(server.process().wait(10s) == 0);
    CHECK(server.process().output().find("drain timeout: ending the remaining allocations allocations=1") !=
          std::string::npos);
    CHECK(server.process().output().find("reason=shutdown") != std::string::npos);
  }
  SUBCASE("a second SIGTERM does not wait") {
    TernServer server(relayArgs(secrets, {"--drain-timeout", "600"}));
    REQUIRE(allocateWith(server.udp(), secret).code == 0);
    ::kill(server.process().pid(), SIGTERM);
    REQUIRE(server.process().waitForLine(" draining ").has_value());
    CHECK(server.process().running());
    CHECK(server.process().stop(SIGTERM, 5s) == 0);
    CHECK(server.process().output().find("reason=\"second SIGTERM\"") != std::string::npos);
  }
  SUBCASE("tern drain, then the SIGTERM Kubernetes sends after a preStop hook: still draining") {
    TernServer server(
        relayArgs(secrets, {"--drain-timeout", "600", "--admin-token-file", admin_token}));
    REQUIRE(allocateWith(server.udp(), secret).code == 0);
    auto drain = test::runCommand({test::ternBinary(), "drain", "--metrics",
                                   server.http()->toString(), "--admin-token-file", admin_token});
    CHECK(drain.status == 0);
    REQUIRE(server.process().waitForLine(" draining ").has_value());
    ::kill(server.process().pid(), SIGTERM);
    std::this_thread::sleep_for(1s);
    CHECK(server.process().running());  // the call is still protected
    CHECK(get(*server.http(), "/readyz").status == 503);
    CHECK(server.process().stop(SIGTERM, 5s) == 0);  // a second SIGTERM does stop it
  }
  SUBCASE("tern drain --wait, through the HTTP port") {
    TernServer server(
        relayArgs(secrets, {"--drain-timeout", "600", "--admin-token-file", admin_token}));
    auto drain =
        test::runCommand({test::ternBinary(), "drain", "--metrics", server.http()->toString(),
                          "--admin-token-file", admin_token, "--wait", "--timeout", "20"});
    INFO(drain.output);
    CHECK(drain.status == 0);
    CHECK(drain.output.find("stopped") != std::string::npos);
    CHECK(server.process().wait(5s) == 0);
    CHECK(server.process().output().find("source=\"POST /drain\"") != std::string::npos);
  }
}

TEST_CASE("usage records: one JSON line per allocation start and end, with what it relayed each way") {
  const std::string secret = "usage-secret";
  TernServer server(relayArgs(test::temporaryFile(secret + "\n"), {"--log-format", "json"}));
  test::EchoPeer peer(kPeerHost);
  auto call = startUclient(secret, server.tcp().port, peer.port(), {"-t", "-n", "50", "-m", "1", "-l", "160", "-z", "10", "-c"});
  REQUIRE(call.wait(30s) == 0);
  const auto report = test::parseUclientReport(call.output());
  REQUIRE(report.sent == 50);
  // uclient first opens and closes a trial allocation, then makes the one it relays over and
  // deletes it at the end (Refresh with LIFETIME 0).
  const auto ended = server.process().waitForLine("\"reason\":\"deleted\"");
  REQUIRE(ended.has_value());
  INFO(*ended);
  CHECK(ended->find("\"transport\":\"tcp\"") != std::string::npos);
  CHECK(ended->find(":ops\"") != std::string::npos);  // the REST user
  CHECK(ended->find("\"event\":\"allocation ended\"") != std::string::npos);
  CHECK(ended->find("\"packets_to_peer\":50,") != std::string::npos);
  CHECK(ended->find("\"bytes_to_peer\":8000,") != std::string::npos);
  CHECK(ended->find("\"packets_to_client\":" + std::to_string(report.received) + ",") != std::string::npos);
  CHECK(ended->find("\"bytes_to_client\":" + std::to_string(report.received * 160) + "}") != std::string::npos);
  CHECK(ended->find("\"relayed\":\"127.0.0.1:") != std::string::npos);
  // Never a secret or a password.
  CHECK(server.process().output().find(secret) == std::string::npos);
  // The trial allocation's connection may close a moment after uclient exits.
  std::string text;
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  do {
    text = metricsOf(server);
  } while (sample(text, "tern_allocation_duration_seconds_count") < 2 && std::chrono::steady_clock::now() < give_up);
  CHECK(sample(text, "tern_allocations_ended_total{reason=\"deleted\"}") == 1);
  CHECK(sample(text, "tern_allocation_duration_seconds_count") == 2);
  CHECK(sample(text, "tern_relayed_packets_total{direction=\"client_to_peer\",transport=\"tcp\",path=\"user\"}") == 50);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("a flood of refused requests costs a bounded number of log lines, and says how many it left out") {
  const std::string secret = "flood-secret";
  TernServer server(relayArgs(test::temporaryFile(secret + "\n")));
  // Allocates with a forged nonce: each earns a 438 and, at debug level, a "request refused"
  // line, which anyone who can send a datagram could otherwise multiply at will.
  auto forged = [](std::uint8_t n) {
    wire::TransactionId tid{};
    tid[0] = 0xF1;
    tid[1] = n;
    std::vector<std::uint8_t> buf(512);
    wire::MessageBuilder b(buf, wire::Method::kAllocate, wire::MessageClass::kRequest, tid);
    b.add(wire::attr::RequestedTransport{})
        .add(wire::attr::Username{"flood"})
        .add(wire::attr::Realm{kRealm})
        .add(wire::attr::Nonce{"not-a-nonce-tern-issued"})
        .addRaw(static_cast<std::uint16_t>(wire::AttributeType::kMessageIntegrity), std::vector<std::uint8_t>(20, 0));
    buf.resize(b.finish()->size());
    return buf;
  };
  const auto fd = test::connectedSocket(false, {*wire::IpAddress::parse("127.0.0.1"), 0}, server.udp());
  constexpr int kFlood = 250;
  for (int i = 0; i < kFlood; ++i) {
    const auto request = forged(static_cast<std::uint8_t>(i));
    REQUIRE(::send(fd.get(), request.data(), request.size(), 0) == static_cast<ssize_t>(request.size()));
  }
  // Every one of them was answered...
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  double answered = 0;
  while (std::chrono::steady_clock::now() < give_up &&
         (answered = sample(metricsOf(server), "tern_requests_total{method=\"allocate\",code=\"438\"}")) < kFlood) {
    std::this_thread::sleep_for(100ms);
  }
  CHECK(answered == kFlood);
  // ...but the two workers logged at most their bursts (100 each) and counted the rest.
  const std::size_t lines = count(server.process().output(), "request refused");
  CHECK(lines <= 2 * 100 + 10);
  CHECK(lines >= 20);
  CHECK(sample(metricsOf(server), "tern_log_lines_suppressed_total") + static_cast<double>(lines) >= kFlood);
  CHECK(server.process().stop(SIGTERM) == 0);
}
