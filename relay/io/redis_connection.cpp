// See redis_connection.hpp.
#include "relay/io/redis_connection.hpp"

#include <uv.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <algorithm>
#include <cctype>

#include "relay/io/log.hpp"

namespace tern::io {

namespace {

constexpr std::chrono::milliseconds kFirstBackoff{500};
constexpr std::chrono::milliseconds kLongestBackoff{30'000};
// A connection attempt that neither succeeds nor fails by then (a host that drops SYNs) is
// abandoned and retried.
constexpr std::uint64_t kConnectTimeoutMs = 5'000;

// hiredis's event hooks on a uv_poll_t. Debian's hiredis 0.14 ships an adapter
// (adapters/libuv.h) that drops every poll error: libuv reports a refused connect or a reset
// as an error status with no events, the adapter returns, and hiredis never learns the
// connection failed, so it never calls back and never reconnects. This one hands hiredis the
// events it waits for, and hiredis reads the error from the socket itself.
struct PollEvents {
  uv_poll_t handle{};
  redisAsyncContext* context = nullptr;
  int events = 0;
};

void onPoll(uv_poll_t* handle, int status, int events) {
  auto* p = static_cast<PollEvents*>(handle->data);
  const int ready = status < 0 ? p->events : events;
  // Each handler may end the context (cleanup clears p->context).
  if (p->context != nullptr && (ready & UV_READABLE) != 0) redisAsyncHandleRead(p->context);
  if (p->context != nullptr && (ready & UV_WRITABLE) != 0) redisAsyncHandleWrite(p->context);
}

void watch(void* privdata, int add, int remove) {
  auto* p = static_cast<PollEvents*>(privdata);
  p->events = (p->events | add) & ~remove;
  if (p->events != 0) {
    uv_poll_start(&p->handle, p->events, &onPoll);
  } else {
    uv_poll_stop(&p->handle);
  }
}

bool attach(redisAsyncContext* c, uv_loop_t* loop) {
  auto* p = new PollEvents;
  if (uv_poll_init(loop, &p->handle, c->c.fd) != 0) {
    delete p;
    return false;
  }
  p->handle.data = p;
  p->context = c;
  c->ev.data = p;
  c->ev.addRead = [](void* d) { watch(d, UV_READABLE, 0); };
  c->ev.delRead = [](void* d) { watch(d, 0, UV_READABLE); };
  c->ev.addWrite = [](void* d) { watch(d, UV_WRITABLE, 0); };
  c->ev.delWrite = [](void* d) { watch(d, 0, UV_WRITABLE); };
  c->ev.cleanup = [](void* d) {
    auto* events = static_cast<PollEvents*>(d);
    events->context = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(&events->handle),
             [](uv_handle_t* h) { delete static_cast<PollEvents*>(h->data); });
  };
  return true;
}

}  // namespace

struct RedisConnection::Pending {
  RedisConnection* owner = nullptr;
  OnReply done;
  bool repeats = false;  // SUBSCRIBE: called per message until the connection drops
  std::list<Pending>::iterator self;
};

RedisConnection::RedisConnection(EventLoop& loop, config::RedisAddress address, OnState on_state)
    : loop_(loop), address_(std::move(address)), on_state_(std::move(on_state)), retry_(loop, [this] { retryOrAbandon(); }) {}

RedisConnection::~RedisConnection() { stop(); }

void RedisConnection::start() {
  if (stopped_ || context_ != nullptr) return;
  redisAsyncContext* c = redisAsyncConnect(address_.host.c_str(), address_.port);
  if (c == nullptr || c->err != 0) {
    const std::string why = c != nullptr ? c->errstr : "out of memory";
    if (c != nullptr) redisAsyncFree(c);
    lost(why);
    return;
  }
  c->data = this;
  if (!attach(c, loop_.get())) {
    redisAsyncFree(c);
    lost("cannot watch the connection's socket");
    return;
  }
  context_ = c;
  redisAsyncSetConnectCallback(c, &RedisConnection::onConnect);
  redisAsyncSetDisconnectCallback(c, &RedisConnection::onDisconnect);
  retry_.start(kConnectTimeoutMs);  // retryOrAbandon() gives the attempt up unless it is up by then
}

void RedisConnection::retryOrAbandon() {
  if (context_ == nullptr) {
    start();
    return;
  }
  if (up_) return;
  // Connecting or handshaking for too long: give this attempt up.
  redisAsyncContext* c = std::exchange(context_, nullptr);
  c->data = nullptr;
  redisAsyncFree(c);
  lost("no answer within " + std::to_string(kConnectTimeoutMs / 1000) + " s");
}

void RedisConnection::onConnect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (self == nullptr) return;
  if (status != REDIS_OK) {
    // hiredis frees the context after this callback.
    self->context_ = nullptr;
    self->lost(context->errstr);
    return;
  }
  self->handshake();
}

