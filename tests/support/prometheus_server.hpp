// A real Prometheus server for integration tests: it scrapes tern nodes every second with
// tern's alert rules loaded, and answers PromQL through its HTTP API. Stopped by PID.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "relay/app/http_request.hpp"
#include "relay/wire/address.hpp"
#include "support/process.hpp"

namespace tern::test {

class NetworkNamespace;

class PrometheusServer {
 public:
  // Scrapes `targets` (job "tern") and keeps its data under `dir`. Without `ns` it listens
  // on a free loopback port; with `ns`, on `listen` inside that namespace, and every query
  // is made from inside it.
  PrometheusServer(const std::vector<wire::SocketAddress>& targets, const std::string& dir,
                   const NetworkNamespace* ns = nullptr, std::optional<wire::SocketAddress> listen = std::nullopt);
  // An operator's configuration file as it is (rule files relative to it), e.g.
  // deploy/prometheus/prometheus.yml; data under `dir`.
  struct ConfigFile {
    std::string path;
  };
  PrometheusServer(const ConfigFile& config, const std::string& dir, const NetworkNamespace* ns = nullptr,
                   std::optional<wire::SocketAddress> listen = std::nullopt);
  ~PrometheusServer();
  PrometheusServer(const PrometheusServer&) = delete;
  PrometheusServer& operator=(const PrometheusServer&) = delete;

  // GET `target` from the HTTP API (path and query).
  app::HttpResponse request(const std::string& target) const;
  // An instant query: the raw JSON answer ("" when Prometheus did not answer).
  std::string query(const std::string& promql) const;
  // The value of a query that yields one sample; nothing while there is no sample yet.
  std::optional<double> scalar(const std::string& promql) const;

 private:
  const NetworkNamespace* ns_;
  wire::SocketAddress address_;
  std::unique_ptr<ChildProcess> process_;

  void start(const std::string& config, const std::string& dir);
};

}  // namespace tern::test
