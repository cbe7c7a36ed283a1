// See turn_tools.hpp.
#include "support/turn_tools.hpp"

#include <fstream>

#include <doctest/doctest.h>

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <regex>
#include <stdexcept>

#include "relay/io/socket_util.hpp"

namespace tern::test {

void writeFile(const std::string& path, std::string_view contents) {
  std::ofstream out(path, std::ios::trunc);
  out << contents;
  if (!out) throw std::runtime_error("writing " + path + " failed");
}

std::size_t countOf(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (auto at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) ++n;
  return n;
}

std::string temporaryFile(std::string_view contents) {
  char name[] = "/tmp/tern-test-file-XXXXXX";
  const int fd = ::mkstemp(name);
  if (fd < 0) throw std::runtime_error("mkstemp failed");
  const bool written = ::write(fd, contents.data(), contents.size()) == static_cast<ssize_t>(contents.size());
  ::close(fd);
  if (!written) throw std::runtime_error("writing a temporary file failed");
  static std::vector<std::string> files;
  static const bool cleanup = [] {
    std::atexit([] {
      for (const auto& f : files) ::unlink(f.c_str());
    });
    return true;
  }();
  (void)cleanup;
  files.emplace_back(name);
  return name;
}

std::uint16_t freeUdpPort(const char* host) {
  auto fd = io::openBoundSocket(io::SocketKind::kUdp, {*wire::IpAddress::parse(host), 0}, {});
  return io::localAddress(fd.get()).port;
}

std::uint16_t freeTcpPort(const char* host) {
  auto fd = io::openBoundSocket(io::SocketKind::kTcp, {*wire::IpAddress::parse(host), 0}, {});
  return io::localAddress(fd.get()).port;
}

EchoPeer::EchoPeer(const char* host)
    : port_(freeUdpPort(host)),
      process_(std::make_unique<ChildProcess>(
          std::vector<std::string>{"/usr/bin/turnutils_peer", "-L", host, "-p", std::to_string(port_)})) {
  usleep(200 * 1000);  // it prints nothing when ready; give it a moment to bind
}

UclientReport parseUclientReport(std::string output) {
  UclientReport r;
  r.output = std::move(output);
  std::smatch m;
  if (std::regex_search(r.output, m, std::regex(R"(Total lost packets (\d+))"))) r.lost = std::stol(m[1]);
  // The closing summary line (earlier lines are running totals per interval).
  if (std::regex_search(r.output, m, std::regex(R"(start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+))"))) {
    r.sent = std::stol(m[1]);
    r.received = std::stol(m[2]);
  }
  return r;
}

void expectNoLoss(ChildProcess& call, long messages, std::chrono::milliseconds timeout) {
  REQUIRE(call.wait(timeout) == 0);
  const auto report = parseUclientReport(call.output());
  INFO(report.output);
  CHECK(report.sent == messages);
  CHECK(report.received == messages);
  CHECK(report.lost == 0);
}

UclientReport runUclient(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"/usr/bin/turnutils_uclient"};
  argv.insert(argv.end(), args.begin(), args.end());
  return parseUclientReport(runCommand(argv, std::chrono::seconds(60)).output);
}

}  // namespace tern::test
