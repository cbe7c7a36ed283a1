// What a worker's sockets share while one round of events is handled: the UDP receive slots,
// and the output produced meanwhile, which leaves together at the end of the round instead
// of one system call per relayed packet.
//
// - Datagrams are copied into one arena and leave with one sendmmsg per run of a socket.
// - Frames for a TCP or TLS client are appended to that connection's pending bytes and leave
//   with one write per connection (TLS: one record per frame still, written together).
//
// A round is a Scope. Scopes nest; the outermost one's end flushes. A worker opens one
// round per loop iteration (attach(): begun before libuv polls, flushed after every I/O
// callback of the iteration ran), so a TCP client's 40 frames read in one go cost one
// sendmmsg, and 64 datagrams from a peer for a TCP client cost one write. Outside a round
// (timers) everything is sent at once. Latency stays bounded: a round is one poll's worth
// of callbacks, each with a read budget, and the datagram queue flushes itself when full.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <array>
#include <memory>
#include <vector>

#include "relay/io/uv_handle.hpp"

namespace tern::io {

class UdpListener;
class StreamConnection;

class IoBatch {
 public:
  static constexpr unsigned kSlots = 64;
  static constexpr std::size_t kSlotSize = 64 * 1024;  // a UDP datagram's largest payload

  IoBatch();
  ~IoBatch();
  IoBatch(const IoBatch&) = delete;
  IoBatch& operator=(const IoBatch&) = delete;

  class Scope {
   public:
    explicit Scope(IoBatch& batch) noexcept : batch_(batch) { ++batch_.depth_; }
    ~Scope() { batch_.leave(); }
    Scope(const Scope&) = delete;
    Scope& operator=(const Scope&) = delete;

   private:
    IoBatch& batch_;
  };

  // Opens a round around every poll phase of `loop` (uv_prepare_t / uv_check_t, unreferenced
  // so they never keep the loop alive). detach() before the loop closes.
  void attach(uv_loop_t* loop);
  void detach() noexcept;

  bool active() const noexcept { return depth_ > 0; }
  // Sends what this round queued so far, in the middle of it: an upgrade's freeze, after which
  // the sockets this output would leave by may close before the round ends.
  void sendQueued() noexcept { flush(); }
  // UDP segmentation offload for trains (on by default; --udp-segmentation).
  void setSegmentation(bool on) noexcept { segmentation_ = on; }
 private:
  friend class UdpListener;
  friend class StreamConnection;
  struct Queued {
    UdpListener* socket;  // null once that socket closed
    sockaddr_storage to;
    socklen_t to_length;
    std::size_t offset;  // in arena_
    std::size_t size;
  };
  void leave() noexcept {
    if (--depth_ == 0) flush();
  }
  // Sends everything queued: datagrams first, then each deferred connection's bytes.
  void flush() noexcept;
  void flushDatagrams() noexcept;
  // A connection has pending bytes for the end of the round / has closed.
  void deferStream(StreamConnection* connection);
  void forgetStream(StreamConnection* connection) noexcept;
  void forgetSocket(UdpListener* socket) noexcept;

  std::unique_ptr<std::uint8_t[]> slots_;
  std::array<mmsghdr, kSlots> messages_{};
  std::array<iovec, kSlots> iov_{};
  std::array<sockaddr_storage, kSlots> from_{};
  unsigned depth_ = 0;
  bool loop_round_ = false;  // the round attach() opened for this loop iteration is open
  bool segmentation_ = true;
  std::vector<Queued> queued_;
  std::vector<std::uint8_t> arena_;
  std::vector<StreamConnection*> streams_;
  UvHandle<uv_prepare_t> prepare_;
  UvHandle<uv_check_t> check_;
};

}  // namespace tern::io
