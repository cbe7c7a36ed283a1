// Child processes for integration tests: start a real program, read what it prints, stop it
// by its PID (never by name), and never leave it running after the test.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

namespace tern::test {

using namespace std::chrono_literals;

class ChildProcess {
 public:
  // Starts argv[0] (a path) with stdout and stderr going to one temporary file.
  explicit ChildProcess(std::vector<std::string> argv);
  ~ChildProcess();  // SIGKILL by PID if still running
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const noexcept { return pid_; }
  // Everything the process has printed so far.
  std::string output() const;
  // Waits until the output contains `text`; returns the first line containing it.
  std::optional<std::string> waitForLine(const std::string& text,
                                         std::chrono::milliseconds timeout = 10s) const;
  // Sends `signum` and waits for exit; returns the exit status, or -1 on timeout (then kills).
  int stop(int signum, std::chrono::milliseconds timeout = 10s);
  // Waits for the process to exit by itself; exit status, or -1 on timeout (then kills).
  int wait(std::chrono::milliseconds timeout = 10s);
  bool running();

 private:
  pid_t pid_ = -1;
  std::string output_path_;
  int status_ = -1;
};

struct CommandResult {
  int status = -1;  // exit status, or -1 if it had to be killed
  std::string output;
};

// Runs a command to completion (killing it after `timeout`) and captures its output.
CommandResult runCommand(std::vector<std::string> argv, std::chrono::milliseconds timeout = 20s);

// Where the tern executable under test lives: $TERN_TEST_BINARY when set (CI's ThreadSanitizer
// stage runs these tests against its tern without building them a second time), otherwise
// this build tree's, set by CMake.
std::string ternBinary();

}  // namespace tern::test
