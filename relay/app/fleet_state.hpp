// Issue 22: this node's part in the fleet state a Redis shared by every node holds
// (docs/fleet.md). Today: revocations. A revocation made on any node (the admin API, or `tern
// revoke --redis` from anywhere) is a key `tern:revoked:<user>` that expires with it and a
// message on `tern:revocations`; every node applies each message as it comes and reads all
// the keys whenever it (re)connects, so a node that was cut off catches up. Redis being down
// changes nothing but reach: revocations made here hold here, and the node reconnects with a
// backoff. Runs on the main loop; nothing on a worker waits for it.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "metrics/node_state.hpp"
#include "relay/config/config.hpp"
#include "relay/config/redis_address.hpp"
#include "relay/io/redis_connection.hpp"
#include "relay/io/revocations.hpp"
#include "relay/io/worker.hpp"

namespace tern::app {

inline constexpr const char* kRevokedKeyPrefix = "tern:revoked:";
inline constexpr const char* kRevocationChannel = "tern:revocations";

// The message every node receives for a revocation: "<until_unix> <user>" (a user name may
// hold spaces; the number never does).
std::string revocationMessage(const std::string& user, std::int64_t until_unix);
std::optional<std::pair<std::string, std::int64_t>> parseRevocationMessage(std::string_view message);

class FleetState {
 public:
  // `end_user`: ends the user's allocations on every worker (called on the main loop).
  FleetState(io::EventLoop& loop, const config::RedisAddress& address, std::shared_ptr<io::RevocationList> revocations,
             std::function<void(const std::string& user)> end_user, metrics::NodeState& state);
  void start();
  // Before the loop closes.
  void stop() noexcept;
  // A revocation made on this node, for every other: false when Redis is down now (the
  // revocation then holds on this node alone).
  bool shareRevocation(const std::string& user, std::int64_t until_unix);

 private:
  void onState(const char* role, bool up, const std::string& why);
  void subscribe();
  void loadRevocations(const std::string& cursor);
  void apply(const std::string& user, std::int64_t until_unix);

  std::shared_ptr<io::RevocationList> revocations_;
  std::function<void(const std::string&)> end_user_;
  metrics::NodeState& state_;
  std::string where_;
  bool reported_down_ = false;
  bool ever_up_ = false;
  io::RedisConnection commands_;
  io::RedisConnection subscriber_;  // SUBSCRIBE takes a connection to itself
};

// The node's fleet state with --redis, connecting; null without it.
std::unique_ptr<FleetState> startFleetState(const config::Settings& settings, io::EventLoop& loop,
                                            std::shared_ptr<io::RevocationList> revocations,
                                            const std::vector<std::unique_ptr<io::Worker>>& workers,
                                            metrics::NodeState& state);

}  // namespace tern::app
