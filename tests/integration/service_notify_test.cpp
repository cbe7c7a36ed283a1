// The systemd notification protocol (sd_notify(3), Type=notify in deploy/systemd/tern.service)
// from a real `tern serve`: the test plays the service manager, listening on a unix datagram
// socket named in $NOTIFY_SOCKET, and checks what tern says at start-up, around a SIGHUP
// reload, and when a drain begins (SIGTERM or `tern drain`) and ends.
#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
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

  // Datagrams sent from now on carry their sender's credentials (SO_PASSCRED), as systemd
  // reads them to tell the main process from others.
  void passCredentials() {
    const int on = 1;
    REQUIRE(::setsockopt(fd_.get(), SOL_SOCKET, SO_PASSCRED, &on, sizeof on) == 0);
  }
  // The next datagram and the PID of the process that sent it (see passCredentials).
  std::optional<std::pair<std::string, pid_t>> nextFrom(std::chrono::milliseconds timeout = 10s) {
    pollfd p{fd_.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(timeout.count())) != 1) return std::nullopt;
    char buffer[4096];
    iovec iov{buffer, sizeof buffer};
    alignas(cmsghdr) char control[CMSG_SPACE(sizeof(ucred))];
    msghdr m{};
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control;
    m.msg_controllen = sizeof control;
    const ssize_t n = ::recvmsg(fd_.get(), &m, 0);
    if (n < 0) return std::nullopt;
    pid_t sender = -1;
    for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
      if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_CREDENTIALS) {
        ucred credentials{};
        std::memcpy(&credentials, CMSG_DATA(c), sizeof credentials);
        sender = credentials.pid;
      }
    }
    return std::make_pair(std::string(buffer, static_cast<std::size_t>(n)), sender);
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

TEST_CASE("an upgrade names the new process MAINPID before that process says READY=1") {
  // The new process is the old one's child; once the old one exits this test reaps it.
  REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0);
  FakeServiceManager manager;
  manager.passCredentials();
  const std::string token = test::temporaryFile("notify-upgrade-token\n");
  auto server = manager.start({"--metrics-listen", "127.0.0.1:0", "--admin-token-file", token});
  const pid_t old_pid = server->process().pid();
  REQUIRE(manager.nextWith("READY=1"));

  const auto upgraded = test::runCommand({test::ternBinary(), "upgrade", "--metrics", server->http()->toString(),
                                          "--admin-token-file", token}, 60s);
  INFO(upgraded.output);
  REQUIRE(upgraded.status == 0);
  // From the old process: RELOADING=1, then MAINPID= naming the new one; from the new one,
  // then the main process: READY=1. systemd (NotifyAccess=main) accepts each only in that order.
  std::vector<std::pair<std::string, pid_t>> seen;
  pid_t new_pid = -1;
  while (auto message = manager.nextFrom(10s)) {
    seen.push_back(*message);
    std::smatch match;
    if (std::regex_search(message->first, match, std::regex("MAINPID=([0-9]+)"))) new_pid = std::stoi(match[1].str());
    if (new_pid > 0 && message->second == new_pid && FakeServiceManager::hasLine(message->first, "READY=1")) break;
  }
  REQUIRE(new_pid > 0);
  CHECK(new_pid != old_pid);
  std::size_t reloading = seen.size(), mainpid = seen.size(), ready = seen.size();
  for (std::size_t i = 0; i < seen.size(); ++i) {
    const auto& [text, sender] = seen[i];
    if (reloading == seen.size() && FakeServiceManager::hasLine(text, "RELOADING=1")) {
      CHECK(sender == old_pid);
      reloading = i;
    }
    if (mainpid == seen.size() && text.find("MAINPID=") != std::string::npos) {
      CHECK(sender == old_pid);
      mainpid = i;
    }
    if (FakeServiceManager::hasLine(text, "READY=1") && sender == new_pid) ready = i;
  }
  CHECK(reloading < mainpid);
  CHECK(mainpid < ready);
  CHECK(ready < seen.size());
  CHECK(server->process().wait(15s) == 0);
  REQUIRE(::kill(new_pid, SIGTERM) == 0);
  int status = 0;
  CHECK(::waitpid(new_pid, &status, 0) == new_pid);
  CHECK(WIFEXITED(status));
}
