// The operator's HTTP port (--metrics-listen): /metrics for Prometheus, /healthz and /readyz
// for probes, POST /drain for `tern drain`. civetweb (the server prometheus-cpp's own
// exposer is built on) runs it on two threads of its own, off every packet path; handlers
// only read atomics, sum counters and post to the main loop.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <prometheus/collectable.h>

class CivetServer;

namespace tern::metrics {

struct HttpHooks {
  // Empty while healthy; otherwise what is wrong, e.g. "worker 1 has not ticked for 7 s".
  std::function<std::string()> health_problem;
  // Empty while accepting new allocations; otherwise why not, e.g. "draining".
  std::function<std::string()> not_ready_reason;
  // POST /drain from a loopback client. Called on an HTTP thread: must be thread-safe. False
  // when the relay is already stopping.
  std::function<bool()> drain;
};

class HttpEndpoint {
 public:
  // `listen` is "IP:PORT" or "[IPv6]:PORT"; port 0 picks a free one. The collectables must
  // outlive the endpoint. Throws std::runtime_error if the address cannot be bound.
  HttpEndpoint(const std::string& listen, std::vector<const prometheus::Collectable*> collectables,
               HttpHooks hooks);
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // The port actually bound.
  int port() const;
  // The text /metrics serves.
  std::string scrape() const;

 private:
  class Handler;
  std::vector<const prometheus::Collectable*> collectables_;
  HttpHooks hooks_;
  std::vector<std::unique_ptr<Handler>> handlers_;
  std::unique_ptr<CivetServer> server_;
};

}  // namespace tern::metrics
