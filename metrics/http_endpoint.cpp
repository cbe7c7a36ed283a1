// See http_endpoint.hpp. RFC 9110 §15 for the status codes, RFC 6750 §3 for the bearer
// token challenge.
#include "metrics/http_endpoint.hpp"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <prometheus/text_serializer.h>
#include <strings.h>

#include <chrono>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "auth/crypto.hpp"
#include "relay/wire/address.hpp"

namespace tern::metrics {

namespace {

// An idle or trickling client costs one descriptor and no thread; these bound how many
// descriptors, and for how long a client that has stopped sending keeps one. Prometheus
// and the probes need a handful at once, all answered within milliseconds.
constexpr unsigned kIdleTimeoutSeconds = 5;
constexpr unsigned kConnectionLimit = 256;
constexpr unsigned kConnectionsPerAddress = 32;

constexpr const char* kText = "text/plain; charset=utf-8";
constexpr const char* kMetricsText = "text/plain; version=0.0.4; charset=utf-8";
constexpr const char* kJson = "application/json";

auth::Sha256Digest digestOf(std::string_view text) {
  return auth::sha256(
      {auth::Bytes(reinterpret_cast<const std::uint8_t*>(text.data()), text.size())});
}

std::string addressText(const sockaddr* address) {
  char text[INET6_ADDRSTRLEN] = "?";
  if (address == nullptr) return text;
  if (address->sa_family == AF_INET) {
    ::inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(address)->sin_addr, text,
                sizeof text);
  } else if (address->sa_family == AF_INET6) {
    ::inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(address)->sin6_addr, text,
                sizeof text);
  }
  return text;
}

bool isLoopback(std::string_view address) {
  return address.starts_with("127.") || address == "::1" || address.starts_with("::ffff:127.");
}

std::int64_t steadyNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// libmicrohttpd's own messages (a bind failure, an error on a connection): the first is kept
// for the exception a failed start-up throws; the rest are dropped, as civetweb's were.
void keepMessage(void* cls, const char* format, va_list args) {
  char text[512];
  std::vsnprintf(text, sizeof text, format, args);
  auto* last = static_cast<std::string*>(cls);
  if (last->empty()) *last = text;
}

}  // namespace

std::string_view adminResultName(AdminResult result) noexcept {
  switch (result) {
    case AdminResult::kAccepted:
      return "accepted";
    case AdminResult::kNotLoopback:
      return "not_loopback";
    case AdminResult::kNoTokenConfigured:
      return "no_token_configured";
    case AdminResult::kMissingToken:
      return "missing_token";
    case AdminResult::kWrongToken:
      return "wrong_token";
  }
  return "unknown";
}

struct HttpEndpoint::Answer {
  unsigned status = 200;
  std::string body;
  const char* content_type = kText;
  bool challenge = false;  // add WWW-Authenticate: Bearer (RFC 6750 §3)
};

struct HttpEndpoint::PendingAnswer {
  MHD_Connection* connection = nullptr;
  bool done = false;  // guarded by the endpoint's pending_mutex_
  Answer answer;
};

