// The operator's HTTP port under hostile clients, against a real `tern serve`: slow clients
// that trickle partial requests must not delay the liveness and readiness probes (issue 18,
// item 3); admin calls need the --admin-token-file bearer token, reloaded on SIGHUP (item 9).
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "relay/app/http_request.hpp"
#include "relay/io/socket_util.hpp"
#include "support/process.hpp"
#include "support/tern_server.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::TernServer;

namespace {

// A TCP connection from `source` (any 127/8 address: each is another client IP to the
// server's per-address limit) to `server`, or an invalid descriptor.
io::FileDescriptor connectFrom(const std::string& source, const wire::SocketAddress& server) {
  io::FileDescriptor fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return fd;
  sockaddr_storage from{};
  const socklen_t from_length = io::toSockaddr({*wire::IpAddress::parse(source), 0}, from);
  sockaddr_storage to{};
  const socklen_t to_length = io::toSockaddr(server, to);
  if (::bind(fd.get(), reinterpret_cast<const sockaddr*>(&from), from_length) != 0 ||
      ::connect(fd.get(), reinterpret_cast<const sockaddr*>(&to), to_length) != 0) {
    return {};
  }
  return fd;
}

app::HttpResponse drainWith(const wire::SocketAddress& at,
                            std::optional<std::string> authorization) {
  app::HttpHeaders headers;
  if (authorization) headers.emplace_back("Authorization", *authorization);
  return app::httpRequest(at, "POST", "/drain", 5s, headers);
}

std::uint64_t adminRequests(const TernServer& server, const std::string& result) {
  return test::metricValue(server, "tern_admin_requests_total{result=\"" + result + "\"}");
}

app::HttpResponse get(const wire::SocketAddress& at, const std::string& target) {
  return app::httpRequest(at, "GET", target, 5s);
}

}  // namespace

TEST_CASE(
    "probes answer within 1 s while 100 slow clients trickle partial requests and /metrics is "
    "scraped") {
  TernServer server({"--metrics-listen", "127.0.0.1:0"});
  const auto at = *server.http();
  // 100 slowloris connections from ten addresses (ten each): each sends the start of a
  // request, then a header byte every 0.5 s, and never finishes it.
  std::vector<io::FileDescriptor> slow;
  for (int i = 0; i < 100; ++i) {
    auto fd = connectFrom("127.0.0." + std::to_string(2 + i % 10), at);
    REQUIRE(fd);
    const std::string_view start = "GET /metrics HTTP/1.1\r\nHost: tern\r\nX-Slow: ";
    CHECK(::send(fd.get(), start.data(), start.size(), MSG_NOSIGNAL) ==
          static_cast<ssize_t>(start.size()));
    slow.push_back(std::move(fd));
  }
  std::atomic<bool> done{false};
  std::thread trickle([&] {
    while (!done) {
      // The server may close one (a limit, a timeout): that is its right, not a failure.
      for (auto& fd : slow) ::send(fd.get(), "a", 1, MSG_NOSIGNAL | MSG_DONTWAIT);
      for (int i = 0; i < 10 && !done; ++i) std::this_thread::sleep_for(50ms);
    }
  });
  std::atomic<int> scrapes{0};
  std::thread scraper([&] {
    while (!done) {
      if (app::httpRequest(at, "GET", "/metrics", 5s).status == 200) ++scrapes;
    }
  });

  const auto until = std::chrono::steady_clock::now() + 4s;
  int probes = 0;
  std::chrono::milliseconds slowest{0};
  while (std::chrono::steady_clock::now() < until) {
    for (const char* path : {"/healthz", "/readyz"}) {
      const auto start = std::chrono::steady_clock::now();
      // A 3 s client timeout, as the shipped liveness probe has: the 1 s bound is checked
      // on the measured time so a slow answer shows how slow it was.
      const auto answer = app::httpRequest(at, "GET", path, 3s);
      const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::steady_clock::now() - start);
      INFO(std::string(path), ": ", answer.error, " after ", took.count(), " ms");
      CHECK(answer.status == 200);
      slowest = std::max(slowest, took);
      ++probes;
    }
    std::this_thread::sleep_for(100ms);
  }
  done = true;
  trickle.join();
  scraper.join();
  INFO("slowest probe answer: ", slowest.count(), " ms over ", probes, " probes");
  CHECK(slowest < 1s);
  CHECK(probes >= 10);
  CHECK(scrapes > 0);
  slow.clear();
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "POST /drain without the admin token or with a wrong one gets 401, with the right one 202") {
  const std::string token = "right-admin-token-0123456789";
  TernServer server(
      {"--metrics-listen", "127.0.0.1:0", "--admin-token-file", test::temporaryFile(token + "\n")});
  const auto at = *server.http();

  const auto missing = drainWith(at, std::nullopt);
  CHECK(missing.status == 401);
  // RFC 6750 §3: the refusal names the scheme the caller must use.
  CHECK(missing.head.find("\r\nwww-authenticate: bearer") != std::string::npos);
  CHECK(drainWith(at, "Bearer wrong-admin-token-0123456789").status == 401);
  CHECK(drainWith(at, "Bearer " + token.substr(0, token.size() - 1)).status == 401);  // a prefix
  CHECK(drainWith(at, "Basic " + token).status == 401);
  CHECK(adminRequests(server, "missing_token") == 2);
  CHECK(adminRequests(server, "wrong_token") == 2);
  CHECK(get(at, "/readyz").status == 200);  // none of them drained
  CHECK(server.process().output().find(
            "admin call refused client=127.0.0.1 result=missing_token") != std::string::npos);
  CHECK(server.process().output().find(token) == std::string::npos);

  const auto accepted = drainWith(at, "Bearer " + token);
  CHECK(accepted.status == 202);
  CHECK(accepted.body == "draining\n");
  CHECK(server.process().wait(10s) == 0);
  CHECK(server.process().output().find("source=\"POST /drain\"") != std::string::npos);
}

