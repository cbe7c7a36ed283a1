// See tern_server.hpp.
#include "support/tern_server.hpp"

#include <sstream>
#include <stdexcept>

namespace tern::test {

TernServer::TernServer(std::vector<std::string> extra) {
  std::vector<std::string> argv{ternBinary(), "serve", "--workers", "2", "--log-level", "debug"};
  bool has_listen = false, has_ports = false;
  for (const auto& a : extra) {
    has_listen = has_listen || a == "--listen";
    has_ports = has_ports || a == "--relay-ports";
  }
  if (!has_listen) extra.insert(extra.begin(), {"--listen", "127.0.0.1:0"});
  // Port-0 listeners get an ephemeral port (Linux: 32768-60999), which must not fall inside
  // the relay range; above it nothing collides.
  if (!has_ports) extra.insert(extra.begin(), {"--relay-ports", "61000-65535"});
  argv.insert(argv.end(), extra.begin(), extra.end());
  process_ = std::make_unique<ChildProcess>(argv);
  if (!process_->waitForLine(" ready ")) {
    throw std::runtime_error("tern serve did not become ready:\n" + process_->output());
  }
  std::istringstream lines(process_->output());
  for (std::string line; std::getline(lines, line);) {
    const auto at = line.find(" listening transport=");
    const auto addr = line.find("address=");
    if (at == std::string::npos || addr == std::string::npos) continue;
    auto address = wire::SocketAddress::parse(line.substr(addr + 8));
    if (!address) throw std::runtime_error("cannot parse listening line: " + line);
    if (line.find("transport=udp") != std::string::npos) {
      udp_.push_back(*address);
    } else if (line.find("transport=dtls") != std::string::npos) {
      dtls_.push_back(*address);
    } else if (line.find("transport=tls") != std::string::npos) {
      tls_.push_back(*address);
    } else {
      tcp_.push_back(*address);
    }
  }
  if (udp_.empty() || tcp_.empty()) throw std::runtime_error("no listeners in:\n" + process_->output());
}

}  // namespace tern::test