class HttpEndpoint::Access {
 public:
  // Answers on the first call, once the headers are in: no path takes a body, and every
  // answer closes the connection, so MHD never reads one. POST /upgrade alone answers later.
  static MHD_Result onRequest(void* cls, MHD_Connection* connection, const char* url,
                              const char* method, const char* /*version*/,
                              const char* /*upload_data*/, std::size_t* /*upload_size*/,
                              void** state) {
    auto* self = static_cast<HttpEndpoint*>(cls);
    const MHD_ConnectionInfo* info =
        MHD_get_connection_info(connection, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    const std::string client = addressText(info != nullptr ? info->client_addr : nullptr);
    const char* authorization =
        MHD_lookup_connection_value(connection, MHD_HEADER_KIND, "Authorization");
    if (std::string_view(url) == "/upgrade" && std::string_view(method) == "POST") {
      return upgrade(*self, connection, client, authorization, state);
    }
    HttpHooks::AdminCall call;
    if (std::string_view(url).starts_with("/admin/")) {
      MHD_get_connection_values(connection, MHD_GET_ARGUMENT_KIND, &collectArgument, &call.args);
    }
    return queueAnswer(connection, self->route(method, url, client, authorization, &call));
  }

  // The query's arguments, decoded by MHD; a repeated one keeps its first value.
  static MHD_Result collectArgument(void* cls, MHD_ValueKind /*kind*/, const char* key, const char* value) {
    auto* args = static_cast<std::map<std::string, std::string, std::less<>>*>(cls);
    args->try_emplace(key, value != nullptr ? value : "");
    return MHD_YES;
  }

  static MHD_Result queueAnswer(MHD_Connection* connection, const Answer& answer) {
    MHD_Response* response = MHD_create_response_from_buffer(answer.body.size(), const_cast<char*>(answer.body.data()),
                                                             MHD_RESPMEM_MUST_COPY);
    if (response == nullptr) return MHD_NO;  // out of memory: MHD drops the connection
    MHD_add_response_header(response, "Content-Type", answer.content_type);
    MHD_add_response_header(response, "Cache-Control", "no-store");
    // One request per connection, as before: a client cannot park on a kept-alive socket.
    MHD_add_response_header(response, "Connection", "close");
    if (answer.challenge)
      MHD_add_response_header(response, "WWW-Authenticate", "Bearer realm=\"tern admin\"");
    // MHD sends HEAD answers without their body, Content-Length included.
    const MHD_Result queued = MHD_queue_response(connection, answer.status, response);
    MHD_destroy_response(response);
    return queued;
  }

  // MHD is done with a connection: a POST /upgrade whose client left before its answer still
  // holds its state.
  static void onCompleted(void* cls, MHD_Connection* /*connection*/, void** state,
                          MHD_RequestTerminationCode /*why*/) {
    if (state == nullptr || *state == nullptr) return;
    auto* self = static_cast<HttpEndpoint*>(cls);
    auto* pending = static_cast<std::shared_ptr<PendingAnswer>*>(*state);
    {
      std::lock_guard lock(self->pending_mutex_);
      std::erase(self->pending_, *pending);
    }
    delete pending;
    *state = nullptr;
  }

  // First call: authorise, suspend the connection, start the upgrade. The reply resumes it,
  // and MHD calls again with `state` set: the answer goes out.
  static MHD_Result upgrade(HttpEndpoint& self, MHD_Connection* connection, const std::string& client,
                            const char* authorization, void** state) {
    if (*state != nullptr) {
      auto* pending = static_cast<std::shared_ptr<PendingAnswer>*>(*state);
      Answer answer;
      {
        std::lock_guard lock(self.pending_mutex_);
        answer = (*pending)->answer;
        std::erase(self.pending_, *pending);
      }
      delete pending;
      *state = nullptr;
      return queueAnswer(connection, answer);
    }
    if (auto refused = self.refuseAdmin(client, authorization)) return queueAnswer(connection, *refused);
    auto pending = std::make_shared<PendingAnswer>();
    pending->connection = connection;
    {
      std::lock_guard lock(self.pending_mutex_);
      self.pending_.push_back(pending);
    }
    *state = new std::shared_ptr<PendingAnswer>(pending);
    MHD_suspend_connection(connection);
    auto reply = [&self, pending](unsigned status, std::string body) { self.answerPending(pending, {status, std::move(body)}); };
    if (!self.hooks_.upgrade || !self.hooks_.upgrade(reply)) reply(503, "stopping\n");
    return MHD_YES;
  }
};

void HttpEndpoint::answerPending(const std::shared_ptr<PendingAnswer>& pending, Answer answer) {
  std::lock_guard lock(pending_mutex_);
  if (pending->done) return;
  pending->done = true;
  pending->answer = std::move(answer);
  MHD_resume_connection(pending->connection);
}

HttpEndpoint::Answer HttpEndpoint::route(std::string_view method, std::string_view path,
                                         std::string_view client, const char* authorization,
                                         HttpHooks::AdminCall* admin_call) {
  const bool get = method == "GET" || method == "HEAD";
  // A probe's answer: 200 with `fine` when there is no problem, else 503 naming it.
  auto probe = [](const std::string& problem, const char* fine) {
    return problem.empty() ? Answer{200, fine} : Answer{503, problem + "\n"};
  };
  if (path == "/drain") {
    if (method != "POST") return {405, "use POST\n"};
    return drain(client, authorization);
  }
  if (path == "/upgrade") return {405, "use POST\n"};  // POST is Access::upgrade
  if (path.starts_with("/admin/")) {
    if (auto refused = refuseAdmin(client, authorization)) return *refused;
    if (!hooks_.admin) return {404, "not found\n"};
    admin_call->method = method;
    admin_call->path = path;
    auto answer = hooks_.admin(*admin_call);
    return {answer.status, std::move(answer.json), kJson};
  }
  if (path != "/metrics" && path != "/healthz" && path != "/readyz") return {404, "not found\n"};
  if (!get) return {405, "use GET\n"};
  if (path == "/metrics") return {200, scrape(), kMetricsText};
  if (path == "/healthz") return probe(hooks_.health_problem(), "ok\n");
  return probe(hooks_.not_ready_reason(), "ready\n");
}

HttpEndpoint::Answer HttpEndpoint::drain(std::string_view client, const char* authorization) {
  if (auto refused = refuseAdmin(client, authorization)) return *refused;
  if (hooks_.drain()) return {202, "draining\n"};
  return {503, "stopping\n"};
}

std::optional<HttpEndpoint::Answer> HttpEndpoint::refuseAdmin(std::string_view client, const char* authorization) {
  const AdminResult result = authorize(client, authorization);
  countAdmin(result, client);
  switch (result) {
    case AdminResult::kAccepted:
      return std::nullopt;
    case AdminResult::kNotLoopback:
      return Answer{403, "admin calls are accepted only from a loopback address\n"};
    case AdminResult::kNoTokenConfigured:
      return Answer{403, "admin calls are disabled: start tern with --admin-token-file to enable them\n"};
    case AdminResult::kMissingToken:
    case AdminResult::kWrongToken: {
      Answer refused{401,
                     "an admin call needs Authorization: Bearer <the --admin-token-file token>\n"};
      refused.challenge = true;
      return refused;
    }
  }
  return std::nullopt;
}

AdminResult HttpEndpoint::authorize(std::string_view client, const char* authorization) const {
  // Anyone who reaches the port could take the node out of service. The token is what
  // authenticates; loopback stays required as well, so a leaked token is of no use from
  // another host (tern drain and preStop hooks run beside the relay).
  if (!isLoopback(client)) return AdminResult::kNotLoopback;
  const auto expected = admin_digest_.load();
  if (!expected) return AdminResult::kNoTokenConfigured;
  constexpr std::string_view kScheme = "Bearer ";
  if (authorization == nullptr) return AdminResult::kMissingToken;
  std::string_view presented(authorization);
  // RFC 6750 §2.1: the scheme name is case-insensitive.
  if (presented.size() < kScheme.size() ||
      ::strncasecmp(presented.data(), kScheme.data(), kScheme.size()) != 0) {
    return AdminResult::kMissingToken;
  }
  presented.remove_prefix(kScheme.size());
  const auto digest = digestOf(presented);
  return auth::constantTimeEqual(digest, *expected) ? AdminResult::kAccepted
                                                    : AdminResult::kWrongToken;
}

void HttpEndpoint::countAdmin(AdminResult result, std::string_view client) {
  admin_counts_[static_cast<std::size_t>(result)].fetch_add(1, std::memory_order_relaxed);
  if (result == AdminResult::kAccepted || !hooks_.admin_refused) return;
  // A caller guessing tokens must not flood the log: one line a second, with a count.
  const std::int64_t now = steadyNs();
  if (last_refusal_log_ns_ != 0 && now - last_refusal_log_ns_ < 1'000'000'000) {
    ++refusals_unlogged_;
    return;
  }
  last_refusal_log_ns_ = now;
  hooks_.admin_refused(client, adminResultName(result), std::exchange(refusals_unlogged_, 0));
}

void HttpEndpoint::setAdminToken(std::optional<std::string> token) {
  admin_digest_.store(token ? std::make_shared<const std::array<std::uint8_t, 32>>(digestOf(*token))
                            : nullptr);
}

HttpEndpoint::HttpEndpoint(const std::string& listen,
                           std::vector<const prometheus::Collectable*> collectables,
                           HttpHooks hooks, int listen_fd)
    : collectables_(std::move(collectables)), hooks_(std::move(hooks)) {
  const auto address = wire::SocketAddress::parse(listen);
  if (!address) throw std::runtime_error("cannot serve metrics on " + listen + ": not ADDR:PORT");
  sockaddr_storage bind_to{};
  // MHD_USE_ITC: releaseListener's MHD_quiesce_daemon needs it with an internal thread.
  unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_ITC |
                   MHD_ALLOW_SUSPEND_RESUME;
  if (address->ip.isV4()) {
    auto* v4 = reinterpret_cast<sockaddr_in*>(&bind_to);
    v4->sin_family = AF_INET;
    v4->sin_port = htons(address->port);
    std::memcpy(&v4->sin_addr, address->ip.data(), 4);
  } else {
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&bind_to);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(address->port);
    std::memcpy(&v6->sin6_addr, address->ip.data(), 16);
    flags |= MHD_USE_IPv6;
  }
  daemon_ = MHD_start_daemon(
      flags, address->port, nullptr, nullptr, &Access::onRequest, this, MHD_OPTION_SOCK_ADDR,
      reinterpret_cast<sockaddr*>(&bind_to), MHD_OPTION_CONNECTION_TIMEOUT, kIdleTimeoutSeconds,
      MHD_OPTION_CONNECTION_LIMIT, kConnectionLimit, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
      kConnectionsPerAddress, MHD_OPTION_EXTERNAL_LOGGER, &keepMessage, &mhd_message_,
      // MHD_INVALID_SOCKET (-1) lets libmicrohttpd bind MHD_OPTION_SOCK_ADDR itself.
      MHD_OPTION_LISTEN_SOCKET, static_cast<MHD_socket>(listen_fd), MHD_OPTION_NOTIFY_COMPLETED,
      &Access::onCompleted, this, MHD_OPTION_END);
  if (daemon_ == nullptr) {
    throw std::runtime_error("cannot serve metrics on " + listen + ": " +
                             (mhd_message_.empty() ? "libmicrohttpd refused" : mhd_message_));
  }
}

