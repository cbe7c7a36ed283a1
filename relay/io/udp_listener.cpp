// Batched UDP receive and send under a uv_poll_t; see udp_listener.hpp.
#include "relay/io/udp_listener.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "relay/io/log.hpp"

namespace tern::io {

namespace {
// Datagrams queued within one round before they are sent anyway.
constexpr std::size_t kMaxQueued = 256;
}  // namespace

UdpListener::UdpListener(uv_loop_t* loop, FileDescriptor fd, DatagramHandler& handler,
                         IoBatch& batch, std::uint32_t id, unsigned budget)
    : fd_(std::move(fd)),
      handler_(handler),
      batch_(batch),
      local_(io::localAddress(fd_.get())),
      id_(id),
      budget_(budget) {
  checkUv(uv_poll_init_socket(loop, handle_.get(), fd_.get()), "uv_poll_init_socket");
  handle_.initialized(this);
  checkUv(startPolling(), "uv_poll_start");
}

void UdpListener::onPoll(uv_poll_t* h, int status, int events) {
  auto* self = ownerOf<UdpListener>(h);
  if (self == nullptr) return;
  if (self->disowned_ != nullptr && self->id_ < self->disowned_->size() &&
      (*self->disowned_)[self->id_]) {
    self->pause();
    return;
  }
  if (status < 0) {
    self->onPollError(status);
    return;
  }
  if (events & UV_READABLE) self->onReadable();
}

int UdpListener::startPolling() noexcept {
  return uv_poll_start(handle_.get(), UV_READABLE, &UdpListener::onPoll);
}

// libuv answers POLLERR by stopping the poll handle and reporting UV_EBADF (src/unix/poll.c).
// On a UDP socket POLLERR means an error is queued (IP_RECVERR: an ICMP error about a
// datagram sent) or pending, not a bad descriptor: read the errors and the datagrams that may
// wait behind them, then poll again, so an unreachable peer never stalls the socket.
void UdpListener::onPollError(int status) noexcept {
  const IoBatch::Scope round(batch_);
  drainErrors();
  if (handle_) onReadable();
  if (!handle_) return;  // closed by a handler meanwhile
  if (const int rc = startPolling(); rc < 0) {
    log::warn("udp poll failed", {{"address", local_.toString()},
                                  {"status", uv_strerror(status)},
                                  {"error", uv_strerror(rc)}});
  }
}

void UdpListener::drainErrors() noexcept {
  for (unsigned i = 0; i < kErrorBudget && handle_; ++i) {
    sockaddr_storage name{};
    alignas(cmsghdr) std::array<std::uint8_t, kIcmpControlSize> control{};
    msghdr m{};
    m.msg_name = &name;
    m.msg_namelen = sizeof name;
    m.msg_control = control.data();
    m.msg_controllen = control.size();
    // No buffer: the quoted datagram is not needed, and the kernel just truncates it.
    if (::recvmsg(fd_.get(), &m, MSG_ERRQUEUE | MSG_DONTWAIT) < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        // Nothing queued. A pending error without a queued one (a socket without IP_RECVERR)
        // would keep POLLERR up and the loop spinning; reading SO_ERROR clears it.
        int pending = 0;
        socklen_t length = sizeof pending;
        (void)::getsockopt(fd_.get(), SOL_SOCKET, SO_ERROR, &pending, &length);
      } else {
        log::debug("udp error queue read failed",
                   {{"address", local_.toString()}, {"error", std::strerror(errno)}});
      }
      return;
    }
    // Errors of other origins (a local EMSGSIZE on send) are read only to be cleared.
    if (auto error = parseIcmpError(m)) handler_.onIcmpError(*this, *error);
  }
}

UdpListener::~UdpListener() { close(); }

void UdpListener::close() noexcept {
  if (!handle_) return;
  // The poll handle leaves epoll now; only then may the descriptor close.
  handle_.close();
  fd_ = FileDescriptor{};
  batch_.forgetSocket(this);
}

FileDescriptor UdpListener::release() noexcept {
  if (!handle_) return {};
  // uv_close takes the descriptor out of this loop's epoll set at once (the handle's memory
  // lives until its close callback), so the other loop may watch it right away.
  handle_.close();
  batch_.forgetSocket(this);
  return std::move(fd_);
}

void UdpListener::pause() noexcept {
  if (handle_) (void)uv_poll_stop(handle_.get());
}

void UdpListener::resume() noexcept {
  if (!handle_) return;
  if (const int rc = startPolling(); rc < 0) {
    log::warn("udp poll failed", {{"address", local_.toString()}, {"error", uv_strerror(rc)}});
  }
}

