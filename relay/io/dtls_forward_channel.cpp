// The socket pair of DTLS forwarding and the new process's forwarder; see
// dtls_forward_channel.hpp.
#include "relay/io/dtls_forward_channel.hpp"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "relay/io/log.hpp"
#include "relay/io/udp_listener.hpp"

namespace tern::io {

std::array<FileDescriptor, 2> ForwardChannel::openPair() {
  int fds[2] = {-1, -1};
  if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    throw std::runtime_error(std::string("socketpair for DTLS forwarding: ") +
                             std::strerror(errno));
  }
  std::array<FileDescriptor, 2> pair{FileDescriptor(fds[0]), FileDescriptor(fds[1])};
  // Room for a burst of media while the old process's loop is busy; best effort.
  const int size = 1 << 20;
  for (const auto& fd : pair)
    (void)::setsockopt(fd.get(), SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  return pair;
}

ForwardChannel::ForwardChannel(uv_loop_t* loop, FileDescriptor fd, Handler& handler,
                               std::uint16_t id)
    : fd_(std::move(fd)), handler_(handler), id_(id) {
  checkUv(uv_poll_init_socket(loop, handle_.get(), fd_.get()), "uv_poll_init_socket");
  handle_.initialized(this);
  checkUv(uv_poll_start(handle_.get(), UV_READABLE | UV_DISCONNECT, &ForwardChannel::onPoll),
          "uv_poll_start");
}

void ForwardChannel::onPoll(uv_poll_t* h, int status, int events) {
  auto* self = ownerOf<ForwardChannel>(h);
  if (self == nullptr) return;
  if (status < 0) {
    self->fail();
    return;
  }
  // Frames still queued are read before a hang-up is acted on.
  if (events & (UV_READABLE | UV_DISCONNECT)) self->onReadable();
}

void ForwardChannel::onReadable() noexcept {
  for (unsigned i = 0; i < kReadBudget && fd_; ++i) {
    const ssize_t n = ::recv(fd_.get(), buffer_.data(), buffer_.size(), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {  // 0: the other end closed (SOCK_SEQPACKET end of file)
      fail();
      return;
    }
    if (auto frame = decodeForwardFrame(wire::Bytes{buffer_.data(), static_cast<std::size_t>(n)})) {
      handler_.onForwardFrame(*this, *frame);
    }
  }
}

bool ForwardChannel::send(const ForwardHeader& header, wire::Bytes payload) noexcept {
  if (!fd_) return false;
  std::array<std::uint8_t, kMaxForwardHeader> head{};
  const std::size_t head_size = encodeForwardHeader(header, head);
  std::array<iovec, 2> parts{iovec{head.data(), head_size},
                             iovec{const_cast<std::uint8_t*>(payload.data()), payload.size()}};
  msghdr m{};
  m.msg_iov = parts.data();
  m.msg_iovlen = payload.empty() ? 1 : 2;
  if (::sendmsg(fd_.get(), &m, MSG_DONTWAIT | MSG_NOSIGNAL) >= 0) return true;
  if (errno == EPIPE || errno == ECONNRESET || errno == ENOTCONN) fail();
  return false;
}

void ForwardChannel::fail() noexcept {
  if (!fd_) return;
  close();
  handler_.onForwardClosed(*this);
}

void ForwardChannel::close() noexcept {
  handle_.close();  // before the descriptor: libuv must not poll a closed fd
  fd_ = FileDescriptor();
}

DtlsForwarder::DtlsForwarder(uv_loop_t* loop, metrics::WorkerCounters& counters, unsigned worker,
                             std::vector<DtlsForward> forwards)
    : counters_(counters), worker_(worker) {
  for (DtlsForward& f : forwards) {
    const auto id = static_cast<std::uint16_t>(channels_.size());
    for (const auto& s : f.sessions)
      table_.add({s.socket, s.session.client, s.session.listener, id});
    channels_.push_back(std::make_unique<ForwardChannel>(
        loop, std::move(f.channel), static_cast<ForwardChannel::Handler&>(*this), id));
  }
  table_.seal();
  log::info("serving dtls sessions through the old process",
            {{"worker", worker_}, {"sessions", table_.size()}, {"channels", channels_.size()}});
}

bool DtlsForwarder::forward(const UdpListener& socket, const wire::SocketAddress& from,
                            wire::Bytes data) noexcept {
  const ForwardTable::Entry* entry = table_.find(socket.id(), from);
  if (entry == nullptr) return false;
  ForwardChannel& channel = *channels_[entry->channel];  // entries of a closed channel are gone
  if (!channel.send({ForwardKind::kDatagram, {entry->listener, from}}, data)) {
    counters_.drop(metrics::DropReason::kSendFailed);
    if (!std::exchange(drop_logged_, true)) {
      log::warn(
          "dtls datagram for the old process dropped: its socket is full or closed; "
          "further drops are counted, not logged",
          {{"worker", worker_}, {"client", from.toString()}});
    }
  }
  return true;
}

void DtlsForwarder::close() noexcept {
  for (auto& c : channels_) c->close();
}

void DtlsForwarder::onForwardFrame(ForwardChannel& channel, const ForwardFrame& frame) noexcept {
  if (frame.header.kind != ForwardKind::kForget) return;
  (void)table_.forget(channel.id(), frame.header.session);
}

void DtlsForwarder::onForwardClosed(ForwardChannel& channel) noexcept {
  const std::size_t forgotten = table_.forgetChannel(channel.id());
  log::info("old process's dtls sessions ended", {{"worker", worker_}, {"forgotten", forgotten}});
}

}  // namespace tern::io
