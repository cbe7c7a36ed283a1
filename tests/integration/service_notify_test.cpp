// The systemd notification protocol (sd_notify(3), Type=notify in deploy/systemd/tern.service)
// from a real `tern serve`: the test plays the service manager, listening on a unix datagram
// socket named in $NOTIFY_SOCKET, and checks what tern says at start-up, around a SIGHUP
// reload, and when a drain begins (SIGTERM or `tern drain`) and ends.
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <regex>
#include <string>

#include "relay/app/http_request.hpp"
#include "relay/io/socket_util.hpp"
#include "support/process.hpp"
#include "support/tern_server.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::TernServer;

namespace {

// The service manager's end: a unix datagram socket bound to a fresh path (or an abstract
// name), exported as NOTIFY_SOCKET only while a TernServer is being started.
class FakeServiceManager {
 public:
  explicit FakeServiceManager(bool abstract = false) {
    char dir_template[] = "/tmp/tern-notify-XXXXXX";
    REQUIRE(mkdtemp(dir_template) != nullptr);
    dir_ = dir_template;
    // An abstract name is the directory's unique name behind a NUL, shown as '@'.
    name_ = abstract ? "@" + dir_.substr(dir_.rfind('/') + 1) : dir_ + "/notify";
    fd_ = io::FileDescriptor(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    REQUIRE(static_cast<bool>(fd_));
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::memcpy(address.sun_path, name_.data(), name_.size());
    if (abstract) address.sun_path[0] = '\0';
    const auto length =
        static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name_.size() + (abstract ? 0 : 1));
    REQUIRE(::bind(fd_.get(), reinterpret_cast<const sockaddr*>(&address), length) == 0);
  }
  ~FakeServiceManager() {
    if (name_.front() == '/') ::unlink(name_.c_str());
    ::rmdir(dir_.c_str());
  }
  FakeServiceManager(const FakeServiceManager&) = delete;
  FakeServiceManager& operator=(const FakeServiceManager&) = delete;

  // Starts tern with NOTIFY_SOCKET set; the test's own environment keeps no trace of it.
  std::unique_ptr<TernServer> start(std::vector<std::string> extra) {
    REQUIRE(setenv("NOTIFY_SOCKET", name_.c_str(), 1) == 0);
    std::unique_ptr<TernServer> server;
    try {
      server = std::make_unique<TernServer>(std::move(extra));
    } catch (...) {
      unsetenv("NOTIFY_SOCKET");
      throw;
    }
    unsetenv("NOTIFY_SOCKET");
    return server;
  }

  // The next datagram, or nothing within `timeout`.
  std::optional<std::string> next(std::chrono::milliseconds timeout = 10s) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buffer[4096];
    const ssize_t n = ::recv(fd_.get(), buffer, sizeof buffer, 0);
    if (n < 0) return std::nullopt;
    return std::string(buffer, static_cast<std::size_t>(n));
  }

  // Skips STATUS-only updates until a datagram with `variable` (e.g. "READY=1") arrives.
  std::optional<std::string> nextWith(const std::string& variable,
                                      std::chrono::milliseconds timeout = 10s) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < give_up) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          give_up - std::chrono::steady_clock::now());
      auto message = next(left);
      if (!message) return std::nullopt;
      if (hasLine(*message, variable)) return message;
    }
    return std::nullopt;
  }

  static bool hasLine(const std::string& message, const std::string& line) {
    return ("\n" + message + "\n").find("\n" + line + "\n") != std::string::npos;
  }

 private:
  std::string dir_, name_;
  io::FileDescriptor fd_;
};

int readyzStatus(const TernServer& server) {
  return app::httpRequest(*server.http(), "GET", "/readyz", 5s).status;
}

}  // namespace

