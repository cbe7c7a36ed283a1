// A TCP or TLS connection of the relay. A client's connection reads into a StreamFramer
// (RFC 8656 §6.2 framing), hands whole frames to its owner, and writes with a bounded queue so
// a slow reader can never make the relay buffer without limit: past the bound, writes are
// dropped and counted. With a TLS context, the first byte decides: a TLS handshake record
// makes it a TLS connection (RFC 8656 §3.1), anything else plain TCP unless the listener
// requires TLS.
//
// RFC 6062 adds raw byte pipes: a peer connection (accepted on, or dialled from, a TCP
// allocation's relayed address) is piped to a client data connection after ConnectionBind.
// A pipe is flow-controlled rather than lossy: when one side's write queue passes a high
// mark, the other side stops reading until it drains, so TCP's own back-pressure reaches the
// sender and memory stays bounded. A bandwidth limit slows a pipe the same way: its owner
// stops a side's reading until the allocation's bucket has refilled (pauseReading).
#pragma once

#include <uv.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "relay/core/five_tuple.hpp"
#include "relay/io/event_loop.hpp"
#include "relay/io/io_batch.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/io/tls.hpp"
#include "relay/io/uv_handle.hpp"
#include "relay/wire/proxy_header.hpp"
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
  // An outgoing connection (a peer connection dialled for an RFC 6062 Connect) completed.
  virtual void onConnected(StreamConnection& /*connection*/, bool /*ok*/) noexcept {}
  // `bytes` went through a pipe from `from` to its partner. The handler may pause `from`.
  virtual void onPiped(StreamConnection& /*from*/, std::size_t /*bytes*/) noexcept {}
  // A connection that had to start with a PROXY header (expectProxyHeader) read a whole one;
  // tuple() names the client it gave now, `before` the load balancer's connection. The
  // handler may close the connection.
  virtual void onProxyHeader(StreamConnection& /*connection*/,
                             const core::FiveTuple& /*before*/) noexcept {}
  // It read something else: the connection closes when this returns.
  virtual void onProxyHeaderRefused(StreamConnection& /*connection*/,
                                    wire::ProxyHeaderError /*error*/) noexcept {}
  // The batch that frames sent during a round join (io_batch.hpp); none: every send writes.
  virtual IoBatch* ioBatch() noexcept { return nullptr; }
};

// A client connection on its way to another worker (an RFC 6062 data connection whose
// ConnectionBind names a connection that worker owns): the socket, the TLS session and
// whatever plaintext was read but not yet processed.
struct DetachedConnection {
  FileDescriptor fd;
  core::FiveTuple tuple;
  std::unique_ptr<TlsSession> tls;
  std::vector<std::uint8_t> unread;
};

class StreamConnection final : public Deferrable {
 public:
  static constexpr std::size_t kMaxQueuedBytes = 256 * 1024;
  // A pipe stops reading one side while the other has more than this queued, and resumes
  // when it is back under the low mark.
  static constexpr std::size_t kPipeHighWater = 128 * 1024;
  static constexpr std::size_t kPipeLowWater = 32 * 1024;

  // Accepts the pending connection of `server`: a client connection that starts reading.
  StreamConnection(uv_loop_t* loop, uv_stream_t* server, StreamHandler& handler, core::TimePoint now,
                   std::shared_ptr<const TlsContext> tls = nullptr, bool require_tls = false);
  // Accepts the pending connection of a relay listener: a peer connection, unread until piped.
  struct PeerTag {};
  StreamConnection(PeerTag, uv_loop_t* loop, uv_stream_t* server, StreamHandler& handler, core::TimePoint now);
  // Dials `peer` from the already bound `socket`: a peer connection; onConnected() follows.
  StreamConnection(uv_loop_t* loop, FileDescriptor socket, const wire::SocketAddress& peer,
                   StreamHandler& handler, core::TimePoint now);
  // Takes over a peer connection an upgrade handed over: unread until piped, like an
  // accepted one.
  StreamConnection(PeerTag, uv_loop_t* loop, FileDescriptor socket, StreamHandler& handler,
                   core::TimePoint now);
  // Takes over a connection detached by another worker; feed its unread bytes with inject().
  StreamConnection(uv_loop_t* loop, DetachedConnection& detached, StreamHandler& handler, core::TimePoint now);
  ~StreamConnection() override;
  StreamConnection(const StreamConnection&) = delete;
  StreamConnection& operator=(const StreamConnection&) = delete;

