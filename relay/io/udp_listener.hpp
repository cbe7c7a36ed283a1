// A UDP socket of a worker, serving clients (a listener) or peers (a relay socket): batched
// receive with recvmmsg (libuv's UV_UDP_RECVMMSG) into the worker's receive buffer, and
// sends that never queue (uv_udp_try_send; a full kernel buffer drops the datagram, which UDP
// senders must tolerate anyway).
#pragma once

#include <uv.h>

#include <memory>
#include <span>

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
};

// Receive memory shared by every UDP socket of one worker: callbacks run one at a time.
class ReceiveBuffer {
 public:
  // libuv hands recvmmsg one 64 KiB slot per datagram; 20 slots is its batch maximum.
  static constexpr std::size_t kSlot = 64 * 1024;
  static constexpr std::size_t kSlots = 20;
  ReceiveBuffer() : data_(new char[kSlot * kSlots]) {}
  uv_buf_t get() noexcept { return uv_buf_init(data_.get(), kSlot * kSlots); }

 private:
  std::unique_ptr<char[]> data_;
};

class UdpListener {
 public:
  // Takes over a bound socket (see openBoundSocket) and starts receiving. `id` is the owner's
  // name for this socket (a relay id), handed back through id().
  UdpListener(uv_loop_t* loop, FileDescriptor fd, DatagramHandler& handler, ReceiveBuffer& buffer,
              std::uint32_t id = 0);
  UdpListener(const UdpListener&) = delete;
  UdpListener& operator=(const UdpListener&) = delete;

  // Sends the concatenation of `parts` (at most 4) as one datagram, without copying.
  bool send(const wire::SocketAddress& to, std::span<const wire::Bytes> parts) noexcept;
  bool send(const wire::SocketAddress& to, wire::Bytes data) noexcept {
    return send(to, std::span<const wire::Bytes>(&data, 1));
  }
  const wire::SocketAddress& localAddress() const noexcept { return local_; }
  std::uint32_t id() const noexcept { return id_; }
  void close() noexcept { handle_.close(); }

 private:
  void onReceive(ssize_t nread, const uv_buf_t* buf, const sockaddr* from, unsigned flags) noexcept;

  UvHandle<uv_udp_t> handle_;
  DatagramHandler& handler_;
  ReceiveBuffer& buffer_;
  wire::SocketAddress local_;
  std::uint32_t id_;
};

}  // namespace tern::io
