// A client's TCP or TLS connection: reads into a StreamFramer (RFC 8656 §6.2 framing), hands
// whole frames to its owner, and writes with a bounded queue so a slow reader can never make
// the relay buffer without limit: past the bound, writes are dropped and counted. With a TLS
// context, the first byte decides: a TLS handshake record makes it a TLS connection (RFC 8656
// §3.1), anything else plain TCP unless the listener requires TLS.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <vector>
#include <span>

#include "relay/core/five_tuple.hpp"
#include "relay/io/tls.hpp"
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
  StreamConnection(uv_loop_t* loop, uv_stream_t* server, StreamHandler& handler, core::TimePoint now,
                   std::shared_ptr<const TlsContext> tls = nullptr, bool require_tls = false);
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
  void onRead(ssize_t nread, const char* data) noexcept;
  void onPlaintext() noexcept;
  void onCiphertext(wire::Bytes data) noexcept;
  bool decideTransport(std::uint8_t first) noexcept;
  bool sendRaw(std::span<const wire::Bytes> parts) noexcept;
  bool flushCiphertext() noexcept;
  // Where libuv reads to: the framer for plain TCP, the worker thread's scratch buffer while
  // undecided or for TLS (ciphertext goes into the session's BIO at once).
  uv_buf_t readBuffer() noexcept;

  UvHandle<uv_tcp_t> handle_;
  StreamHandler& handler_;
  uv_loop_t* loop_;
  wire::StreamFramer framer_;
  core::FiveTuple tuple_;
  core::TimePoint last_activity_;
  std::shared_ptr<const TlsContext> tls_context_;
  std::unique_ptr<TlsSession> tls_;
  bool require_tls_;
  bool decided_;
  std::vector<std::uint8_t> ciphertext_;  // reused for TLS output
  std::vector<std::uint8_t> plaintext_;   // reused to assemble one frame per TLS record
};

}  // namespace tern::io