HttpEndpoint::~HttpEndpoint() {
  // MHD may not stop with a connection suspended: answer whatever still waits.
  {
    std::lock_guard lock(pending_mutex_);
    for (const auto& pending : pending_) {
      if (pending->done) continue;
      pending->done = true;
      pending->answer = {503, "stopping\n"};
      MHD_resume_connection(pending->connection);
    }
  }
  // Joins the HTTP thread before the hooks and collectables it uses go away.
  if (daemon_ != nullptr) MHD_stop_daemon(daemon_);
}

int HttpEndpoint::releaseListener() noexcept {
  if (daemon_ == nullptr) return -1;
  const MHD_socket fd = MHD_quiesce_daemon(daemon_);
  return fd == MHD_INVALID_SOCKET ? -1 : static_cast<int>(fd);
}

int HttpEndpoint::port() const {
  const MHD_DaemonInfo* info = MHD_get_daemon_info(daemon_, MHD_DAEMON_INFO_BIND_PORT);
  return info != nullptr ? info->port : 0;
}

std::string HttpEndpoint::scrape() const {
  std::vector<prometheus::MetricFamily> families;
  for (const auto* c : collectables_) {
    auto more = c->Collect();
    families.insert(families.end(), std::make_move_iterator(more.begin()),
                    std::make_move_iterator(more.end()));
  }
  prometheus::MetricFamily admin;
  admin.name = "tern_admin_requests_total";
  admin.help =
      "Admin calls (POST /drain) on the HTTP port, by whether they were accepted or why not";
  admin.type = prometheus::MetricType::Counter;
  for (std::size_t i = 0; i < kAdminResultCount; ++i) {
    prometheus::ClientMetric m;
    m.label.push_back({"result", std::string(adminResultName(static_cast<AdminResult>(i)))});
    m.counter.value = static_cast<double>(admin_counts_[i].load(std::memory_order_relaxed));
    admin.metric.push_back(std::move(m));
  }
  families.push_back(std::move(admin));
  return prometheus::TextSerializer{}.Serialize(families);
}

}  // namespace tern::metrics
