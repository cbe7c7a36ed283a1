// See tern_server.hpp.
#include "support/tern_server.hpp"

#include <regex>
#include <sstream>
#include <stdexcept>

#include "relay/app/http_request.hpp"
#include "support/netns.hpp"

namespace tern::test {

TernServer::TernServer(std::vector<std::string> extra, const NetworkNamespace* ns, std::string binary) {
  std::vector<std::string> argv{binary.empty() ? ternBinary() : std::move(binary), "serve"};
  bool has_listen = false, has_ports = false, has_drain = false, has_level = false, has_workers = false;
  for (const auto& a : extra) {
    // With a --config file, the file sets the log level (flags would win over it).
    has_level = has_level || a == "--log-level" || a == "--config";
    has_listen = has_listen || a == "--listen";
    has_ports = has_ports || a == "--relay-ports";
    has_drain = has_drain || a == "--drain-timeout";
    has_workers = has_workers || a == "--workers";
  }
  if (!has_workers) extra.insert(extra.begin(), {"--workers", "2"});
  // SIGTERM drains: without a timeout of its own, a test's server stops at once, as tests
  // that end with allocations alive expect.
  if (!has_drain) extra.insert(extra.begin(), {"--drain-timeout", "0"});
  if (!has_level) extra.insert(extra.begin(), {"--log-level", "debug"});
  // In a namespace of its own, the test's addresses and the configuration decide.
  if (!has_listen && !ns) extra.insert(extra.begin(), {"--listen", "127.0.0.1:0"});
  // Port-0 listeners get an ephemeral port (Linux: 32768-60999), which must not fall inside
  // the relay range; above it nothing collides.
  if (!has_ports && !ns) extra.insert(extra.begin(), {"--relay-ports", "61000-65535"});
  bool json = false;
  for (std::size_t i = 0; i + 1 < extra.size(); ++i) json = json || (extra[i] == "--log-format" && extra[i + 1] == "json");
  argv.insert(argv.end(), extra.begin(), extra.end());
  process_ = std::make_unique<ChildProcess>(ns ? ns->command(argv) : argv);
  if (!process_->waitForLine(json ? "\"event\":\"ready\"" : " ready ")) {
    throw std::runtime_error("tern serve did not become ready:\n" + process_->output());
  }
  // Plain: `listening transport=udp address=127.0.0.1:3478`; JSON: the same as fields.
  const std::string event = json ? "\"event\":\"listening\"" : " listening transport=";
  const std::string address_key = json ? "\"address\":\"" : "address=";
  std::istringstream lines(process_->output());
  for (std::string line; std::getline(lines, line);) {
    const auto addr = line.find(address_key);
    if (line.find(event) == std::string::npos || addr == std::string::npos) continue;
    std::string text = line.substr(addr + address_key.size());
    if (json) text = text.substr(0, text.find('"'));
    auto address = wire::SocketAddress::parse(text);
    if (!address) throw std::runtime_error("cannot parse listening line: " + line);
    auto is = [&](const char* transport) {
      return line.find(json ? std::string("\"transport\":\"") + transport + "\"" : std::string("transport=") + transport) !=
             std::string::npos;
    };
    if (is("http")) {
      http_ = *address;
    } else if (is("udp")) {
      udp_.push_back(*address);
    } else if (is("dtls")) {
      dtls_.push_back(*address);
    } else if (is("tls")) {
      tls_.push_back(*address);
    } else {
      tcp_.push_back(*address);
    }
  }
  if (udp_.empty() || tcp_.empty()) throw std::runtime_error("no listeners in:\n" + process_->output());
}

std::uint64_t metricValue(const TernServer& server, const std::string& series) {
  if (!server.http()) throw std::runtime_error("no --metrics-listen to scrape");
  const auto r = app::httpRequest(*server.http(), "GET", "/metrics", std::chrono::seconds(5));
  if (r.status != 200) throw std::runtime_error("GET /metrics answered " + std::to_string(r.status));
  // A whole line: the series, a space, the value (the text format has no timestamps here).
  std::string pattern = "\n";
  pattern.append(std::regex_replace(series, std::regex(R"([{}])"), R"(\$&)")).append(R"( (\d+)\n)");
  std::smatch m;
  if (!std::regex_search(r.body, m, std::regex(pattern))) {
    std::string problem = "no series ";
    problem.append(series).append(" in /metrics");
    throw std::runtime_error(problem);
  }
  return std::stoull(m[1]);
}

}  // namespace tern::test
