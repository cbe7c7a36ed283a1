// See revoke_command.hpp. One blocking exchange with hiredis's synchronous API: this is a
// command-line tool, not the relay.
#include "relay/app/revoke_command.hpp"

#include <hiredis/hiredis.h>

#include <chrono>
#include <iostream>
#include <memory>
#include <vector>

#include "relay/app/fleet_state.hpp"
#include "relay/config/redis_address.hpp"
#include "relay/config/secret_file.hpp"
#include "relay/io/log.hpp"

namespace tern::app {

namespace {

struct ContextFree {
  void operator()(redisContext* c) const noexcept { redisFree(c); }
};
struct ReplyFree {
  void operator()(redisReply* r) const noexcept { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyFree>;

Reply call(redisContext* c, const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  return Reply(static_cast<redisReply*>(
      redisCommandArgv(c, static_cast<int>(args.size()), argv.data(), lengths.data())));
}

// The reply's error, or what went wrong on the connection; empty when it is a good answer.
std::string failure(redisContext* c, const Reply& reply) {
  if (!reply) return c->errstr[0] != '\0' ? c->errstr : "no answer";
  if (reply->type == REDIS_REPLY_ERROR) return std::string(reply->str, reply->len);
  return {};
}

}  // namespace

int runRevoke(const RevokeOptions& options) {
  auto address = config::RedisAddress::parse(options.redis);
  if (!address) {
    std::cerr << "tern revoke: --redis: '" << options.redis << "' is not redis://HOST[:PORT][/DB]\n";
    return 2;
  }
  try {
    if (!options.password_file.empty()) address->password = config::readSecretFile(options.password_file).front();
  } catch (const std::runtime_error& e) {
    std::cerr << "tern revoke: --redis-password-file: " << e.what() << "\n";
    return 2;
  }
  const timeval timeout{5, 0};
  std::unique_ptr<redisContext, ContextFree> c(redisConnectWithTimeout(address->host.c_str(), address->port, timeout));
  if (!c || c->err != 0) {
    std::cerr << "tern revoke: " << address->toString() << ": " << (c ? c->errstr : "out of memory") << "\n";
    return 1;
  }
  redisSetTimeout(c.get(), timeout);
  const auto until = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch()).count() + options.seconds;
  std::vector<std::vector<std::string>> steps;
  if (!address->password.empty()) steps.push_back({"AUTH", address->password});
  steps.push_back({"SELECT", std::to_string(address->database)});
  steps.push_back({"SET", std::string(kRevokedKeyPrefix) + options.user, std::to_string(until), "EXAT",
                   std::to_string(until)});
  steps.push_back({"PUBLISH", kRevocationChannel, revocationMessage(options.user, until)});
  Reply last;
  for (const auto& step : steps) {
    last = call(c.get(), step);
    if (auto why = failure(c.get(), last); !why.empty()) {
      std::cerr << "tern revoke: " << step[0] << ": " << why << "\n";
      return 1;
    }
  }
  std::string json = "{\"user\":";
  io::log::appendJsonString(json, options.user);
  // PUBLISH answers how many subscribers (connected nodes) received it.
  std::cout << json << ",\"until_unix\":" << until
            << ",\"nodes_told\":" << (last->type == REDIS_REPLY_INTEGER ? last->integer : 0) << "}\n";
  return 0;
}

}  // namespace tern::app
