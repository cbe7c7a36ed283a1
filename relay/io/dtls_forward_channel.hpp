// The socket pair between the old and the new process of an upgrade that carries the old
// process's DTLS sessions' datagrams (dtls_forwarding.hpp), and the new process's side of
// it: DtlsForwarder, which passes on what belongs to the old process's sessions.
#pragma once

#include <uv.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "metrics/worker_counters.hpp"
#include "relay/io/dtls_forwarding.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/io/uv_handle.hpp"
#include "relay/io/worker_setup.hpp"

namespace tern::io {

class UdpListener;

// One end of a SOCK_SEQPACKET socket pair (non-blocking, close-on-exec), one frame per
// message. Reading is polled; sending never waits: a full or broken socket drops the frame.
class ForwardChannel {
 public:
  class Handler {
   public:
    virtual void onForwardFrame(ForwardChannel& channel, const ForwardFrame& frame) noexcept = 0;
    // The other process closed its end (or the socket failed): no frame comes or goes again.
    virtual void onForwardClosed(ForwardChannel& channel) noexcept = 0;

   protected:
    ~Handler() = default;
  };

  // A pair for an upgrade: [0] stays, [1] goes to the other process. Throws on failure.
  static std::array<FileDescriptor, 2> openPair();

  ForwardChannel(uv_loop_t* loop, FileDescriptor fd, Handler& handler, std::uint16_t id);
  ~ForwardChannel() { close(); }
  ForwardChannel(const ForwardChannel&) = delete;
  ForwardChannel& operator=(const ForwardChannel&) = delete;

  // False when the frame was dropped: the socket is full (the reader is behind) or closed.
  bool send(const ForwardHeader& header, wire::Bytes payload) noexcept;
  std::uint16_t id() const noexcept { return id_; }
  bool open() const noexcept { return static_cast<bool>(fd_); }
  void close() noexcept;

 private:
  static constexpr unsigned kReadBudget = 64;  // frames per wakeup
  static void onPoll(uv_poll_t* handle, int status, int events);
  void onReadable() noexcept;
  void fail() noexcept;  // closes and tells the handler (which may destroy nothing here)

  UvHandle<uv_poll_t> handle_;
  FileDescriptor fd_;
  Handler& handler_;
  std::uint16_t id_;
  std::vector<std::uint8_t> buffer_ = std::vector<std::uint8_t>(kMaxForwardHeader + 65536);
};

// The new process: datagrams on its DTLS listeners from the old process's sessions go to the
// old process, with the listener and the source; every other address is this process's.
class DtlsForwarder final : private ForwardChannel::Handler {
 public:
  // `forwards`: one per old worker whose sessions stay, their sockets numbered as the
  // listeners' ids (positions in WorkerSockets::dtls).
  DtlsForwarder(uv_loop_t* loop, metrics::WorkerCounters& counters, unsigned worker,
                std::vector<DtlsForward> forwards);

  // True if the datagram was the old process's (passed on, or dropped and counted when its
  // socket is full or broken); false if this process should handle it.
  bool forward(const UdpListener& socket, const wire::SocketAddress& from,
               wire::Bytes data) noexcept;
  void close() noexcept;
  std::size_t sessions() const noexcept { return table_.size(); }

 private:
  void onForwardFrame(ForwardChannel& channel, const ForwardFrame& frame) noexcept override;
  void onForwardClosed(ForwardChannel& channel) noexcept override;

  metrics::WorkerCounters& counters_;
  unsigned worker_;
  ForwardTable table_;
  std::vector<std::unique_ptr<ForwardChannel>> channels_;  // by ForwardTable::Entry::channel
  bool drop_logged_ = false;                               // a drop is logged once per process
};

}  // namespace tern::io
