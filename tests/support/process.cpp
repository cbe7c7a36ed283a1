// Child process control for integration tests; see process.hpp.
#include "support/process.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
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
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  // fork + exec rather than posix_spawn, for the parent-death signal: a test binary that
  // aborts (a sanitizer report, a crash) takes its servers and clients with it instead of
  // leaving them running. exec's failure comes back through a close-on-exec pipe. Between
  // fork and exec the child makes only async-signal-safe calls.
  int report[2];
  if (::pipe2(report, O_CLOEXEC) != 0) {
    ::close(fd);
    throw std::runtime_error("pipe2 failed");
  }
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ == 0) {
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);  // the parent died before prctl took effect
    const int null = ::open("/dev/null", O_RDONLY);
    if (null < 0 || ::dup2(null, STDIN_FILENO) < 0 || ::dup2(fd, STDOUT_FILENO) < 0 ||
        ::dup2(fd, STDERR_FILENO) < 0) {
      ::_exit(127);
    }
    ::close(null);
    ::close(fd);
    ::execve(args[0], args.data(), environ);
    const int error = errno;
    (void)!::write(report[1], &error, sizeof error);
    ::_exit(127);
  }
  ::close(report[1]);
  ::close(fd);
  if (pid_ < 0) {
    ::close(report[0]);
    throw std::runtime_error("fork failed for " + argv[0]);
  }
  int exec_error = 0;
  const ssize_t n = ::read(report[0], &exec_error, sizeof exec_error);
  ::close(report[0]);
  if (n == static_cast<ssize_t>(sizeof exec_error)) {
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(exec_error));
  }
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

std::string ternBinary() {
  const char* chosen = std::getenv("TERN_TEST_BINARY");
  return chosen != nullptr && *chosen != '\0' ? chosen : TERN_BINARY;
}

}  // namespace tern::test
