// Starting an upgrade and ending it either way; see upgrader.hpp.
#include "relay/app/upgrader.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <climits>
#include <csignal>
#include <cstring>

#include "relay/io/log.hpp"

extern char** environ;

namespace tern::app {

namespace {

std::int64_t millisecondsSince(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

CommandLine CommandLine::current(int argc, char** argv) {
  CommandLine c;
  std::array<char, PATH_MAX> path{};
  const ssize_t n = ::readlink("/proc/self/exe", path.data(), path.size() - 1);
  c.executable = n > 0 ? std::string(path.data(), static_cast<std::size_t>(n)) : std::string(argv[0]);
  for (int i = 0; i < argc; ++i) c.arguments.emplace_back(argv[i]);
  return c;
}

Upgrader::Upgrader(io::EventLoop& loop, CommandLine command_line, Hooks hooks, UpgradeTimeouts timeouts)
    : loop_(loop), mailbox_(loop), command_line_(std::move(command_line)), hooks_(std::move(hooks)), timeouts_(timeouts) {}

Upgrader::~Upgrader() {
  if (session_.joinable()) session_.join();
  mailbox_.close();
}

void Upgrader::close() noexcept {
  // An upgrade under way gives up at once (its thread is waiting on the channel), and frozen
  // workers serve on until they stop: the new process never heard COMMIT.
  if (channel_) (void)::shutdown(channel_->fd(), SHUT_RDWR);
  decide(false);
  mailbox_.close();
  child_.reset();
}

std::optional<std::string> Upgrader::refusal() const {
  if (state_ == State::kHandedOver) return "this process has handed over already";
  if (state_ != State::kIdle) return "an upgrade is already in progress";
  return std::nullopt;
}

std::optional<std::string> Upgrader::start(std::string_view source, Done done) {
  if (auto refused = refusal()) return refused;
  auto [channel, child_end] = io::HandOverChannel::pair();
  source_ = source;
  started_ = std::chrono::steady_clock::now();
  try {
    spawn(std::move(child_end));
  } catch (const std::exception& e) {
    return std::string("cannot start ") + command_line_.executable + ": " + e.what();
  }
  spawned_ = true;
  io::log::info(
      "upgrade started",
      {{"source", source_}, {"executable", command_line_.executable}, {"pid", child_pid_}});
  handOver(std::move(channel), std::move(done));
  return std::nullopt;
}

std::optional<std::string> Upgrader::startWithPeer(io::HandOverChannel peer,
                                                   std::string_view source, Done done) {
  if (auto refused = refusal()) return refused;
  source_ = source;
  started_ = std::chrono::steady_clock::now();
  // As the listener saw it (SO_PEERCRED); 0 when it runs in another PID namespace (a pod).
  ucred cred{};
  socklen_t length = sizeof cred;
  child_pid_ = ::getsockopt(peer.fd(), SOL_SOCKET, SO_PEERCRED, &cred, &length) == 0 ? cred.pid : 0;
  spawned_ = false;
  io::log::info("upgrade started", {{"source", source_}, {"pid", child_pid_}});
  handOver(std::move(peer), std::move(done));
  return std::nullopt;
}

void Upgrader::handOver(io::HandOverChannel channel, Done done) {
  channel_.emplace(std::move(channel));
  done_ = std::move(done);
  state_ = State::kHandingOver;
  std::vector<io::Worker*> workers = hooks_.workers();
  if (session_.joinable()) session_.join();
  decision_ = std::promise<bool>();
  decided_ = false;
  // hooks_.node runs on the session's thread: it reads only what is fixed or atomic.
  session_ = std::thread([this, workers = std::move(workers), decision = decision_.get_future().share()] {
    HandOverOutcome outcome = handOverToNew(*channel_, workers, hooks_.node, timeouts_, decision);
    mailbox_.post([this, outcome = std::move(outcome)] { onSessionEnd(outcome); });
  });
}

void Upgrader::spawn(io::FileDescriptor child_end) {
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) env_strings.emplace_back(*e);
  env_strings.push_back(std::string(kHandOverFdVariable) + "=" + std::to_string(kHandOverFd));
  for (auto& extra : hooks_.environment()) env_strings.push_back(std::move(extra));
  std::vector<char*> env;
  for (auto& s : env_strings) env.push_back(s.data());
  env.push_back(nullptr);
  std::vector<std::string> arg_strings{command_line_.executable};
  arg_strings.insert(arg_strings.end(), command_line_.arguments.begin(), command_line_.arguments.end());
  std::vector<char*> args;
  for (auto& s : arg_strings) args.push_back(s.data());
  args.push_back(nullptr);

  uv_stdio_container_t stdio[4];
  for (int i = 0; i < 3; ++i) {
    stdio[i].flags = UV_INHERIT_FD;
    stdio[i].data.fd = i;
  }
  stdio[kHandOverFd].flags = UV_INHERIT_FD;
  stdio[kHandOverFd].data.fd = child_end.get();
  uv_process_options_t options{};
  options.file = arg_strings.front().c_str();
  options.args = args.data();
  options.env = env.data();
  options.stdio = stdio;
  options.stdio_count = 4;
  options.exit_cb = [](uv_process_t* h, std::int64_t status, int signal) {
    if (auto* self = io::ownerOf<Upgrader>(h)) self->onChildExit(status, signal);
  };
  child_.emplace();
  const int rc = uv_spawn(loop_.get(), child_->get(), &options);
  child_->initialized(this);  // uv_spawn initialises the handle even when it fails
  io::checkUv(rc, "uv_spawn");
  child_pid_ = child_->get()->pid;
  child_running_ = true;
}

void Upgrader::onSessionEnd(HandOverOutcome outcome) {
  if (session_.joinable()) session_.join();
  // Thawing workers that never froze does nothing, so a failure either way rolls back.
  if (outcome.taken) {
    commit(outcome);
  } else {
    rollBack(outcome.problem);
  }
}

void Upgrader::commit(const HandOverOutcome& outcome) {
  // Before COMMIT: systemd must know the new process as the unit's main process before
  // that process, released by COMMIT, reports READY=1. A peer is no child of the unit: 0.
  hooks_.handed_over(spawned_ ? child_pid_ : 0);
  const int metrics_fd = hooks_.release_metrics();
  if (auto problem = sendCommit(*channel_, metrics_fd)) {
    // The new process serves the sockets already; without the metrics listener it logs so.
    io::log::error("upgrade: the metrics listener could not be handed over", {{"error", *problem}});
  }
  // The workers close what moved before they read again, so the new process, reading since
  // COMMIT, is the only reader.
  decide(true);
  const std::int64_t frozen_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                                     std::chrono::steady_clock::now() - outcome.frozen_at).count();
  if (metrics_fd >= 0) ::close(metrics_fd);
  channel_.reset();
  state_ = State::kHandedOver;
  io::log::info("upgraded", {{"pid", child_pid_},
                             {"allocations", outcome.allocations},
                             {"descriptors", outcome.descriptors},
                             {"milliseconds", millisecondsSince(started_)},
                             {"frozen_milliseconds", frozen_ms}});
  std::string summary = "upgraded: pid ";
  summary += std::to_string(child_pid_);
  summary += " serves ";
  summary += std::to_string(outcome.allocations);
  summary += " allocations";
  if (done_) std::exchange(done_, nullptr)(true, summary);
}

void Upgrader::rollBack(const std::string& problem) {
  problem_ = problem;
  channel_.reset();
  state_ = State::kRollingBack;
  // The new process must be gone before this one reads the sockets again: two readers
  // would split the clients' packets between them. A peer on the hand-over socket cannot be
  // killed (another pod); it reads nothing without COMMIT and exits once the channel closed.
  if (child_running_) {
    (void)uv_process_kill(child_->get(), SIGKILL);
    return;  // onChildExit finishes
  }
  finishRollBack();
}

void Upgrader::finishRollBack() {
  decide(false);
  for (io::Worker* w : hooks_.workers()) w->endUpgrade();
  state_ = State::kIdle;
  io::log::error("upgrade failed; this process serves on", {{"source", source_}, {"error", problem_}});
  if (done_) std::exchange(done_, nullptr)(false, "upgrade failed: " + problem_);
}

void Upgrader::decide(bool handed_over) noexcept {
  if (std::exchange(decided_, true)) return;
  decision_.set_value(handed_over);
}

void Upgrader::onChildExit(std::int64_t status, int signal) {
  child_running_ = false;
  child_.reset();
  if (state_ == State::kRollingBack) {
    finishRollBack();
    return;
  }
  if (state_ == State::kHandingOver) {
    // The session sees the channel close and ends the upgrade; this says why.
    io::log::warn("upgrade: the new process exited", {{"status", status}, {"signal", signal}});
    return;
  }
  if (state_ == State::kHandedOver) {
    io::log::warn("the process this one handed over to exited", {{"pid", child_pid_}, {"status", status}, {"signal", signal}});
  }
}

}  // namespace tern::app
