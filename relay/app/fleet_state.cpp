// See fleet_state.hpp.
#include "relay/app/fleet_state.hpp"

#include <hiredis/hiredis.h>

#include <charconv>

#include "relay/io/log.hpp"

namespace tern::app {

std::string revocationMessage(const std::string& user, std::int64_t until_unix) {
  return std::to_string(until_unix) + " " + user;
}

std::optional<std::pair<std::string, std::int64_t>> parseRevocationMessage(std::string_view message) {
  const auto space = message.find(' ');
  if (space == std::string_view::npos || space + 1 >= message.size()) return std::nullopt;
  std::int64_t until = 0;
  const auto [end, ec] = std::from_chars(message.data(), message.data() + space, until);
  if (ec != std::errc() || end != message.data() + space) return std::nullopt;
  return std::pair{std::string(message.substr(space + 1)), until};
}

FleetState::FleetState(io::EventLoop& loop, const config::RedisAddress& address,
                       std::shared_ptr<io::RevocationList> revocations, std::function<void(const std::string&)> end_user,
                       metrics::NodeState& state)
    : revocations_(std::move(revocations)),
      end_user_(std::move(end_user)),
      state_(state),
      where_(address.toString()),
      commands_(loop, address, [this](bool up, const std::string& why) { onState("commands", up, why); }),
      subscriber_(loop, address, [this](bool up, const std::string& why) { onState("subscriber", up, why); }) {
  state_.redis_connected = 0;
}

void FleetState::start() {
  commands_.start();
  subscriber_.start();
}

void FleetState::stop() noexcept {
  subscriber_.stop();
  commands_.stop();
}

void FleetState::onState(const char* role, bool up, const std::string& why) {
  const bool both = commands_.up() && subscriber_.up();
  state_.redis_connected = both ? 1 : 0;
  if (!up) {
    ++state_.redis_failures;
    // One line per outage, not one per retry.
    if (!std::exchange(reported_down_, true)) {
      io::log::warn("redis unavailable: revocations reach this node alone until it is back",
                    {{"redis", where_}, {"connection", role}, {"error", why}});
    }
    return;
  }
  if (std::string_view(role) == "subscriber") subscribe();
  if (std::string_view(role) == "commands") loadRevocations("0");
  if (!both) return;
  if (!std::exchange(ever_up_, true) || std::exchange(reported_down_, false)) {
    io::log::info("redis connected", {{"redis", where_}});
  }
}

void FleetState::subscribe() {
  subscriber_.command({"SUBSCRIBE", kRevocationChannel}, [this](const redisReply* reply) {
    // ["message", channel, payload]; the subscription's own confirmation is ["subscribe", ...].
    if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != 3) return;
    const redisReply* kind = reply->element[0];
    const redisReply* payload = reply->element[2];
    if (kind->type != REDIS_REPLY_STRING || std::string_view(kind->str, kind->len) != "message") return;
    if (payload->type != REDIS_REPLY_STRING) return;
    if (auto parsed = parseRevocationMessage({payload->str, payload->len})) {
      apply(parsed->first, parsed->second);
    } else {
      io::log::warn("ignored a malformed revocation message", {{"redis", where_}, {"channel", kRevocationChannel}});
    }
  });
}

// SCAN over tern:revoked:*, a batch at a time (never KEYS: it would stall the server), each
// key's value its end.
void FleetState::loadRevocations(const std::string& cursor) {
  commands_.command({"SCAN", cursor, "MATCH", std::string(kRevokedKeyPrefix) + "*", "COUNT", "500"},
                    [this](const redisReply* reply) {
                      if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) return;
                      const redisReply* keys = reply->element[1];
                      std::vector<std::string> names;
                      for (std::size_t i = 0; i < keys->elements; ++i) {
                        names.emplace_back(keys->element[i]->str, keys->element[i]->len);
                      }
                      if (!names.empty()) {
                        std::vector<std::string> mget{"MGET"};
                        mget.insert(mget.end(), names.begin(), names.end());
                        commands_.command(mget, [this, names](const redisReply* values) {
                          if (values == nullptr || values->type != REDIS_REPLY_ARRAY) return;
                          const std::size_t prefix = std::string_view(kRevokedKeyPrefix).size();
                          for (std::size_t i = 0; i < values->elements && i < names.size(); ++i) {
                            const redisReply* v = values->element[i];
                            if (v->type != REDIS_REPLY_STRING) continue;  // expired meanwhile
                            std::int64_t until = 0;
                            const auto [end, ec] = std::from_chars(v->str, v->str + v->len, until);
                            if (ec == std::errc() && end == v->str + v->len) apply(names[i].substr(prefix), until);
                          }
                        });
                      }
                      const redisReply* next = reply->element[0];
                      const std::string next_cursor(next->str, next->len);
                      if (next_cursor != "0") loadRevocations(next_cursor);
                    });
}

void FleetState::apply(const std::string& user, std::int64_t until_unix) {
  if (until_unix <= io::RevocationList::systemUnixSeconds()) return;
  const bool known = revocations_->revoked(user);
  revocations_->revoke(user, until_unix);
  // A resync after a reconnect reads every revocation again: only news is logged.
  if (!known) io::log::warn("user revoked by the fleet", {{"user", user}, {"until_unix", until_unix}});
  end_user_(user);
}

bool FleetState::shareRevocation(const std::string& user, std::int64_t until_unix) {
  if (!commands_.up()) return false;
  // The key expires with the revocation (EXAT: an absolute second, the same on every node).
  commands_.command({"SET", std::string(kRevokedKeyPrefix) + user, std::to_string(until_unix), "EXAT",
                     std::to_string(until_unix)});
  commands_.command({"PUBLISH", kRevocationChannel, revocationMessage(user, until_unix)});
  return true;
}

}  // namespace tern::app

namespace tern::app {

std::unique_ptr<FleetState> startFleetState(const config::Settings& settings, io::EventLoop& loop,
                                            std::shared_ptr<io::RevocationList> revocations,
                                            const std::vector<std::unique_ptr<io::Worker>>& workers,
                                            metrics::NodeState& state) {
  if (!settings.redis) return nullptr;
  // A revocation from another node ends the user's calls here; each worker answers when it
  // can, and nobody waits for it.
  auto end_user = [&workers](const std::string& user) {
    core::AllocationMatch match;
    match.user = user;
    for (const auto& worker : workers) (void)worker->endAllocations(match, metrics::AllocationEnd::kRevoked);
  };
  auto fleet = std::make_unique<FleetState>(loop, *settings.redis, std::move(revocations), end_user, state);
  fleet->start();
  return fleet;
}

}  // namespace tern::app
