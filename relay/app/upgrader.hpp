// When and how the running process upgrades itself (docs/upgrade.md): SIGUSR2 or POST
// /upgrade start the binary now on disk with the same arguments (or a process started beside
// this one connects on the hand-over socket), and the hand-over of upgrade.hpp runs on a
// thread of its own while the main loop serves on. Lives on the main
// loop; every callback below runs there.
#pragma once

#include <sys/types.h>

#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "relay/app/upgrade.hpp"
#include "relay/io/event_loop.hpp"
#include "relay/io/uv_handle.hpp"

namespace tern::app {

// What to start: the path of this process's executable as resolved at start-up (a package
// upgrade replaces the file behind it) and the arguments after the executable's name.
struct CommandLine {
  std::string executable;
  std::vector<std::string> arguments;
  // `argv` of `tern serve`: argv[0] is "serve".
  static CommandLine current(int argc, char** argv);
};

class Upgrader {
 public:
  struct Hooks {
    std::function<std::vector<io::Worker*>()> workers;
    // Called on the hand-over's own thread once the workers are frozen.
    std::function<NodeState()> node;
    // The metrics listener, released by the HTTP endpoint for the new process (-1: none).
    std::function<int()> release_metrics;
    // Everything moved; `pid` serves it now. This process serves what could not move.
    std::function<void(pid_t pid)> handed_over;
    // Extra environment for the new process (NOTIFY_SOCKET=...).
    std::function<std::vector<std::string>()> environment;
  };
  // The end of an upgrade: true and a summary, or false and why not.
  using Done = std::function<void(bool upgraded, const std::string& summary)>;

  Upgrader(io::EventLoop& loop, CommandLine command_line, Hooks hooks, UpgradeTimeouts timeouts);
  ~Upgrader();
  Upgrader(const Upgrader&) = delete;
  Upgrader& operator=(const Upgrader&) = delete;

  // Starts an upgrade by starting the binary on disk as a child; `done` runs when it ends.
  // Why not, if it cannot start (one is under way).
  std::optional<std::string> start(std::string_view source, Done done);
  // The same hand-over to a process that connected on the hand-over socket
  // (hand_over_socket.hpp): not a child, so a failure cannot stop it; it reads nothing
  // without COMMIT and exits when the channel closes.
  std::optional<std::string> startWithPeer(io::HandOverChannel peer, std::string_view source,
                                           Done done);
  bool inProgress() const noexcept { return state_ != State::kIdle && state_ != State::kHandedOver; }
  // The main loop is ending: no more callbacks.
  void close() noexcept;

 private:
  enum class State { kIdle, kHandingOver, kRollingBack, kHandedOver };
  std::optional<std::string> refusal() const;
  void spawn(io::FileDescriptor child_end);
  // The conversation of upgrade.hpp on `channel`, however the new process came.
  void handOver(io::HandOverChannel channel, Done done);
  void onSessionEnd(HandOverOutcome outcome);
  void onChildExit(std::int64_t status, int signal);
  void commit(const HandOverOutcome& outcome);
  void rollBack(const std::string& problem);
  void finishRollBack();
  // Unparks the frozen workers (Worker::freezeForUpgrade): commit (true) or thaw; once.
  void decide(bool handed_over) noexcept;

  io::EventLoop& loop_;
  io::Mailbox mailbox_;
  CommandLine command_line_;
  Hooks hooks_;
  UpgradeTimeouts timeouts_;
  State state_ = State::kIdle;
  Done done_;
  std::string source_;
  std::string problem_;
  std::chrono::steady_clock::time_point started_{};
  std::optional<io::HandOverChannel> channel_;
  std::optional<io::UvHandle<uv_process_t>> child_;
  pid_t child_pid_ = 0;  // the new process: a child, or the peer on the hand-over socket
  bool spawned_ = false;
  bool child_running_ = false;
  std::thread session_;
  std::promise<bool> decision_;
  bool decided_ = true;
};

}  // namespace tern::app