// AUTH (with a password), then SELECT (always: it also proves the server answers), then up;
// each step once the one before it answered OK.
void RedisConnection::handshake() {
  auto steps = std::make_shared<std::vector<std::vector<std::string>>>();
  if (!address_.password.empty()) steps->push_back({"AUTH", address_.password});
  steps->push_back({"SELECT", std::to_string(address_.database)});
  handshakeStep(steps, 0);
}

void RedisConnection::handshakeStep(std::shared_ptr<std::vector<std::vector<std::string>>> steps, std::size_t i) {
  if (i == steps->size()) {
    up_ = true;
    backoff_ = kFirstBackoff;
    on_state_(true, "connected");
    return;
  }
  send((*steps)[i], [this, steps, i](const redisReply* reply) {
    if (reply == nullptr) return;  // dropped meanwhile: onDisconnect says why
    if (reply->type == REDIS_REPLY_ERROR) {
      // The server's words only: AUTH's error never repeats the password.
      refusal_ = (*steps)[i][0] + " refused: " + std::string(reply->str, reply->len);
      redisAsyncDisconnect(context_);
      return;
    }
    handshakeStep(steps, i + 1);
  });
}

void RedisConnection::onDisconnect(const redisAsyncContext* context, int status) {
  auto* self = static_cast<RedisConnection*>(context->data);
  if (self == nullptr) return;
  self->context_ = nullptr;
  std::string why = status == REDIS_OK ? "closed" : context->errstr;
  if (!self->refusal_.empty()) why = std::exchange(self->refusal_, {});
  self->lost(why);
}

void RedisConnection::lost(const std::string& why) {
  up_ = false;
  if (stopped_) return;
  on_state_(false, why);
  retry_.start(static_cast<std::uint64_t>(backoff_.count()));
  backoff_ = std::min(backoff_ * 2, kLongestBackoff);
}

bool RedisConnection::command(const std::vector<std::string>& args, OnReply done) {
  if (!up_ || context_ == nullptr) return false;
  return send(args, std::move(done));
}

bool RedisConnection::send(const std::vector<std::string>& args, OnReply done) {
  if (args.empty()) return false;
  Pending& p = pending_.emplace_back();
  p.owner = this;
  p.done = std::move(done);
  p.self = std::prev(pending_.end());
  std::string verb = args[0];
  std::transform(verb.begin(), verb.end(), verb.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  p.repeats = verb == "SUBSCRIBE" || verb == "PSUBSCRIBE";
  std::vector<const char*> argv;
  std::vector<std::size_t> lengths;
  for (const auto& a : args) {
    argv.push_back(a.data());
    lengths.push_back(a.size());
  }
  if (redisAsyncCommandArgv(context_, &RedisConnection::onReply, &p, static_cast<int>(args.size()), argv.data(),
                            lengths.data()) != REDIS_OK) {
    pending_.erase(p.self);
    return false;
  }
  return true;
}

void RedisConnection::onReply(redisAsyncContext* /*context*/, void* reply, void* privdata) {
  auto* p = static_cast<Pending*>(privdata);
  const auto* r = static_cast<const redisReply*>(reply);
  if (r != nullptr && p->repeats) {
    if (p->done) p->done(r);
    return;
  }
  OnReply done = std::move(p->done);
  p->owner->pending_.erase(p->self);
  if (done) done(r);
}

void RedisConnection::stop() noexcept {
  stopped_ = true;
  up_ = false;
  retry_.close();
  if (context_ != nullptr) {
    // Every pending callback runs now with a null reply; the disconnect callback finds no owner.
    redisAsyncContext* c = std::exchange(context_, nullptr);
    c->data = nullptr;
    redisAsyncFree(c);
  }
  pending_.clear();
}

}  // namespace tern::io
