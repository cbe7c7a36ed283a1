// One connection to Redis on an event loop (issue 22's fleet state): Debian's hiredis, its
// asynchronous API on libuv through hiredis's own adapter. It connects, authenticates and
// selects the database, and when the connection fails or drops it says so and tries again
// with a backoff (0.5 s doubling to 30 s), for as long as it lives. Nothing here blocks: a
// command is queued and its reply comes to a callback on the loop. Fleet state is advisory
// (../shared/DESIGN.md §6): no packet, and no Allocate, ever waits for Redis.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "relay/config/redis_address.hpp"
#include "relay/io/event_loop.hpp"

struct redisAsyncContext;
struct redisReply;

namespace tern::io {


class RedisConnection {
 public:
  // A reply, valid only during the callback; null when the connection went down first.
  using OnReply = std::function<void(const redisReply* reply)>;
  // Up (connected, authenticated, database selected) or down, with why; from the loop.
  using OnState = std::function<void(bool up, const std::string& why)>;

  RedisConnection(EventLoop& loop, config::RedisAddress address, OnState on_state);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  // Connects now (again: after a drop, the backoff does it).
  void start();
  bool up() const noexcept { return up_; }
  // Queues a command; false (and `done` never called) when not up. A SUBSCRIBE's `done` is
  // called for each message until the connection drops (then once with null).
  bool command(const std::vector<std::string>& args, OnReply done = {});
  // Disconnects for good: pending callbacks get null, no reconnect. Before the loop closes,
  // and never from inside one of this connection's callbacks.
  void stop() noexcept;

 private:
  struct Pending;
  static void onConnect(const redisAsyncContext* context, int status);
  static void onDisconnect(const redisAsyncContext* context, int status);
  static void onReply(redisAsyncContext* context, void* reply, void* privdata);
  bool send(const std::vector<std::string>& args, OnReply done);
  void handshake();
  void handshakeStep(std::shared_ptr<std::vector<std::vector<std::string>>> steps, std::size_t i);
  void lost(const std::string& why);
  // The one timer's two uses: the next attempt after a backoff, or the end of an attempt
  // that has not connected in time.
  void retryOrAbandon();

  EventLoop& loop_;
  config::RedisAddress address_;
  OnState on_state_;
  redisAsyncContext* context_ = nullptr;
  bool up_ = false;
  bool stopped_ = false;
  std::string refusal_;  // why the server refused the handshake, for the disconnect's report
  std::chrono::milliseconds backoff_{500};
  OneShotTimer retry_;  // see retryOrAbandon
  // Callbacks hiredis holds a pointer to, until their reply or the disconnect.
  std::list<Pending> pending_;
};

}  // namespace tern::io