TEST_CASE(
    "READY=1 once every listener is bound, RELOADING=1 then READY=1 around SIGHUP (sd_notify)") {
  FakeServiceManager manager;
  auto server = manager.start({"--metrics-listen", "127.0.0.1:0"});

  const auto ready = manager.next();
  REQUIRE(ready);
  CHECK(ready->rfind("READY=1\n", 0) == 0);
  CHECK(ready->find("\nSTATUS=ready: 2 workers") != std::string::npos);
  // Ready means ready: the probe a load balancer would use already agrees.
  CHECK(readyzStatus(*server) == 200);

  REQUIRE(::kill(server->process().pid(), SIGHUP) == 0);
  const auto reloading = manager.next();
  REQUIRE(reloading);
  CHECK(reloading->rfind("RELOADING=1\n", 0) == 0);
  // systemd 253's Type=notify-reload wants the reload's CLOCK_MONOTONIC stamp beside it.
  CHECK(std::regex_search(*reloading, std::regex("\nMONOTONIC_USEC=[1-9][0-9]*\n")));
  const auto reloaded = manager.next();
  REQUIRE(reloaded);
  CHECK(FakeServiceManager::hasLine(*reloaded, "READY=1"));
  CHECK(FakeServiceManager::hasLine(*reloaded, "STATUS=ready: configuration reloaded"));

  CHECK(server->process().stop(SIGINT) == 0);
  const auto stopping = manager.nextWith("STOPPING=1");
  REQUIRE(stopping);
  CHECK(FakeServiceManager::hasLine(*stopping, "STATUS=stopping: SIGINT"));
}

TEST_CASE("a rejected SIGHUP reload still ends with READY=1, so systemctl reload does not hang") {
  FakeServiceManager manager;
  // --auth-secret-file names a file that is there at start and gone at the reload.
  char secret_template[] = "/tmp/tern-notify-secret-XXXXXX";
  const int secret_fd = mkstemp(secret_template);
  REQUIRE(secret_fd >= 0);
  REQUIRE(::write(secret_fd, "s3cret\n", 7) == 7);
  ::close(secret_fd);
  auto server = manager.start({"--auth-secret-file", secret_template});
  REQUIRE(manager.nextWith("READY=1"));
  ::unlink(secret_template);

  REQUIRE(::kill(server->process().pid(), SIGHUP) == 0);
  const auto reloading = manager.next();
  REQUIRE(reloading);
  CHECK(reloading->rfind("RELOADING=1\n", 0) == 0);
  const auto after = manager.next();
  REQUIRE(after);
  CHECK(FakeServiceManager::hasLine(*after, "READY=1"));
  CHECK(after->find("STATUS=ready: the last reload was rejected") != std::string::npos);
  CHECK(server->process().stop(SIGINT) == 0);
}

TEST_CASE("STOPPING=1 when SIGTERM starts a drain, and again when the drained relay stops") {
  FakeServiceManager manager;
  auto server = manager.start({"--metrics-listen", "127.0.0.1:0", "--drain-timeout", "30"});
  REQUIRE(manager.nextWith("READY=1"));

  REQUIRE(::kill(server->process().pid(), SIGTERM) == 0);
  const auto draining = manager.nextWith("STOPPING=1");
  REQUIRE(draining);
  CHECK(draining->find("\nSTATUS=draining: 0 allocations left") != std::string::npos);
  // No allocation to wait for: the drain ends at its first check, well before 30 s.
  const auto stopped = manager.nextWith("STOPPING=1");
  REQUIRE(stopped);
  CHECK(FakeServiceManager::hasLine(*stopped, "STATUS=stopping: drained"));
  CHECK(server->process().wait() == 0);
}

TEST_CASE("STOPPING=1 when tern drain starts the drain, over an abstract NOTIFY_SOCKET") {
  FakeServiceManager manager(/*abstract=*/true);
  const std::string token = test::temporaryFile("notify-admin-token\n");
  auto server = manager.start(
      {"--metrics-listen", "127.0.0.1:0", "--drain-timeout", "30", "--admin-token-file", token});
  REQUIRE(manager.nextWith("READY=1"));

  const auto drain = test::runCommand({test::ternBinary(), "drain", "--metrics",
                                       server->http()->toString(), "--admin-token-file", token});
  REQUIRE(drain.status == 0);
  const auto draining = manager.nextWith("STOPPING=1");
  REQUIRE(draining);
  CHECK(draining->find("STATUS=draining:") != std::string::npos);
  CHECK(server->process().wait() == 0);
}
