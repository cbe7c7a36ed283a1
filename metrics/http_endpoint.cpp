// See http_endpoint.hpp.
#include "metrics/http_endpoint.hpp"

#include <CivetServer.h>
#include <prometheus/text_serializer.h>

#include <stdexcept>
#include <string_view>

namespace tern::metrics {

namespace {

void reply(mg_connection* conn, int status, std::string_view reason, std::string_view content_type,
           std::string_view body, bool head = false) {
  mg_printf(conn,
            "HTTP/1.1 %d %.*s\r\nContent-Type: %.*s\r\nContent-Length: %zu\r\nCache-Control: no-store\r\n"
            "Connection: close\r\n\r\n",
            status, static_cast<int>(reason.size()), reason.data(), static_cast<int>(content_type.size()),
            content_type.data(), body.size());
  if (!head && !body.empty()) mg_write(conn, body.data(), body.size());
}

void replyText(mg_connection* conn, int status, std::string_view reason, const std::string& body, bool head) {
  reply(conn, status, reason, "text/plain; charset=utf-8", body, head);
}

bool fromLoopback(const mg_connection* conn) {
  const std::string_view from = mg_get_request_info(conn)->remote_addr;
  return from.starts_with("127.") || from == "::1" || from.starts_with("::ffff:127.");
}

}  // namespace

class HttpEndpoint::Handler final : public CivetHandler {
 public:
  enum class Path { kMetrics, kHealth, kReady, kDrain };
  Handler(HttpEndpoint& endpoint, Path path) : endpoint_(endpoint), path_(path) {}

  bool handleGet(CivetServer*, mg_connection* conn) override { return get(conn, false); }
  bool handleHead(CivetServer*, mg_connection* conn) override { return get(conn, true); }
  bool handlePost(CivetServer*, mg_connection* conn) override {
    if (path_ != Path::kDrain) {
      replyText(conn, 405, "Method Not Allowed", "use GET\n", false);
      return true;
    }
    // Anyone who reaches the port could take the node out of service: only local callers
    // (tern drain, a preStop hook) may.
    if (!fromLoopback(conn)) {
      replyText(conn, 403, "Forbidden", "drain is accepted only from a loopback address\n", false);
      return true;
    }
    if (endpoint_.hooks_.drain()) {
      replyText(conn, 202, "Accepted", "draining\n", false);
    } else {
      replyText(conn, 503, "Service Unavailable", "stopping\n", false);
    }
    return true;
  }

 private:
  // A probe's answer: 200 with `fine` when there is no `problem`, else 503 naming it.
  static void probe(mg_connection* conn, const std::string& problem, const char* fine, bool head) {
    if (problem.empty()) {
      replyText(conn, 200, "OK", fine, head);
    } else {
      replyText(conn, 503, "Service Unavailable", problem + "\n", head);
    }
  }

  bool get(mg_connection* conn, bool head) {
    switch (path_) {
      case Path::kMetrics:
        reply(conn, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", endpoint_.scrape(), head);
        return true;
      case Path::kHealth: probe(conn, endpoint_.hooks_.health_problem(), "ok\n", head); return true;
      case Path::kReady: probe(conn, endpoint_.hooks_.not_ready_reason(), "ready\n", head); return true;
      case Path::kDrain:
        replyText(conn, 405, "Method Not Allowed", "use POST\n", head);
        return true;
    }
    return false;
  }

  HttpEndpoint& endpoint_;
  Path path_;
};

HttpEndpoint::HttpEndpoint(const std::string& listen, std::vector<const prometheus::Collectable*> collectables,
                           HttpHooks hooks)
    : collectables_(std::move(collectables)), hooks_(std::move(hooks)) {
  // Two threads: a scrape and a probe at once. No document root: nothing but these paths.
  const std::vector<std::string> options{"listening_ports", listen, "num_threads", "2",
                                         "request_timeout_ms", "10000", "enable_keep_alive", "no"};
  try {
    server_ = std::make_unique<CivetServer>(options);
  } catch (const CivetException& e) {
    throw std::runtime_error("cannot serve metrics on " + listen + ": " + e.what());
  }
  const std::pair<const char*, Handler::Path> paths[] = {{"/metrics", Handler::Path::kMetrics},
                                                         {"/healthz", Handler::Path::kHealth},
                                                         {"/readyz", Handler::Path::kReady},
                                                         {"/drain", Handler::Path::kDrain}};
  for (const auto& [uri, path] : paths) {
    handlers_.push_back(std::make_unique<Handler>(*this, path));
    // "$" anchors the match: /metricsfoo is a 404, not the metrics.
    server_->addHandler(std::string(uri) + "$", handlers_.back().get());
  }
}

HttpEndpoint::~HttpEndpoint() {
  // Joins civetweb's threads before the handlers and hooks they use go away.
  if (server_) server_->close();
}

int HttpEndpoint::port() const {
  const auto ports = server_->getListeningPorts();
  return ports.empty() ? 0 : ports.front();
}

std::string HttpEndpoint::scrape() const {
  std::vector<prometheus::MetricFamily> families;
  for (const auto* c : collectables_) {
    auto more = c->Collect();
    families.insert(families.end(), std::make_move_iterator(more.begin()), std::make_move_iterator(more.end()));
  }
  return prometheus::TextSerializer{}.Serialize(families);
}

}  // namespace tern::metrics
