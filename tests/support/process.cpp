// Child process control for integration tests; see process.hpp.
#include "support/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <thread>

extern char** environ;

namespace tern::test {

ChildProcess::ChildProcess(std::vector<std::string> argv) {
  char path[] = "/tmp/tern-test-output-XXXXXX";
  const int fd = ::mkstemp(path);
  if (fd < 0) throw std::runtime_error("mkstemp failed");
  output_path_ = path;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fd, STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, fd, STDERR_FILENO);
  posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  const int rc = ::posix_spawn(&pid_, args[0], &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fd);
  if (rc != 0) throw std::runtime_error("cannot start " + argv[0]);
}

ChildProcess::~ChildProcess() {
  if (pid_ > 0 && running()) {
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
  }
  if (!output_path_.empty()) ::unlink(output_path_.c_str());
}

std::string ChildProcess::output() const {
  std::ifstream f(output_path_);
  std::stringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

std::optional<std::string> ChildProcess::waitForLine(const std::string& text,
                                                     std::chrono::milliseconds timeout) const {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  do {
    std::istringstream lines(output());
    for (std::string line; std::getline(lines, line);) {
      if (line.find(text) != std::string::npos) return line;
    }
    std::this_thread::sleep_for(20ms);
  } while (std::chrono::steady_clock::now() < deadline);
  return std::nullopt;
}

bool ChildProcess::running() {
  if (status_ != -1 || pid_ <= 0) return false;
  int status = 0;
  const pid_t r = ::waitpid(pid_, &status, WNOHANG);
  if (r == pid_) {
    status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    return false;
  }
  return r == 0;
}

int ChildProcess::wait(std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (running()) {
    if (std::chrono::steady_clock::now() >= deadline) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      status_ = -1;
      pid_ = -1;
      return -1;
    }
    std::this_thread::sleep_for(10ms);
  }
  return status_;
}

int ChildProcess::stop(int signum, std::chrono::milliseconds timeout) {
  if (running()) ::kill(pid_, signum);
  return wait(timeout);
}

CommandResult runCommand(std::vector<std::string> argv, std::chrono::milliseconds timeout) {
  ChildProcess p(std::move(argv));
  CommandResult r;
  r.status = p.wait(timeout);
  r.output = p.output();
  return r;
}

std::string ternBinary() { return TERN_BINARY; }

}  // namespace tern::test
