// The per-round output batch of a worker; see io_batch.hpp.
#include "relay/io/io_batch.hpp"

#include <netinet/udp.h>

#include <algorithm>
#include <cstring>

#include "relay/io/stream_connection.hpp"
#include "relay/io/udp_listener.hpp"

namespace tern::io {

namespace {
// Room reserved up front so the packet path does not allocate after start-up.
constexpr std::size_t kMaxQueued = 256;
constexpr std::size_t kArenaReserve = 256 * 1024;
constexpr std::size_t kStreamsReserve = 256;
}  // namespace

IoBatch::IoBatch() : slots_(new std::uint8_t[kSlots * kSlotSize]) {
  for (unsigned i = 0; i < kSlots; ++i) {
    iov_[i] = {slots_.get() + i * kSlotSize, kSlotSize};
    messages_[i].msg_hdr.msg_iov = &iov_[i];
    messages_[i].msg_hdr.msg_iovlen = 1;
    messages_[i].msg_hdr.msg_name = &from_[i];
  }
  queued_.reserve(kMaxQueued);
  arena_.reserve(kArenaReserve);
  streams_.reserve(kStreamsReserve);
}

IoBatch::~IoBatch() { detach(); }

void IoBatch::attach(uv_loop_t* loop) {
  checkUv(uv_prepare_init(loop, prepare_.get()), "uv_prepare_init");
  prepare_.initialized(this);
  checkUv(uv_check_init(loop, check_.get()), "uv_check_init");
  check_.initialized(this);
  checkUv(uv_prepare_start(prepare_.get(),
                           [](uv_prepare_t* h) {
                             auto* self = ownerOf<IoBatch>(h);
                             if (self == nullptr || self->loop_round_) return;
                             self->loop_round_ = true;
                             ++self->depth_;
                           }),
          "uv_prepare_start");
  checkUv(uv_check_start(check_.get(),
                         [](uv_check_t* h) {
                           auto* self = ownerOf<IoBatch>(h);
                           if (self == nullptr || !self->loop_round_) return;
                           self->loop_round_ = false;
                           self->leave();
                         }),
          "uv_check_start");
  uv_unref(prepare_.base());
  uv_unref(check_.base());
}

void IoBatch::detach() noexcept {
  if (loop_round_) {
    // Detached between prepare and check: the check will not come to end the round.
    loop_round_ = false;
    leave();
  }
  prepare_.close();
  check_.close();
}

void IoBatch::flush() noexcept {
  flushDatagrams();
  // A connection's flush may close it (a write error), which nulls its entry here.
  for (std::size_t i = 0; i < streams_.size(); ++i) {
    if (StreamConnection* connection = streams_[i]) connection->endRound();
  }
  streams_.clear();
}

namespace {
// UDP generic segmentation offload (UDP_SEGMENT, Linux 4.18): consecutive datagrams of one
// socket to one destination, of one size (the last may be shorter), leave as one buffer the
// kernel (or the NIC) cuts up: one route lookup and one socket buffer for the whole train.
// Media bursts are exactly that: a video frame's equal-sized packets to one receiver, or a
// TCP client's frames for one peer. Kept to segments that fit a 1500-byte MTU over IPv6 and
// to 64 segments, what every kernel with UDP_SEGMENT accepts.
constexpr std::size_t kMaxSegmentSize = 1452;
constexpr unsigned kMaxSegments = 64;
constexpr std::size_t kMaxTrainBytes = 65000;

struct SegmentControl {
  alignas(cmsghdr) std::uint8_t bytes[CMSG_SPACE(sizeof(std::uint16_t))];
};

bool sameDestination(const sockaddr_storage& a, socklen_t a_length, const sockaddr_storage& b,
                     socklen_t b_length) noexcept {
  return a_length == b_length && std::memcmp(&a, &b, a_length) == 0;
}

void setSegmentSize(msghdr& m, SegmentControl& control, std::uint16_t size) noexcept {
  m.msg_control = control.bytes;
  m.msg_controllen = sizeof control.bytes;
  cmsghdr* c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_UDP;
  c->cmsg_type = UDP_SEGMENT;
  c->cmsg_len = CMSG_LEN(sizeof size);
  std::memcpy(CMSG_DATA(c), &size, sizeof size);
}
}  // namespace

void IoBatch::flushDatagrams() noexcept {
  std::array<mmsghdr, kSlots> out{};
  std::array<iovec, kSlots> iov{};
  std::array<std::uint16_t, kSlots> segment{};  // segment size of a train, 0 for one datagram
  std::array<SegmentControl, kSlots> control{};
  std::size_t i = 0;
  while (i < queued_.size()) {
    UdpListener* socket = queued_[i].socket;
    const bool gso = segmentation_ && socket != nullptr && socket->segmentation_;
    // A run of datagrams for one socket leaves in one sendmmsg; within it, trains in one
    // message each.
    unsigned n = 0;
    std::size_t j = i;
    while (j < queued_.size() && queued_[j].socket == socket && n < kSlots) {
      const Queued& first = queued_[j];
      std::size_t length = first.size;
      std::size_t k = j + 1;
      if (gso && first.size <= kMaxSegmentSize) {
        while (k < queued_.size() && k - j < kMaxSegments) {
          const Queued& next = queued_[k];
          if (next.socket != socket || next.size > first.size || next.offset != first.offset + length ||
              length + next.size > kMaxTrainBytes ||
              !sameDestination(next.to, next.to_length, first.to, first.to_length)) {
            break;
          }
          length += next.size;
          ++k;
          if (next.size < first.size) break;  // a shorter datagram ends a train
        }
      }
      iov[n] = {arena_.data() + first.offset, length};
      out[n].msg_hdr = {};
      out[n].msg_hdr.msg_name = const_cast<sockaddr_storage*>(&first.to);
      out[n].msg_hdr.msg_namelen = first.to_length;
      out[n].msg_hdr.msg_iov = &iov[n];
      out[n].msg_hdr.msg_iovlen = 1;
      segment[n] = 0;
      if (k - j > 1) {
        segment[n] = static_cast<std::uint16_t>(first.size);
        setSegmentSize(out[n].msg_hdr, control[n], segment[n]);
      }
      ++n;
      j = k;
    }
    if (socket != nullptr) socket->sendQueued(out.data(), segment.data(), n);
    i = j;
  }
  queued_.clear();
  arena_.clear();
}

void IoBatch::deferStream(StreamConnection* connection) {
  streams_.push_back(connection);
}

void IoBatch::forgetStream(StreamConnection* connection) noexcept {
  std::replace(streams_.begin(), streams_.end(), connection, static_cast<StreamConnection*>(nullptr));
}

void IoBatch::forgetSocket(UdpListener* socket) noexcept {
  for (auto& q : queued_) {
    if (q.socket == socket) q.socket = nullptr;
  }
}

}  // namespace tern::io
