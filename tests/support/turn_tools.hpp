// Shared pieces of the TURN integration tests: secret files, free ports, coturn's
// turnutils_peer as an echo peer, and turnutils_uclient's closing report.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "support/process.hpp"

namespace tern::test {

// A temporary file holding `contents` (removed when the test program exits).
std::string temporaryFile(std::string_view contents);
// Replaces the contents of `path` (a configuration a test reloads).
void writeFile(const std::string& path, std::string_view contents);
// How often `needle` occurs in `text` (log lines of a process's output).
std::size_t countOf(const std::string& text, const std::string& needle);

// A UDP (TCP) port on `host` that was free a moment ago.
std::uint16_t freeUdpPort(const char* host);
std::uint16_t freeTcpPort(const char* host);

// turnutils_peer echoing UDP on `host`, stopped by PID when this goes away.
class EchoPeer {
 public:
  explicit EchoPeer(const char* host);
  std::uint16_t port() const noexcept { return port_; }

 private:
  std::uint16_t port_;
  std::unique_ptr<ChildProcess> process_;
};

struct UclientReport {
  long sent = -1, received = -1, lost = -1;
  std::string output;
};

// Waits (up to `timeout`) for a uclient call started as a ChildProcess to exit 0, and checks
// its summary: `messages` sent, as many received, none lost.
void expectNoLoss(ChildProcess& call, long messages, std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Runs /usr/bin/turnutils_uclient with `args` and reads its closing summary.
UclientReport runUclient(const std::vector<std::string>& args);
// The same summary, read from a finished uclient's output.
UclientReport parseUclientReport(std::string output);

}  // namespace tern::test
