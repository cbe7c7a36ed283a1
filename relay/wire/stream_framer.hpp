// Splits a TCP or TLS byte stream into STUN messages and ChannelData frames (RFC 8656 §6.2,
// §12.5): STUN is framed by its length field, ChannelData by its length padded to 4 bytes.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>

#include "relay/wire/bytes.hpp"

namespace tern::wire {

enum class FrameKind : std::uint8_t { kStun, kChannelData };

struct FrameInfo {
  enum class Status : std::uint8_t { kComplete, kNeedMore, kInvalid };
  Status status = Status::kNeedMore;
  FrameKind kind = FrameKind::kStun;
  std::size_t size = 0;  // whole frame including padding, when complete
};

// The largest frame a stream can carry: a STUN header plus the largest 4-aligned length.
inline constexpr std::size_t kMaxStreamFrameSize = 20 + 0xFFFC;

// Looks at the start of `buffered` and says whether a whole frame is there. kInvalid means the
// stream cannot be STUN/ChannelData (RFC 8656 §12.5: no other traffic is allowed on a TURN
// stream), and the connection should be closed.
FrameInfo peekFrame(Bytes buffered) noexcept;

// A fixed-capacity reassembly buffer: the I/O layer reads into writable(), commits what
// arrived, and takes frames with next(). Its memory is allocated once, when the first bytes
// arrive: a connection that never sends anything (refused at accept, or held open idle by
// someone who opens many) costs no buffer.
class StreamFramer {
 public:
  explicit StreamFramer(std::size_t capacity = kMaxStreamFrameSize);

  // Where the next bytes go; empty when the buffer could not be allocated.
  MutableBytes writable() noexcept;
  void commit(std::size_t n) noexcept;

  struct Frame {
    FrameKind kind;
    Bytes bytes;
  };
  // The next whole frame, valid until the next call to writable(); nothing when more bytes
  // are needed or the stream is invalid (then invalid() says so).
  std::optional<Frame> next() noexcept;
  bool invalid() const noexcept { return invalid_; }
  std::size_t buffered() const noexcept { return end_ - begin_; }
  // The bytes received after the last frame taken, and forgetting them: a stream that stops
  // being framed (an RFC 6062 data connection) passes them on as they are.
  Bytes unread() const noexcept { return buf_ ? Bytes{buf_.get() + begin_, end_ - begin_} : Bytes{}; }
  void clear() noexcept { begin_ = end_ = 0; }

 private:
  std::unique_ptr<std::uint8_t[]> buf_;
  std::size_t capacity_;
  std::size_t begin_ = 0;  // first unconsumed byte
  std::size_t end_ = 0;    // one past the last received byte
  bool invalid_ = false;
};

}  // namespace tern::wire
