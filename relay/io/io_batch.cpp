// The per-round output batch of a worker; see io_batch.hpp.
#include "relay/io/io_batch.hpp"

#include <algorithm>

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

void IoBatch::flushDatagrams() noexcept {
  std::array<mmsghdr, kSlots> out{};
  std::array<iovec, kSlots> iov{};
  std::size_t i = 0;
  while (i < queued_.size()) {
    UdpListener* socket = queued_[i].socket;
    // A run of datagrams for one socket leaves in one sendmmsg.
    unsigned n = 0;
    std::size_t j = i;
    for (; j < queued_.size() && queued_[j].socket == socket && n < kSlots; ++j, ++n) {
      Queued& q = queued_[j];
      iov[n] = {arena_.data() + q.offset, q.size};
      out[n].msg_hdr = {};
      out[n].msg_hdr.msg_name = &q.to;
      out[n].msg_hdr.msg_namelen = q.to_length;
      out[n].msg_hdr.msg_iov = &iov[n];
      out[n].msg_hdr.msg_iovlen = 1;
    }
    if (socket != nullptr) socket->sendQueued(out.data(), n);
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
