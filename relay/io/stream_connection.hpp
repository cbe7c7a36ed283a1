// A client's TCP connection: reads into a StreamFramer (RFC 8656 §6.2 framing), hands whole
// frames to its owner, and writes with a bounded queue so a slow reader can never make the
// relay buffer without limit: past the bound, writes are dropped and counted.
#pragma once

#include <uv.h>

#include <cstdint>
#include <span>

#include "relay/core/five_tuple.hpp"
#include "relay/io/uv_handle.hpp"
#include "relay/wire/stream_framer.hpp"

namespace tern::io {

class StreamConnection;

class StreamHandler {
 public:
  virtual ~StreamHandler() = default;
  virtual void onFrame(StreamConnection& connection, wire::Bytes frame) noexcept = 0;
  // The connection has closed its handle; the owner may now destroy it (later, not inside
  // this call: it is still on the stack).
  virtual void onClosed(StreamConnection& connection) noexcept = 0;
};

class StreamConnection {
 public:
  static constexpr std::size_t kMaxQueuedBytes = 256 * 1024;

  // Accepts the pending connection of `server` into a new handle and starts reading.
  StreamConnection(uv_loop_t* loop, uv_stream_t* server, StreamHandler& handler,
                   core::Transport transport, core::TimePoint now);
  StreamConnection(const StreamConnection&) = delete;
  StreamConnection& operator=(const StreamConnection&) = delete;

  const core::FiveTuple& tuple() const noexcept { return tuple_; }
  core::TimePoint lastActivity() const noexcept { return last_activity_; }
  // Bytes libuv still holds for this connection.
  std::size_t queuedBytes() const noexcept { return handle_ ? handle_->write_queue_size : 0; }
  bool closed() const noexcept { return !handle_; }

  // Writes the concatenation of `parts` now if the socket takes it, else queues a copy;
  // false (dropped) past the bound. A frame is never split by a drop.
  bool send(std::span<const wire::Bytes> parts) noexcept;
  // Closes at once; onClosed() follows from this call.
  void close(const char* reason) noexcept;

 private:
  struct WriteRequest;
  void onRead(ssize_t nread) noexcept;

  UvHandle<uv_tcp_t> handle_;
  StreamHandler& handler_;
  uv_loop_t* loop_;
  wire::StreamFramer framer_;
  core::FiveTuple tuple_;
  core::TimePoint last_activity_;
};

}  // namespace tern::io