  // Client connections: client = the remote end. Peer connections: client = the peer,
  // server = the relayed address.
  const core::FiveTuple& tuple() const noexcept { return tuple_; }
  core::TimePoint lastActivity() const noexcept { return last_activity_; }
  // Bytes not yet handed to the kernel: libuv's queue and this round's pending frames.
  std::size_t queuedBytes() const noexcept { return (handle_ ? handle_->write_queue_size : 0) + pending_.size(); }
  bool closed() const noexcept { return !handle_; }
  // The socket's descriptor; -1 once closed.
  int fd() const noexcept {
    uv_os_fd_t fd = -1;
    return handle_ && uv_fileno(reinterpret_cast<const uv_handle_t*>(handle_.get()), &fd) == 0 ? fd : -1;
  }
  bool peerSide() const noexcept { return peer_side_; }
  bool piped() const noexcept { return partner_ != nullptr; }
  const StreamConnection* partner() const noexcept { return partner_; }
  StreamConnection* partner() noexcept { return partner_; }
  // RFC 6062 CONNECTION-ID of a peer connection, or of the data connection bound to one.
  std::uint32_t connectionId() const noexcept { return connection_id_; }
  void setConnectionId(std::uint32_t id) noexcept { connection_id_ = id; }

  // A client connection from a load balancer: its first bytes must be a PROXY protocol
  // header (stream_connection_proxy.cpp), read before TLS or STUN framing. Call right after
  // accepting, before the loop runs again.
  void expectProxyHeader(core::TimePoint now);
  // Still waiting for that header, and since when (for its deadline).
  bool awaitingProxyHeader() const noexcept { return proxy_ != nullptr; }
  core::TimePoint proxyHeaderSince() const noexcept {
    return proxy_ ? proxy_->since : core::TimePoint{};
  }

  // Writes the concatenation of `parts`: at the end of the current round of the handler's
  // IoBatch, together with the round's other frames, or now if there is no round; what the
  // socket does not take is queued. False (dropped) past the bound; a frame is never split
  // by a drop.
  bool send(std::span<const wire::Bytes> parts) noexcept;
  // Closes at once (and the partner of a pipe); onClosed() follows from this call. For
  // errors: nothing more is written.
  void close(const char* reason) noexcept;
  // Closes as an orderly end (idle timeout, the relay ended it, the other end of a pipe
  // closed, shutdown): what this round deferred is written, and a TLS connection sends its
  // close_notify (RFC 8446 §6.1) ahead of the FIN, then closes at once like close(): the
  // client's close_notify is not awaited, and a write the kernel cannot take now is dropped.
  void finish(const char* reason) noexcept;
  // Closes at once with a TCP reset rather than a FIN: for connections refused right after
  // accept, so neither end keeps the socket in TIME_WAIT or FIN_WAIT. onClosed() follows.
  void reset(const char* reason) noexcept;

