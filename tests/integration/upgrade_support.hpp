// Helpers for tests that upgrade a running tern in place (docs/upgrade.md): the test becomes
// a subreaper so it can wait for the new process, which it stops by PID; each test upgrades
// its own copy of the binary in a temporary directory; a turnutils_uclient call to an echo
// peer runs across it.
#pragma once

#include <doctest/doctest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <chrono>
#include <filesystem>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include "support/process.hpp"
#include "support/tern_server.hpp"
#include "support/turn_tools.hpp"

namespace tern::test::upgrade {

using namespace std::chrono_literals;

inline constexpr const char* kPeerHost = "127.0.0.2";  // 127.0.0.1 is the relay's own address
inline constexpr const char* kSecret = "upgrade-secret";
inline constexpr const char* kToken = "upgrade-admin-token";

// The new process is the old one's child; once the old one exits it is re-parented to the
// nearest subreaper. Making this test process one lets it reap, and so wait for, the new one.
inline void becomeSubreaper() { REQUIRE(::prctl(PR_SET_CHILD_SUBREAPER, 1) == 0); }

// A process this test did not start but must stop: the new process of an upgrade. Stopped
// by its PID (SIGKILL) if the test ends first.
class AdoptedProcess {
 public:
  explicit AdoptedProcess(pid_t pid) : pid_(pid) {}
  ~AdoptedProcess() {
    if (pid_ > 0 && running()) {
      ::kill(pid_, SIGKILL);
      (void)wait(5s);
    }
  }
  pid_t pid() const noexcept { return pid_; }
  bool running() {
    if (exited_) return false;
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exited_ = true;
      status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      return false;
    }
    // Not yet our child (its parent lives): alive while it can be signalled.
    return r == 0 || ::kill(pid_, 0) == 0;
  }
  int wait(std::chrono::milliseconds timeout) {
    const auto give_up = std::chrono::steady_clock::now() + timeout;
    while (running()) {
      if (std::chrono::steady_clock::now() >= give_up) return -1;
      std::this_thread::sleep_for(20ms);
    }
    return status_;
  }
  int stop(int signum, std::chrono::milliseconds timeout = 15s) {
    if (running()) ::kill(pid_, signum);
    return wait(timeout);
  }

 private:
  pid_t pid_;
  bool exited_ = false;
  int status_ = -1;
};

// A directory removed when the test ends, holding the test's own copy of tern (an upgrade
// starts the binary at that path, so replacing the copy is what a package upgrade does).
struct Workspace {
  Workspace() {
    char name[] = "/tmp/tern-upgrade-XXXXXX";
    REQUIRE(::mkdtemp(name) != nullptr);
    path = name;
    binary = path + "/tern";
    install(ternBinary());
    secrets = temporaryFile(std::string(kSecret) + "\n");
    token = temporaryFile(std::string(kToken) + "\n");
    ::chmod(token.c_str(), 0600);
  }
  ~Workspace() { std::filesystem::remove_all(path); }

  // Puts `from` at the binary's path the way a package manager does: a new file renamed over
  // the old, so the running process keeps its own.
  void install(const std::string& from) const {
    const std::string next = binary + ".new";
    std::filesystem::copy_file(from, next, std::filesystem::copy_options::overwrite_existing);
    std::filesystem::permissions(next, std::filesystem::perms::owner_all);
    std::filesystem::rename(next, binary);
  }
  // A shell script at the binary's path.
  void installScript(const std::string& body) const {
    const std::string script = path + "/script";
    writeFile(script, "#!/bin/sh\n" + body + "\n");
    std::filesystem::permissions(script, std::filesystem::perms::owner_all);
    std::filesystem::rename(script, binary);
  }

  std::vector<std::string> args(std::vector<std::string> extra = {}) const {
    std::vector<std::string> a{"--realm",      "tern.test",          "--auth-secret-file",
                               secrets,        "--relay-ip",         "127.0.0.1",
                               "--allow-peer", "127.0.0.0/8",        "--metrics-listen",
                               "127.0.0.1:0",  "--admin-token-file", token};
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }

  std::string path, binary, secrets, token;
};

// The PID the old process handed over to, from its `upgraded pid=N ...` line.
inline pid_t upgradedPid(const ChildProcess& log, std::size_t nth = 1) {
  const std::regex pattern(" upgraded pid=([0-9]+)");
  for (int tries = 0; tries < 500; ++tries) {
    const std::string text = log.output();
    std::size_t seen = 0;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), pattern);
         it != std::sregex_iterator(); ++it) {
      if (++seen == nth) return static_cast<pid_t>(std::stol((*it)[1].str()));
    }
    std::this_thread::sleep_for(20ms);
  }
  return -1;
}

inline CommandResult ternUpgrade(const Workspace& w, const TernServer& server) {
  return runCommand({ternBinary(), "upgrade", "--metrics", server.http()->toString(),
                     "--admin-token-file", w.token, "--timeout", "60"},
                    90s);
}

// 160-byte media at 20 ms intervals to an echo peer, over UDP unless `transport` says "-t"
// (TCP) or "-t", "-S" (TLS); uclient checks the echoes and deletes its allocation at the end.
inline ChildProcess startCall(std::uint16_t server_port, std::uint16_t peer_port, long messages,
                              std::vector<std::string> transport = {}) {
  std::vector<std::string> argv{"/usr/bin/turnutils_uclient"};
  argv.insert(argv.end(), transport.begin(), transport.end());
  for (const std::string& a :
       {std::string("-W"),           std::string(kSecret),      std::string("-u"),
        std::string("caller"),       std::string("-e"),         std::string(kPeerHost),
        std::string("-r"),           std::to_string(peer_port), std::string("-p"),
        std::to_string(server_port), std::string("-n"),         std::to_string(messages),
        std::string("-m"),           std::string("1"),          std::string("-l"),
        std::string("160"),          std::string("-z"),         std::string("20"),
        std::string("-c"),           std::string("127.0.0.1")}) {
    argv.push_back(a);
  }
  return ChildProcess(argv);
}

inline std::size_t countOf(const std::string& text, const std::string& what) { return test::countOf(text, what); }

// Waits until `text` has appeared `n` times in the process's output.
inline bool waitForCount(const ChildProcess& process, const std::string& text, std::size_t n) {
  const auto give_up = std::chrono::steady_clock::now() + 10s;
  while (std::chrono::steady_clock::now() < give_up) {
    if (countOf(process.output(), text) >= n) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

}  // namespace tern::test::upgrade