void UdpListener::onReadable() noexcept {
  const IoBatch::Scope round(batch_);
  unsigned done = 0;
  unsigned reported_errors = 0;
  while (done < budget_ && handle_) {
    const unsigned want = std::min<unsigned>(IoBatch::kSlots, budget_ - done);
    for (unsigned i = 0; i < want; ++i) {
      batch_.messages_[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
      batch_.messages_[i].msg_hdr.msg_flags = 0;
    }
    const int n = ::recvmmsg(fd_.get(), batch_.messages_.data(), want, MSG_DONTWAIT, nullptr);
    if (n < 0 && isIcmpReportedErrno(errno) && ++reported_errors <= kErrorBudget) {
      // A pending ICMP error (IP_RECVERR) fails one receive and is cleared by it; the
      // datagrams behind it are still there. The error itself is read from the error queue.
      continue;
    }
    if (n <= 0) {
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        log::debug("udp receive failed",
                   {{"address", local_.toString()}, {"error", std::strerror(errno)}});
      }
      break;
    }
    for (int k = 0; k < n && handle_; ++k) {
      const mmsghdr& m = batch_.messages_[static_cast<std::size_t>(k)];
      if (m.msg_hdr.msg_flags & MSG_TRUNC) continue;  // larger than any datagram: not ours to relay
      handler_.onDatagram(
          *this, fromSockaddr(reinterpret_cast<const sockaddr*>(m.msg_hdr.msg_name)),
          wire::Bytes{static_cast<const std::uint8_t*>(m.msg_hdr.msg_iov->iov_base), m.msg_len});
    }
    done += static_cast<unsigned>(n);
    if (static_cast<unsigned>(n) < want) break;  // drained
  }
}

void UdpListener::sendQueued(mmsghdr* messages, const std::uint16_t* segment,
                             unsigned count) noexcept {
  if (!handle_) return;
  unsigned sent = 0;
  unsigned retried = count;  // the message sent again after a pending ICMP error, if any
  while (sent < count) {
    const int r = ::sendmmsg(fd_.get(), messages + sent, count - sent, MSG_DONTWAIT);
    if (r > 0) {
      sent += static_cast<unsigned>(r);
      continue;
    }
    const int error = errno;
    if (isIcmpReportedErrno(error) && retried != sent) {
      // An ICMP error about an earlier datagram (IP_RECVERR) fails the next send once and is
      // cleared by it; this message did nothing wrong, so it goes again.
      retried = sent;
      continue;
    }
    if (segment[sent] != 0 && (error == EIO || error == EINVAL || error == EOPNOTSUPP)) {
      // The path cannot take segmentation offload (no checksum offload, a smaller MTU):
      // this socket stops using it, and the train leaves datagram by datagram.
      segmentation_ = false;
      log::info("udp segmentation offload refused; sending datagrams one by one",
                {{"address", local_.toString()}, {"error", std::strerror(error)}});
      msghdr one = messages[sent].msg_hdr;
      one.msg_control = nullptr;
      one.msg_controllen = 0;
      const iovec train = *messages[sent].msg_hdr.msg_iov;
      for (std::size_t at = 0; at < train.iov_len; at += segment[sent]) {
        iovec part{static_cast<std::uint8_t*>(train.iov_base) + at,
                   std::min<std::size_t>(segment[sent], train.iov_len - at)};
        one.msg_iov = &part;
        one.msg_iovlen = 1;
        (void)::sendmsg(fd_.get(), &one, MSG_DONTWAIT);
      }
    }
    // The first message failed (a full buffer, an unreachable peer): skip it and go on.
    ++sent;
  }
}

bool UdpListener::sendNow(const sockaddr_storage& to, socklen_t to_length,
                          std::span<const wire::Bytes> parts) noexcept {
  iovec iov[4];
  std::size_t n = 0;
  for (const auto& part : parts) {
    if (part.empty()) continue;
    iov[n++] = {const_cast<std::uint8_t*>(part.data()), part.size()};
  }
  msghdr m{};
  m.msg_name = const_cast<sockaddr_storage*>(&to);
  m.msg_namelen = to_length;
  m.msg_iov = iov;
  m.msg_iovlen = n;
  if (::sendmsg(fd_.get(), &m, MSG_DONTWAIT) >= 0) return true;
  // A pending ICMP error about an earlier datagram fails one send and is cleared by it.
  return isIcmpReportedErrno(errno) && ::sendmsg(fd_.get(), &m, MSG_DONTWAIT) >= 0;
}

bool UdpListener::send(const wire::SocketAddress& to, std::span<const wire::Bytes> parts) noexcept {
  if (!handle_ || parts.size() > 4) return false;
  sockaddr_storage ss{};
  const socklen_t length = toSockaddr(to, ss);
  if (!batch_.active()) return sendNow(ss, length, parts);
  if (batch_.queued_.size() >= kMaxQueued) batch_.flushDatagrams();
  std::size_t total = 0;
  for (const auto& p : parts) total += p.size();
  // Past the reserve (a burst of jumbo datagrams), send now rather than grow the arena.
  if (batch_.arena_.size() + total > batch_.arena_.capacity()) return sendNow(ss, length, parts);
  const std::size_t offset = batch_.arena_.size();
  batch_.arena_.resize(offset + total);  // within capacity: no allocation
  std::size_t at = offset;
  for (const auto& p : parts) {
    if (!p.empty()) std::memcpy(batch_.arena_.data() + at, p.data(), p.size());
    at += p.size();
  }
  batch_.queued_.push_back({this, ss, length, offset, total});
  return true;
}

}  // namespace tern::io
