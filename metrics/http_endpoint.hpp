// The operator's HTTP port (--metrics-listen): /metrics for Prometheus, /healthz and /readyz
// for probes, POST /drain for `tern drain`, the admin API under /admin/ for `tern admin`. GNU libmicrohttpd runs it on one event-driven
// (epoll) thread of its own, off every packet path, so slow or idle clients hold a descriptor
// each but never a thread; handlers only read atomics, sum counters and post to the main loop.
#pragma once

#include <prometheus/collectable.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct MHD_Daemon;

namespace tern::metrics {

struct HttpHooks {
  // Empty while healthy; otherwise what is wrong, e.g. "worker 1 has not ticked for 7 s".
  std::function<std::string()> health_problem;
  // Empty while accepting new allocations; otherwise why not, e.g. "draining".
  std::function<std::string()> not_ready_reason;
  // An authorised POST /drain. Called on the HTTP thread: must be thread-safe. False when
  // the relay is already stopping.
  std::function<bool()> drain;
  // An authorised POST /upgrade (docs/upgrade.md). Called on the HTTP thread; `reply` may be
  // called from any thread, once, when the upgrade has ended either way (its status and
  // text are the answer). False when the relay is stopping (`reply` is then never called).
  using UpgradeReply = std::function<void(unsigned status, std::string body)>;
  std::function<bool(UpgradeReply reply)> upgrade;
  // An authorised call of the admin API (docs/admin-api.md): a method, a path under /admin/
  // and the query's arguments. Called on the HTTP thread; answers a status and a JSON body.
  struct AdminCall {
    std::string method;
    std::string path;
    std::map<std::string, std::string, std::less<>> args;
  };
  struct AdminAnswer {
    unsigned status = 200;
    std::string json;
  };
  std::function<AdminAnswer(const AdminCall& call)> admin;
  // A refused admin call, for the log: the client's address and the refusal's reason (a
  // tern_admin_requests_total result). Called on the HTTP thread, at most once a second
  // (`suppressed` says how many refusals went unlogged since the last call).
  std::function<void(std::string_view client, std::string_view result, std::uint64_t suppressed)>
      admin_refused;
};

// Why an admin call (POST /drain, POST /upgrade) was accepted or refused; each is a result label of
// tern_admin_requests_total.
enum class AdminResult { kAccepted, kNotLoopback, kNoTokenConfigured, kMissingToken, kWrongToken };
inline constexpr std::size_t kAdminResultCount = 5;
std::string_view adminResultName(AdminResult result) noexcept;

class HttpEndpoint {
 public:
  // `listen` is "IP:PORT" or "[IPv6]:PORT"; port 0 picks a free one. The collectables must
  // outlive the endpoint. Throws std::runtime_error if the address cannot be bound.
  // `listen_fd`: a listening socket to serve on instead of binding `listen` (an upgrade
  // hands the old process's over); the endpoint owns it.
  HttpEndpoint(const std::string& listen, std::vector<const prometheus::Collectable*> collectables,
               HttpHooks hooks, int listen_fd = -1);
  ~HttpEndpoint();
  HttpEndpoint(const HttpEndpoint&) = delete;
  HttpEndpoint& operator=(const HttpEndpoint&) = delete;

  // The port actually bound.
  int port() const;
  // An upgrade: stops accepting connections (those open are served to their end) and
  // returns the listening socket, now the caller's, for the new process; -1 if it cannot.
  int releaseListener() noexcept;
  // The text /metrics serves.
  std::string scrape() const;
  // The bearer token admin calls must carry (--admin-token-file); none refuses them all.
  // Thread-safe: a SIGHUP reload swaps it while the HTTP thread reads it.
  void setAdminToken(std::optional<std::string> token);

 private:
  class Access;  // libmicrohttpd's callbacks, with access to the members below
  struct Answer;
  Answer route(std::string_view method, std::string_view path, std::string_view client,
               const char* authorization, HttpHooks::AdminCall* admin_call);
  Answer drain(std::string_view client, const char* authorization);
  // Why an admin call is refused; nothing when it may go ahead (counted either way).
  std::optional<Answer> refuseAdmin(std::string_view client, const char* authorization);
  // POST /upgrade answers when the upgrade ends: the connection waits suspended meanwhile
  // (Access::upgrade).
  struct PendingAnswer;
  void answerPending(const std::shared_ptr<PendingAnswer>& pending, Answer answer);
  AdminResult authorize(std::string_view client, const char* authorization) const;
  void countAdmin(AdminResult result, std::string_view client);

  std::vector<const prometheus::Collectable*> collectables_;
  HttpHooks hooks_;
  // SHA-256 of the admin token: compared digest to digest in constant time, so neither the
  // token's bytes nor its length show in how long a refusal takes.
  std::atomic<std::shared_ptr<const std::array<std::uint8_t, 32>>> admin_digest_;
  std::array<std::atomic<std::uint64_t>, kAdminResultCount> admin_counts_{};
  // Only the HTTP thread touches these: the refusal log's once-a-second limit.
  std::int64_t last_refusal_log_ns_ = 0;
  std::uint64_t refusals_unlogged_ = 0;
  std::string mhd_message_;  // libmicrohttpd's first error message
  // Answers still awaited by suspended connections: resumed before the daemon stops.
  std::mutex pending_mutex_;
  std::vector<std::shared_ptr<PendingAnswer>> pending_;
  MHD_Daemon* daemon_ = nullptr;
};

}  // namespace tern::metrics
