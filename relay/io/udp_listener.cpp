// UDP receive and send on libuv; see udp_listener.hpp.
#include "relay/io/udp_listener.hpp"

#include "relay/io/log.hpp"

namespace tern::io {

UdpListener::UdpListener(uv_loop_t* loop, FileDescriptor fd, DatagramHandler& handler,
                         ReceiveBuffer& buffer, std::uint32_t id)
    : handler_(handler), buffer_(buffer), local_(io::localAddress(fd.get())), id_(id) {
  // AF_UNSPEC: libuv creates no socket of its own; ours arrives through uv_udp_open.
  checkUv(uv_udp_init_ex(loop, handle_.get(), AF_UNSPEC | UV_UDP_RECVMMSG), "uv_udp_init_ex");
  handle_.initialized(this);
  checkUv(uv_udp_open(handle_.get(), fd.get()), "uv_udp_open");
  fd.release();  // libuv owns the descriptor now and closes it with the handle
  checkUv(uv_udp_recv_start(
              handle_.get(),
              [](uv_handle_t* h, std::size_t, uv_buf_t* buf) {
                auto* self = ownerOf<UdpListener>(h);
                *buf = self ? self->buffer_.get() : uv_buf_init(nullptr, 0);
              },
              [](uv_udp_t* h, ssize_t nread, const uv_buf_t* buf, const sockaddr* from,
                 unsigned flags) {
                if (auto* self = ownerOf<UdpListener>(h)) self->onReceive(nread, buf, from, flags);
              }),
          "uv_udp_recv_start");
}

void UdpListener::onReceive(ssize_t nread, const uv_buf_t* buf, const sockaddr* from,
                            unsigned flags) noexcept {
  // The buffer belongs to the worker; UV_UDP_MMSG_FREE asks for nothing.
  if (flags & UV_UDP_MMSG_FREE) return;
  if (nread < 0) {
    log::warn("udp receive failed", {{"address", local_.toString()},
                                     {"error", uv_strerror(static_cast<int>(nread))}});
    return;
  }
  if (from == nullptr) return;  // nothing more to read this round
  handler_.onDatagram(*this, fromSockaddr(from),
                      wire::Bytes{reinterpret_cast<const std::uint8_t*>(buf->base),
                                  static_cast<std::size_t>(nread)});
}

bool UdpListener::send(const wire::SocketAddress& to, std::span<const wire::Bytes> parts) noexcept {
  if (!handle_ || parts.size() > 4) return false;
  sockaddr_storage ss{};
  toSockaddr(to, ss);
  uv_buf_t bufs[4];
  unsigned n = 0;
  for (const auto& part : parts) {
    if (part.empty()) continue;
    bufs[n++] = uv_buf_init(const_cast<char*>(reinterpret_cast<const char*>(part.data())),
                            static_cast<unsigned>(part.size()));
  }
  return uv_udp_try_send(handle_.get(), bufs, n, reinterpret_cast<const sockaddr*>(&ss)) >= 0;
}

}  // namespace tern::io
