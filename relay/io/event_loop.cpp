// Event loop, mailbox and timer; see event_loop.hpp.
#include "relay/io/event_loop.hpp"

#include "relay/io/log.hpp"

namespace tern::io {

EventLoop::EventLoop() { checkUv(uv_loop_init(&loop_), "uv_loop_init"); }

EventLoop::~EventLoop() {
  if (!closed_) close();
}

void EventLoop::run() { checkUv(uv_run(&loop_, UV_RUN_DEFAULT), "uv_run"); }

std::size_t EventLoop::handleCount() noexcept {
  std::size_t n = 0;
  uv_walk(&loop_, [](uv_handle_t*, void* count) { ++*static_cast<std::size_t*>(count); }, &n);
  return n;
}

int EventLoop::close() noexcept {
  if (closed_) return 0;
  // Closing handles finish on the next loop iteration; let them.
  uv_run(&loop_, UV_RUN_DEFAULT);
  const int rc = uv_loop_close(&loop_);
  if (rc != 0) {
    uv_walk(
        &loop_,
        [](uv_handle_t* h, void*) {
          log::error("handle still open at loop close", {{"type", uv_handle_type_name(h->type)}});
        },
        nullptr);
    return rc;
  }
  closed_ = true;
  return 0;
}

Mailbox::Mailbox(EventLoop& loop) {
  checkUv(uv_async_init(loop.get(), async_.get(),
                        [](uv_async_t* h) {
                          if (auto* self = ownerOf<Mailbox>(h)) self->drain();
                        }),
          "uv_async_init");
  async_.initialized(this);
}

bool Mailbox::post(std::function<void()> task) {
  std::lock_guard lock(mutex_);
  if (closed_) return false;
  tasks_.push_back(std::move(task));
  uv_async_send(async_.get());
  return true;
}

void Mailbox::close() noexcept {
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
  }
  async_.close();
}

void Mailbox::drain() {
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard lock(mutex_);
    tasks.swap(tasks_);
  }
  for (auto& task : tasks) task();
}

RepeatingTimer::RepeatingTimer(EventLoop& loop, std::uint64_t interval_ms,
                               std::function<void()> on_tick)
    : on_tick_(std::move(on_tick)) {
  checkUv(uv_timer_init(loop.get(), timer_.get()), "uv_timer_init");
  timer_.initialized(this);
  checkUv(uv_timer_start(
              timer_.get(),
              [](uv_timer_t* h) {
                if (auto* self = ownerOf<RepeatingTimer>(h)) self->on_tick_();
              },
              interval_ms, interval_ms),
          "uv_timer_start");
}

OneShotTimer::OneShotTimer(EventLoop& loop, std::function<void()> on_fire) : on_fire_(std::move(on_fire)) {
  checkUv(uv_timer_init(loop.get(), timer_.get()), "uv_timer_init");
  timer_.initialized(this);
}

bool OneShotTimer::start(std::uint64_t delay_ms) noexcept {
  if (!timer_) return false;
  return uv_timer_start(
             timer_.get(),
             [](uv_timer_t* h) {
               if (auto* self = ownerOf<OneShotTimer>(h)) self->on_fire_();
             },
             delay_ms, 0) == 0;
}

DeferredDelete::DeferredDelete(EventLoop& loop) {
  checkUv(uv_idle_init(loop.get(), idle_.get()), "uv_idle_init");
  idle_.initialized(this);
}

void DeferredDelete::add(std::unique_ptr<Deferrable> object) noexcept {
  if (!object) return;
  Deferrable* raw = object.release();
  raw->next_deferred_ = head_;
  head_ = raw;
  ++pending_;
  if (!idle_) return;  // closed: the destructor deletes it
  // Starting a started idle handle does nothing; it cannot fail on an open handle.
  uv_idle_start(idle_.get(), [](uv_idle_t* h) {
    if (auto* self = ownerOf<DeferredDelete>(h)) {
      uv_idle_stop(h);
      self->deleteAll();
    }
  });
}

void DeferredDelete::deleteAll() noexcept {
  // A destructor may defer more objects; they join the list and the loop runs again.
  while (head_ != nullptr) {
    Deferrable* object = std::exchange(head_, nullptr);
    while (object != nullptr) {
      Deferrable* next = object->next_deferred_;
      delete object;
      --pending_;
      object = next;
    }
  }
}

void DeferredDelete::close() noexcept { idle_.close(); }

DeferredDelete::~DeferredDelete() {
  idle_.close();
  deleteAll();
}

}  // namespace tern::io
