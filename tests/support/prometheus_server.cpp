// A real Prometheus server for integration tests; see prometheus_server.hpp.
#include "support/prometheus_server.hpp"

#include <signal.h>

#include <chrono>
#include <fstream>
#include <optional>
#include <regex>
#include <stdexcept>
#include <thread>

#include "support/netns.hpp"
#include "support/turn_tools.hpp"

namespace tern::test {

using namespace std::chrono_literals;

PrometheusServer::PrometheusServer(const std::vector<wire::SocketAddress>& targets, const std::string& dir,
                                   const NetworkNamespace* ns, std::optional<wire::SocketAddress> listen)
    : ns_(ns),
      address_(listen ? *listen : wire::SocketAddress{*wire::IpAddress::parse("127.0.0.1"), freeTcpPort("127.0.0.1")}) {
  std::string list;
  for (const auto& t : targets) list += (list.empty() ? "'" : ", '") + t.toString() + "'";
  const std::string config = dir + "/prometheus.yml";
  {
    std::ofstream out(config, std::ios::trunc);
    out << "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
           "rule_files:\n  - " TERN_DEPLOY_DIR "/prometheus/tern-alerts.yml\n"
           "scrape_configs:\n  - job_name: tern\n    static_configs:\n      - targets: ["
        << list << "]\n";
  }
  start(config, dir);
}

PrometheusServer::PrometheusServer(const ConfigFile& config, const std::string& dir, const NetworkNamespace* ns,
                                   std::optional<wire::SocketAddress> listen)
    : ns_(ns),
      address_(listen ? *listen : wire::SocketAddress{*wire::IpAddress::parse("127.0.0.1"), freeTcpPort("127.0.0.1")}) {
  start(config.path, dir);
}

void PrometheusServer::start(const std::string& config, const std::string& dir) {
  std::vector<std::string> argv{"/usr/bin/prometheus", "--config.file=" + config,
                                "--storage.tsdb.path=" + dir + "/data", "--web.listen-address=" + address_.toString(),
                                "--log.level=warn"};
  process_ = std::make_unique<ChildProcess>(ns_ ? ns_->command(argv) : argv);
  const auto give_up = std::chrono::steady_clock::now() + 30s;
  while (std::chrono::steady_clock::now() < give_up) {
    auto r = request("/-/ready");
    if (r.ok() && r.status == 200) return;
    std::this_thread::sleep_for(200ms);
  }
  throw std::runtime_error("prometheus did not become ready: " + process_->output());
}

PrometheusServer::~PrometheusServer() { process_->stop(SIGTERM); }

app::HttpResponse PrometheusServer::request(const std::string& target) const {
  std::optional<NetworkNamespace::Inside> inside;
  if (ns_) inside.emplace(*ns_);
  return app::httpRequest(address_, "GET", target, 5s);
}

std::string PrometheusServer::query(const std::string& promql) const {
  auto r = request("/api/v1/query?query=" + app::urlEncode(promql));
  return r.ok() ? r.body : std::string();
}

std::optional<double> PrometheusServer::scalar(const std::string& promql) const {
  const std::string body = query(promql);
  std::smatch m;
  if (!std::regex_search(body, m, std::regex(R"re("value":\[[0-9.]+,"([^"]+)"\])re"))) return std::nullopt;
  return std::stod(m[1]);
}

}  // namespace tern::test
