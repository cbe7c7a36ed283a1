// The admin API on the HTTP port (docs/admin-api.md): list allocations, end them, revoke a
// user. Calls arrive on the HTTP thread, already authorised (metrics/http_endpoint.cpp);
// each worker lists or ends its own allocations on its thread (io::Worker), and the call
// waits for all of them, at most kWorkerDeadline.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <variant>
#include <vector>

#include "metrics/http_endpoint.hpp"
#include "relay/io/revocations.hpp"
#include "relay/io/worker.hpp"

namespace tern::app {

class AdminApi {
 public:
  // A worker stuck longer than this gets the call a 503 rather than the HTTP thread.
  static constexpr std::chrono::seconds kWorkerDeadline{2};
  // How long a revocation lasts when the call names no `for`: a day, longer than the TURN
  // REST credentials applications usually mint.
  static constexpr std::int64_t kDefaultRevocationSeconds = 86400;

  // `workers` is the server's list: filled before the HTTP port opens, unchanged after.
  AdminApi(const std::vector<std::unique_ptr<io::Worker>>& workers, std::shared_ptr<io::RevocationList> revocations)
      : workers_(workers), revocations_(std::move(revocations)) {}

  metrics::HttpHooks::AdminAnswer handle(const metrics::HttpHooks::AdminCall& call);
  // With --redis: passes a revocation made here on to the fleet (thread-safe: it posts to the
  // main loop); true if it went, false if Redis is down now.
  void shareRevocationsThrough(std::function<bool(const std::string& user, std::int64_t until_unix)> share) {
    share_ = std::move(share);
  }

 private:
  using Answer = metrics::HttpHooks::AdminAnswer;
  using Call = metrics::HttpHooks::AdminCall;
  Answer listAllocations(const Call& call);
  Answer endAllocations(const Call& call);
  Answer revoke(const Call& call);
  Answer lift(const Call& call);
  Answer listRevocations();
  // Ends what `match` names on every worker; the count, or an answer saying what failed.
  std::variant<std::size_t, Answer> endEverywhere(const core::AllocationMatch& match, metrics::AllocationEnd why);

  const std::vector<std::unique_ptr<io::Worker>>& workers_;
  std::shared_ptr<io::RevocationList> revocations_;
  std::function<bool(const std::string&, std::int64_t)> share_;
};

}  // namespace tern::app
