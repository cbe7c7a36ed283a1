// Stream framing for TURN over TCP/TLS (RFC 8656 §6.2 and §12.5).
#include "relay/wire/stream_framer.hpp"

#include <cstring>
#include <optional>

#include "relay/wire/channel_data.hpp"
#include "relay/wire/stun_constants.hpp"
#include "relay/wire/checks.hpp"

namespace tern::wire {

FrameInfo peekFrame(Bytes buffered) noexcept {
  using Status = FrameInfo::Status;
  if (buffered.empty()) return {Status::kNeedMore, FrameKind::kStun, 0};
  switch (classifyFirstByte(buffered[0])) {
    case PacketKind::kStun: {
      if (buffered.size() < 4) return {Status::kNeedMore, FrameKind::kStun, 0};
      const std::size_t length = loadU16(buffered.data() + 2);
      // RFC 8489 §5: the length of a STUN message is always a multiple of 4.
      if (length % 4 != 0) return {Status::kInvalid, FrameKind::kStun, 0};
      if (buffered.size() >= 8 && loadU32(buffered.data() + 4) != kMagicCookie) {
        return {Status::kInvalid, FrameKind::kStun, 0};
      }
      const std::size_t size = kHeaderSize + length;
      return {buffered.size() >= size ? Status::kComplete : Status::kNeedMore, FrameKind::kStun, size};
    }
    case PacketKind::kChannelData: {
      if (buffered.size() < 4) return {Status::kNeedMore, FrameKind::kChannelData, 0};
      // RFC 8656 §12.5: over TCP and TLS the ChannelData message is padded to 4 bytes.
      const std::size_t size = kChannelDataHeaderSize + padTo4(loadU16(buffered.data() + 2));
      return {buffered.size() >= size ? Status::kComplete : Status::kNeedMore,
              FrameKind::kChannelData, size};
    }
    default: return {Status::kInvalid, FrameKind::kStun, 0};
  }
}

StreamFramer::StreamFramer(std::size_t capacity) : capacity_(capacity) {}

MutableBytes StreamFramer::writable() noexcept {
  if (!buf_) {
    try {
      buf_ = std::make_unique_for_overwrite<std::uint8_t[]>(capacity_);
    } catch (const std::bad_alloc&) {
      checks::outOfMemory("stream framer buffer");  // the connection reads nothing and closes
      return {};
    }
  }
  // Move a partial frame to the front so the free space is contiguous.
  if (begin_ > 0) {
    if (end_ > begin_) std::memmove(buf_.get(), buf_.get() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  return {buf_.get() + end_, capacity_ - end_};
}

void StreamFramer::commit(std::size_t n) noexcept { end_ = std::min(end_ + n, capacity_); }

std::optional<StreamFramer::Frame> StreamFramer::next() noexcept {
  if (invalid_ || !buf_) return std::nullopt;
  Bytes pending{buf_.get() + begin_, end_ - begin_};
  const FrameInfo info = peekFrame(pending);
  if (info.status == FrameInfo::Status::kInvalid || info.size > capacity_) {
    invalid_ = true;
    return std::nullopt;
  }
  if (info.status == FrameInfo::Status::kNeedMore) return std::nullopt;
  begin_ += info.size;
  return Frame{info.kind, pending.first(info.size)};
}

}  // namespace tern::wire
