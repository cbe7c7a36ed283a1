// RAII ownership of libuv handles (libuv docs/src/handle.rst): the handle lives on the heap
// until its close callback has run, because libuv may still touch it after uv_close(). On
// close, data is set to null first, so every callback trampoline that checks data ignores
// events for an owner that is gone (the mediasoup worker does the same).
#pragma once

#include <uv.h>

#include <stdexcept>
#include <string>
#include <utility>

namespace tern::io {

// Throws for libuv errors at set-up time; the packet path checks return values instead.
inline void checkUv(int rc, const char* what) {
  if (rc < 0) throw std::runtime_error(std::string(what) + ": " + uv_strerror(rc));
}

template <class T>
class UvHandle {
 public:
  UvHandle() : handle_(new T{}) {}
  ~UvHandle() { close(); }
  UvHandle(const UvHandle&) = delete;
  UvHandle& operator=(const UvHandle&) = delete;
  UvHandle(UvHandle&& other) noexcept
      : handle_(std::exchange(other.handle_, nullptr)),
        initialized_(std::exchange(other.initialized_, false)) {}

  T* get() const noexcept { return handle_; }
  uv_handle_t* base() const noexcept { return reinterpret_cast<uv_handle_t*>(handle_); }
  T* operator->() const noexcept { return handle_; }
  explicit operator bool() const noexcept { return handle_ != nullptr; }

  // Call right after a successful uv_*_init, so close() knows uv_close() is needed.
  void initialized(void* owner) noexcept {
    initialized_ = true;
    handle_->data = owner;
  }

  void close() noexcept {
    if (handle_ == nullptr) return;
    T* h = std::exchange(handle_, nullptr);
    if (!initialized_) {
      delete h;
      return;
    }
    h->data = nullptr;
    auto* base = reinterpret_cast<uv_handle_t*>(h);
    if (uv_is_closing(base)) return;  // someone else closed it; its callback frees nothing here
    uv_close(base, [](uv_handle_t* closed) { delete reinterpret_cast<T*>(closed); });
  }

 private:
  T* handle_;
  bool initialized_ = false;
};

// Recovers the owner in a callback; null once the owner has closed the handle.
template <class Owner, class H>
Owner* ownerOf(H* handle) noexcept {
  return static_cast<Owner*>(handle->data);
}

}  // namespace tern::io
