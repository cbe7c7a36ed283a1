// One libuv loop with the pieces every worker needs: a mailbox other threads may post to
// (the only way into a worker, ../shared/DESIGN.md §1.2) and a clean close that proves no
// handle leaked (uv_loop_close() == 0).
#pragma once

#include <cstddef>

#include <uv.h>

#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "relay/core/five_tuple.hpp"
#include "relay/io/uv_handle.hpp"

namespace tern::io {

class EventLoop {
 public:
  EventLoop();
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  uv_loop_t* get() noexcept { return &loop_; }
  void run();
  // The loop's cached time as a core time point; no system call per packet.
  core::TimePoint now() const noexcept {
    return core::TimePoint{std::chrono::milliseconds{uv_now(&loop_)}};
  }
  // Refreshes the cached time (outside the loop's own turns, e.g. before it first runs).
  void updateTime() noexcept { uv_update_time(&loop_); }
  // libuv handles the loop holds (active or not, closing ones included): one per socket,
  // timer and async, so a count that keeps growing while allocations come and go is a
  // leak. Walks every handle: for a periodic gauge, not the packet path.
  std::size_t handleCount() noexcept;
  // Runs the loop until every closing handle's callback has run, then closes it. Returns
  // uv_loop_close()'s result: 0, or UV_EBUSY if a handle is still open (a leak).
  int close() noexcept;

 private:
  uv_loop_t loop_{};
  bool closed_ = false;
};

// Functions posted from any thread, run on the loop's thread (uv_async_t + a locked queue).
// The lock is held only to swap the queue, never on the packet path.
class Mailbox {
 public:
  explicit Mailbox(EventLoop& loop);
  // Thread-safe. False once the mailbox is closed (the worker is stopping or gone).
  bool post(std::function<void()> task);
  void close() noexcept;

 private:
  void drain();

  UvHandle<uv_async_t> async_;
  std::mutex mutex_;
  std::vector<std::function<void()>> tasks_;
  bool closed_ = false;  // guarded by mutex_, so post() never signals a closed handle
};

// A repeating timer; one per worker drives every expiry (no timer per object).
class RepeatingTimer {
 public:
  RepeatingTimer(EventLoop& loop, std::uint64_t interval_ms, std::function<void()> on_tick);
  void close() noexcept { timer_.close(); }

 private:
  UvHandle<uv_timer_t> timer_;
  std::function<void()> on_tick_;
};

// A timer that fires once per start(); each start() replaces the one before. Where many
// objects wait for different moments, one of these is armed for the earliest (no timer per
// object).
class OneShotTimer {
 public:
  OneShotTimer(EventLoop& loop, std::function<void()> on_fire);
  // False if libuv refused (only for a closed handle).
  bool start(std::uint64_t delay_ms) noexcept;
  void close() noexcept { timer_.close(); }

 private:
  UvHandle<uv_timer_t> timer_;
  std::function<void()> on_fire_;
};

// An object an owner may have to drop while the object is still on the stack (a connection
// that reports its own close from inside its callback). The list link is part of the object,
// so handing it to DeferredDelete can never fail for lack of memory.
class Deferrable {
 public:
  virtual ~Deferrable() = default;

 private:
  friend class DeferredDelete;
  Deferrable* next_deferred_ = nullptr;
};

// Deletes objects on the next loop iteration, before the loop waits for I/O again, once the
// callbacks that handed them over have returned (Envoy's deferredDelete; ../shared/DESIGN.md
// §2). An idle handle runs only while something waits, so an empty list costs nothing.
class DeferredDelete {
 public:
  explicit DeferredDelete(EventLoop& loop);
  ~DeferredDelete();
  DeferredDelete(const DeferredDelete&) = delete;
  DeferredDelete& operator=(const DeferredDelete&) = delete;

  void add(std::unique_ptr<Deferrable> object) noexcept;
  // Closes the handle (the worker is stopping): from now on objects wait for the destructor.
  void close() noexcept;
  std::size_t pending() const noexcept { return pending_; }

 private:
  void deleteAll() noexcept;

  UvHandle<uv_idle_t> idle_;
  Deferrable* head_ = nullptr;
  std::size_t pending_ = 0;
};

}  // namespace tern::io