TEST_CASE(
    "without --admin-token-file POST /drain gets 403 naming the option, and SIGTERM still drains") {
  TernServer server({"--metrics-listen", "127.0.0.1:0"});
  const auto refused = drainWith(*server.http(), "Bearer any-token-at-all-0123456789");
  CHECK(refused.status == 403);
  CHECK(refused.body.find("--admin-token-file") != std::string::npos);
  CHECK(adminRequests(server, "no_token_configured") == 1);
  CHECK(server.process().stop(SIGTERM) == 0);
  CHECK(server.process().output().find("source=SIGTERM") != std::string::npos);
}

TEST_CASE(
    "a replaced admin token file takes over on SIGHUP: the old token gets 401, tern drain with the "
    "new one drains") {
  const std::string old_token = "the-old-admin-token-0123456789";
  const std::string new_token = "the-new-admin-token-9876543210";
  const std::string path = test::temporaryFile(old_token + "\n");
  TernServer server(
      {"--metrics-listen", "127.0.0.1:0", "--admin-token-file", path, "--drain-timeout", "60"});
  const auto at = *server.http();
  auto rewrite = [&](const std::string& contents) {
    std::ofstream(path, std::ios::trunc) << contents;
  };

  // A token too short to keep out guessing is refused: the running one stays.
  rewrite("short\n");
  ::kill(server.process().pid(), SIGHUP);
  REQUIRE(server.process().waitForLine("configuration reload rejected").has_value());
  CHECK(server.process().output().find("at least 16 characters") != std::string::npos);

  rewrite(new_token + "\n");
  ::kill(server.process().pid(), SIGHUP);
  REQUIRE(server.process().waitForLine("configuration reloaded").has_value());
  CHECK(drainWith(at, "Bearer " + old_token).status == 401);
  CHECK(get(at, "/readyz").status == 200);

  const auto drain = test::runCommand({test::ternBinary(), "drain", "--metrics", at.toString(),
                                       "--admin-token-file", path, "--wait", "--timeout", "20"});
  INFO(drain.output);
  CHECK(drain.status == 0);
  CHECK(server.process().wait(10s) == 0);
  CHECK(server.process().output().find(new_token) == std::string::npos);
}

TEST_CASE(
    "an admin token file that is missing or too short stops start-up, and --print-config shows "
    "only its path") {
  const std::string short_file = test::temporaryFile("too-short\n");
  auto refused = test::runCommand({test::ternBinary(), "serve", "--admin-token-file", short_file});
  CHECK(refused.status == 2);
  CHECK(refused.output.find("admin-token-file: '" + short_file +
                            "': the token on its first line must be at least 16") !=
        std::string::npos);
  CHECK(test::runCommand({test::ternBinary(), "serve", "--admin-token-file", "/nonexistent/token"})
            .status == 2);

  const std::string token = "printed-never-0123456789";
  const std::string file = test::temporaryFile("  " + token + "  \r\nsecond line ignored\n");
  auto printed =
      test::runCommand({test::ternBinary(), "serve", "--admin-token-file", file, "--print-config"});
  CHECK(printed.status == 0);
  CHECK(printed.output.find(file) != std::string::npos);
  CHECK(printed.output.find(token) == std::string::npos);
  // tern drain refuses to send a token it cannot read, before any request.
  auto drain = test::runCommand(
      {test::ternBinary(), "drain", "--metrics", "127.0.0.1:9", "--admin-token-file", short_file});
  CHECK(drain.status == 2);
}
