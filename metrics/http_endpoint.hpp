// The operator's HTTP port (--metrics-listen): /metrics for Prometheus, /healthz and /readyz
// for probes, POST /drain for `tern drain`. GNU libmicrohttpd runs it on one event-driven
// (epoll) thread of its own, off every packet path, so slow or idle clients hold a descriptor
// each but never a thread; handlers only read atomics, sum counters and post to the main loop.
#pragma once

#include <prometheus/collectable.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
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
  // A refused admin call, for the log: the client's address and the refusal's reason (a
  // tern_admin_requests_total result). Called on the HTTP thread, at most once a second
  // (`suppressed` says how many refusals went unlogged since the last call).
  std::function<void(std::string_view client, std::string_view result, std::uint64_t suppressed)>
      admin_refused;
};

// Why an admin call (POST /drain) was accepted or refused; each is a result label of
// tern_admin_requests_total.
enum class AdminResult { kAccepted, kNotLoopback, kNoTokenConfigured, kMissingToken, kWrongToken };
inline constexpr std::size_t kAdminResultCount = 5;
std::string_view adminResultName(AdminResult result) noexcept;

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
  // The bearer token admin calls must carry (--admin-token-file); none refuses them all.
  // Thread-safe: a SIGHUP reload swaps it while the HTTP thread reads it.
  void setAdminToken(std::optional<std::string> token);

 private:
  class Access;  // libmicrohttpd's callbacks, with access to the members below
  struct Answer;
  Answer route(std::string_view method, std::string_view path, std::string_view client,
               const char* authorization);
  Answer drain(std::string_view client, const char* authorization);
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
  MHD_Daemon* daemon_ = nullptr;
};

}  // namespace tern::metrics