  // RFC 6062 §5.4: from now on bytes flow as they are between this connection and `other`
  // (both start reading); what this one read past its last frame goes first.
  void pipe(StreamConnection& other) noexcept;
  // A pipe's side over its bandwidth limit stops reading (the kernel's receive buffer fills
  // and TCP slows the sender) until resumeReading(); the pipe's back-pressure may keep it
  // stopped a little longer, until its partner's queue drains.
  void pauseReading() noexcept;
  void resumeReading() noexcept;
  bool paused() const noexcept { return paused_; }
  // Hands the socket, TLS state and unread bytes over for another worker and closes this
  // handle. Nothing if writes are still queued (they would be lost).
  std::unique_ptr<DetachedConnection> detach() noexcept;
  // Processes plaintext as if it had just been read (after a hand-over).
  void inject(wire::Bytes plaintext) noexcept;
  // An upgrade (docs/upgrade.md): a plain, framed client connection with nothing queued may
  // move to the new process. Stops reading (resumeReading() undoes it) and returns what was
  // read past the last whole frame; nothing, and no change, when it cannot move (TLS, not
  // yet decided, a pipe, a peer connection, closing, or writes still queued).
  std::optional<std::vector<std::uint8_t>> freezeForUpgrade() noexcept;
  // An upgrade, for the sides of an RFC 6062 pipe and peer connections not yet piped: true
  // when the connection may move, a pipe side then stopped reading (resumeReading() undoes
  // it). It may when plain TCP, open both ways, with nothing queued and nothing read but not
  // yet passed on; a pipe passes on what it reads at once, so it never holds bytes of its own.
  bool freezeStreamForUpgrade() noexcept;

 private:
  struct WriteRequest;
  friend class IoBatch;
  // The batch's round ended: write what it deferred (IoBatch::flush).
  void endRound() noexcept;
  void flushPending() noexcept;
  bool writeNow(std::span<const wire::Bytes> parts, bool bounded) noexcept;
  void startReading() noexcept;
  void onRead(ssize_t nread, const char* data) noexcept;
  void onPlaintext() noexcept;
  void onCiphertext(wire::Bytes data) noexcept;
  void onPipeData(wire::Bytes data) noexcept;
  void onWriteDone() noexcept;
  void shutdownAfterWrites() noexcept;
  bool decideTransport(std::uint8_t first) noexcept;
  // Adds read bytes to the PROXY header; what follows a whole header, else nothing.
  wire::Bytes takeProxyHeader(wire::Bytes bytes) noexcept;
  bool sendRaw(std::span<const wire::Bytes> parts, bool bounded = true) noexcept;
  bool writePiped(wire::Bytes data) noexcept;
  bool flushCiphertext() noexcept;
  // Where libuv reads to: the framer for plain framed TCP, the worker thread's scratch buffer
  // while undecided, for TLS (ciphertext goes into the session's BIO at once) and for pipes.
  uv_buf_t readBuffer() noexcept;

  // The PROXY header read so far: allocated per connection from a load balancer, at accept,
  // and freed once the header is whole.
  struct ProxyHeaderBuffer {
    core::TimePoint since;
    std::size_t size = 0;
    std::array<std::uint8_t, wire::kMaxProxyHeader> bytes;
  };

  UvHandle<uv_tcp_t> handle_;
  StreamHandler& handler_;
  IoBatch* batch_ = handler_.ioBatch();
  uv_loop_t* loop_;
  wire::StreamFramer framer_;
  core::FiveTuple tuple_;
  core::TimePoint last_activity_;
  std::shared_ptr<const TlsContext> tls_context_;
  std::unique_ptr<TlsSession> tls_;
  bool require_tls_ = false;
  bool decided_ = true;
  bool peer_side_ = false;
  bool reading_ = false;
  bool paused_ = false;  // by pauseReading(): a bandwidth limit
  bool shutting_down_ = false;
  bool read_eof_ = false;  // the remote end finished sending
  StreamConnection* partner_ = nullptr;  // the other end of a pipe
  std::uint32_t connection_id_ = 0;
  std::vector<std::uint8_t> ciphertext_;  // reused for TLS output
  std::vector<std::uint8_t> plaintext_;   // reused to assemble one frame per TLS record
  std::vector<std::uint8_t> pending_;     // plain frames deferred to the end of the round
  bool deferred_ = false;                 // listed in batch_ for this round
  std::unique_ptr<ProxyHeaderBuffer> proxy_;
};

}  // namespace tern::io
