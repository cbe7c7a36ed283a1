// A UDP socket of a worker, serving clients (a listener) or peers (a relay socket). libuv only
// says when it is readable (uv_poll_t); the socket itself is read with recvmmsg in batches of
// 64 and written with sendmmsg: datagrams sent while a receive batch is being handled are
// queued in the worker's IoBatch and leave together when the round ends, so relaying a burst
// costs one send call per destination socket instead of one per datagram. Outside a round
// (timers) a send goes out at once. A full kernel buffer drops the datagram, which UDP senders must
// tolerate anyway.
//
// Why not uv_udp_t: its receive loop stops after about 32 datagrams per socket and wakeup, so
// one listener carrying every client's media was drained more slowly than the many relay
// sockets carrying the other direction, and client->peer lagged (the asymmetry measured in
// coturn too). Each socket here reads up to its own budget per wakeup: large for listeners,
// small for a relay socket, which serves one allocation.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>
#include <uv.h>

#include <array>
#include <memory>
#include <span>
#include <vector>

#include "relay/io/icmp_error.hpp"
#include "relay/io/io_batch.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/io/uv_handle.hpp"
#include "relay/wire/bytes.hpp"

namespace tern::io {

class UdpListener;

class DatagramHandler {
 public:
  virtual ~DatagramHandler() = default;
  virtual void onDatagram(UdpListener& socket, const wire::SocketAddress& from,
                          wire::Bytes data) noexcept = 0;
  // RFC 8656 §11.5: an ICMP error about a datagram this socket sent. Only sockets opened with
  // SocketOptions::receive_errors (relay sockets) hear of them; others ignore them.
  virtual void onIcmpError(UdpListener& /*socket*/, const IcmpError& /*error*/) noexcept {}
};

class UdpListener {
 public:
  // Takes over a bound socket (see openBoundSocket) and starts receiving. `id` is the owner's
  // name for this socket (a relay id), handed back through id(). `budget`: datagrams read per
  // wakeup before other sockets get their turn.
  UdpListener(uv_loop_t* loop, FileDescriptor fd, DatagramHandler& handler, IoBatch& batch,
              std::uint32_t id = 0, unsigned budget = 1024);
  ~UdpListener();
  UdpListener(const UdpListener&) = delete;
  UdpListener& operator=(const UdpListener&) = delete;

  // Sends the concatenation of `parts` (at most 4) as one datagram: at once, or at the end
  // of the current receive batch (copied). False if it was dropped at once; a queued datagram
  // the kernel refuses later is lost like any UDP datagram.
  bool send(const wire::SocketAddress& to, std::span<const wire::Bytes> parts) noexcept;
  bool send(const wire::SocketAddress& to, wire::Bytes data) noexcept {
    return send(to, std::span<const wire::Bytes>(&data, 1));
  }
  const wire::SocketAddress& localAddress() const noexcept { return local_; }
  std::uint32_t id() const noexcept { return id_; }
  int fd() const noexcept { return fd_.get(); }
  void close() noexcept;
  // Stops receiving and hands the socket back still open, for another worker's loop to take
  // over (RFC 8016 hand-over): datagrams that arrive meanwhile wait in its receive buffer.
  FileDescriptor release() noexcept;
  // An upgrade (docs/upgrade.md): stop reading, so datagrams wait in the receive buffer for
  // the new process; resume() if the upgrade fails. Sends still work meanwhile.
  void pause() noexcept;
  void resume() noexcept;
  // An upgrade hands sockets to the new process: one whose bit (by id) is set in `disowned`
  // is never read here again; a wakeup for it stops its polling then. A commit marks
  // thousands at once: a bit each, not a system call or a write to each listener (after the
  // fork of the new process, each first write to a page of this process faults).
  void watchDisowned(const std::vector<bool>* disowned) noexcept { disowned_ = disowned; }

 private:
  friend class IoBatch;
  // ICMP errors read per wakeup; more wait for the next one, so a burst of them (one per
  // datagram to a dead peer) cannot starve other sockets.
  static constexpr unsigned kErrorBudget = 16;

  static void onPoll(uv_poll_t* handle, int status, int events);
  int startPolling() noexcept;
  void onReadable() noexcept;
  void onPollError(int status) noexcept;
  // Reads up to kErrorBudget queued errors (recvmsg MSG_ERRQUEUE) and reports the ICMP ones.
  void drainErrors() noexcept;
  // Sends datagrams the batch queued for this socket; segment[i] != 0 marks a train sent
  // with segmentation offload. A refused message is skipped.
  void sendQueued(mmsghdr* messages, const std::uint16_t* segment, unsigned count) noexcept;
  bool sendNow(const sockaddr_storage& to, socklen_t to_length, std::span<const wire::Bytes> parts) noexcept;

  UvHandle<uv_poll_t> handle_;
  FileDescriptor fd_;
  DatagramHandler& handler_;
  IoBatch& batch_;
  wire::SocketAddress local_;
  std::uint32_t id_;
  unsigned budget_;
  const std::vector<bool>* disowned_ = nullptr;
  bool segmentation_ = true;  // UDP_SEGMENT trains (io_batch.cpp) until the kernel refuses one
};

}  // namespace tern::io
