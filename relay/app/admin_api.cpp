// See admin_api.hpp; the paths and their answers are documented in docs/admin-api.md.
#include "relay/app/admin_api.hpp"

#include <future>
#include <string>

#include "relay/core/server_context.hpp"
#include "relay/io/log.hpp"

namespace tern::app {

namespace {

using Answer = metrics::HttpHooks::AdminAnswer;

Answer error(unsigned status, std::string_view why) {
  std::string json = "{\"error\":";
  io::log::appendJsonString(json, why);
  return {status, json + "}\n"};
}

// "IP", "IP:PORT" or "[IPv6]:PORT"; port 0 (or none) matches any port.
std::optional<wire::SocketAddress> addressArgument(std::string_view text) {
  if (auto full = wire::SocketAddress::parse(text)) return full;
  if (auto ip = wire::IpAddress::parse(text)) return wire::SocketAddress{*ip, 0};
  return std::nullopt;
}

// The criteria of a listing or an end; an answer naming the bad one if any does not parse.
std::variant<core::AllocationMatch, Answer> matchOf(const metrics::HttpHooks::AdminCall& call) {
  core::AllocationMatch match;
  if (auto it = call.args.find("user"); it != call.args.end()) {
    if (it->second.empty()) return error(400, "user is empty");
    match.user = it->second;
  }
  for (auto [name, field] : {std::pair{"client", &match.client}, std::pair{"relayed", &match.relayed}}) {
    auto it = call.args.find(name);
    if (it == call.args.end()) continue;
    *field = addressArgument(it->second);
    if (!*field) return error(400, std::string(name) + " is not IP, IP:PORT or [IPv6]:PORT: " + it->second);
  }
  return match;
}

void appendField(std::string& json, std::string_view name, std::uint64_t value) {
  json += ",\"";
  json += name;
  json += "\":";
  json += std::to_string(value);
}

void appendAllocation(std::string& json, unsigned worker, const io::WorkerInventory::Allocation& a) {
  json += "{\"worker\":" + std::to_string(worker) + ",\"username\":";
  io::log::appendJsonString(json, a.username);
  json += ",\"transport\":";
  io::log::appendJsonString(json, metrics::labelOf(core::counterTransport(a.tuple.transport)));
  json += ",\"client\":";
  io::log::appendJsonString(json, a.tuple.client.toString());
  json += ",\"server\":";
  io::log::appendJsonString(json, a.tuple.server.toString());
  json += ",\"relayed\":[";
  for (std::size_t i = 0; i < a.relays.size(); ++i) {
    if (i > 0) json += ',';
    io::log::appendJsonString(json, a.relays[i].relayed.toString());
  }
  json += ']';
  appendField(json, "age_seconds", static_cast<std::uint64_t>(a.age.count()));
  appendField(json, "expires_in_seconds",
              static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::seconds>(a.remaining).count()));
  appendField(json, "permissions", a.permissions);
  appendField(json, "channels", a.channels);
  appendField(json, "tcp_connections", a.connections.size());
  appendField(json, "packets_to_peer", a.usage.packets_to_peer);
  appendField(json, "bytes_to_peer", a.usage.bytes_to_peer);
  appendField(json, "packets_to_client", a.usage.packets_to_client);
  appendField(json, "bytes_to_client", a.usage.bytes_to_client);
  json += '}';
}

// A worker's answer within the deadline; nothing if it is stuck or not running.
template <class T>
std::optional<T> await(std::future<T>& future, std::chrono::steady_clock::time_point deadline) {
  if (future.wait_until(deadline) != std::future_status::ready) return std::nullopt;
  try {
    return future.get();
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

Answer AdminApi::handle(const Call& call) {
  const bool get = call.method == "GET" || call.method == "HEAD";
  const bool post = call.method == "POST";
  if (call.path == "/admin/allocations") return get ? listAllocations(call) : error(405, "use GET");
  if (call.path == "/admin/allocations/end") return post ? endAllocations(call) : error(405, "use POST");
  if (call.path == "/admin/revoke") return post ? revoke(call) : error(405, "use POST");
  if (call.path == "/admin/revocations") return get ? listRevocations() : error(405, "use GET");
  if (call.path == "/admin/revocations/lift") return post ? lift(call) : error(405, "use POST");
  return error(404, "no such admin call: see docs/admin-api.md");
}

Answer AdminApi::listAllocations(const Call& call) {
  auto match = matchOf(call);
  if (auto* bad = std::get_if<Answer>(&match)) return *bad;
  const auto& criteria = std::get<core::AllocationMatch>(match);
  std::vector<std::future<io::WorkerInventory>> asked;
  for (const auto& worker : workers_) asked.push_back(worker->inventory());
  const auto deadline = std::chrono::steady_clock::now() + kWorkerDeadline;
  std::string json = "{\"allocations\":[";
  std::size_t count = 0;
  for (std::size_t w = 0; w < asked.size(); ++w) {
    auto inventory = await(asked[w], deadline);
    if (!inventory) return error(503, "worker " + std::to_string(w) + " did not answer");
    for (const auto& a : inventory->allocations) {
      if (!criteria.matches(a.username, a.tuple.client, a.relays)) continue;
      if (count++ > 0) json += ',';
      appendAllocation(json, inventory->worker, a);
    }
  }
  return {200, json + "],\"count\":" + std::to_string(count) + "}\n"};
}

std::variant<std::size_t, Answer> AdminApi::endEverywhere(const core::AllocationMatch& match,
                                                          metrics::AllocationEnd why) {
  std::vector<std::future<std::size_t>> asked;
  for (const auto& worker : workers_) asked.push_back(worker->endAllocations(match, why));
  const auto deadline = std::chrono::steady_clock::now() + kWorkerDeadline;
  std::size_t ended = 0;
  for (std::size_t w = 0; w < asked.size(); ++w) {
    auto count = await(asked[w], deadline);
    if (!count) return error(503, "worker " + std::to_string(w) + " did not answer");
    ended += *count;
  }
  return ended;
}

Answer AdminApi::endAllocations(const Call& call) {
  auto match = matchOf(call);
  if (auto* bad = std::get_if<Answer>(&match)) return *bad;
  const auto& criteria = std::get<core::AllocationMatch>(match);
  // Ending every call of the node is a drain's job, not a typo's.
  if (!criteria.any()) return error(400, "name the allocations to end: user, client or relayed");
  auto ended = endEverywhere(criteria, metrics::AllocationEnd::kEndedByAdmin);
  if (auto* failed = std::get_if<Answer>(&ended)) return *failed;
  io::log::info("allocations ended by admin", {{"count", std::get<std::size_t>(ended)}});
  return {200, "{\"ended\":" + std::to_string(std::get<std::size_t>(ended)) + "}\n"};
}

Answer AdminApi::revoke(const Call& call) {
  const auto user = call.args.find("user");
  if (user == call.args.end() || user->second.empty()) return error(400, "revoke needs user");
  std::int64_t seconds = kDefaultRevocationSeconds;
  if (auto it = call.args.find("for"); it != call.args.end()) {
    try {
      std::size_t used = 0;
      seconds = std::stoll(it->second, &used);
      if (used != it->second.size() || seconds <= 0) throw std::invalid_argument("for");
    } catch (const std::exception&) {
      return error(400, "for is a positive number of seconds: " + it->second);
    }
  }
  // Refused first, ended after: an Allocate between the two cannot slip through.
  const std::int64_t until = revocations_->revoke(user->second, io::RevocationList::systemUnixSeconds() + seconds);
  // The fleet's nodes (--redis) end the user's calls as this one does; without Redis now, the
  // revocation holds here alone, and the answer says so.
  const char* fleet = !share_ ? "none" : share_(user->second, until) ? "shared" : "redis_down";
  core::AllocationMatch match;
  match.user = user->second;
  auto ended = endEverywhere(match, metrics::AllocationEnd::kRevoked);
  if (auto* failed = std::get_if<Answer>(&ended)) return *failed;
  const auto count = std::get<std::size_t>(ended);
  io::log::warn("user revoked",
                {{"user", user->second}, {"until_unix", until}, {"allocations_ended", count}, {"fleet", fleet}});
  std::string json = "{\"user\":";
  io::log::appendJsonString(json, user->second);
  return {200, json + ",\"until_unix\":" + std::to_string(until) + ",\"ended\":" + std::to_string(count) +
                   ",\"fleet\":\"" + fleet + "\"}\n"};
}

Answer AdminApi::lift(const Call& call) {
  const auto user = call.args.find("user");
  if (user == call.args.end() || user->second.empty()) return error(400, "lift needs user");
  const bool lifted = revocations_->lift(user->second);
  if (lifted) io::log::info("revocation lifted", {{"user", user->second}});
  return {200, std::string("{\"lifted\":") + (lifted ? "true" : "false") + "}\n"};
}

Answer AdminApi::listRevocations() {
  std::string json = "{\"revocations\":[";
  bool first = true;
  for (const auto& entry : revocations_->list()) {
    if (!first) json += ',';
    first = false;
    json += "{\"user\":";
    io::log::appendJsonString(json, entry.user);
    json += ",\"until_unix\":" + std::to_string(entry.until_unix) + '}';
  }
  return {200, json + "]}\n"};
}

}  // namespace tern::app
