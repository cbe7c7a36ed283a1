// A signal (SIGHUP, SIGTERM, ...) delivered to the main loop, owned as RAII (uv_handle.hpp).
#pragma once

#include "relay/io/event_loop.hpp"
#include "relay/io/uv_handle.hpp"

namespace tern::app {

class SignalWatcher {
 public:
  SignalWatcher(io::EventLoop& loop, int signum, void (*on_signal)(uv_signal_t*, int), void* owner) {
    io::checkUv(uv_signal_init(loop.get(), handle_.get()), "uv_signal_init");
    handle_.initialized(owner);
    io::checkUv(uv_signal_start(handle_.get(), on_signal, signum), "uv_signal_start");
  }
  void close() noexcept { handle_.close(); }

 private:
  io::UvHandle<uv_signal_t> handle_;
};

}  // namespace tern::app
