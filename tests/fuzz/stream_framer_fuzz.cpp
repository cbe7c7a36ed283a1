// libFuzzer target for TCP/TLS framing (RFC 8656 §6.2, §12.5): feeds a byte stream into
// StreamFramer in chunks whose sizes come from the input, and checks that the frames plus the
// leftover are exactly the bytes delivered, and that they agree with peekFrame on the stream.
//
// Input layout: byte 0 = flags (bit 7: small 256-byte framer; bits 0-2: number of chunk-size
// bytes, 0-7), then that many chunk-size bytes (each chunk is 1 + 8 * value bytes, cycled), then
// the stream itself.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_check.hpp"
#include "relay/wire/channel_data.hpp"
#include "relay/wire/stream_framer.hpp"

namespace {

using namespace tern::wire;

struct Frame {
  FrameKind kind;
  std::size_t offset;  // in the stream
  std::size_t size;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const std::uint8_t flags = data[0];
  const std::size_t n_sizes = std::min<std::size_t>(flags & 0x07, size - 1);
  const Bytes sizes{data + 1, n_sizes};
  const Bytes stream{data + 1 + n_sizes, size - 1 - n_sizes};
  const std::size_t capacity = (flags & 0x80) ? 256 : kMaxStreamFrameSize;

  StreamFramer framer(capacity);
  std::vector<Frame> frames;
  std::size_t fed = 0;       // stream bytes committed to the framer
  std::size_t consumed = 0;  // stream bytes returned as frames
  std::size_t chunk_index = 0;
  while (fed < stream.size() && !framer.invalid()) {
    const std::size_t chunk =
        sizes.empty() ? stream.size() : 1 + 8 * std::size_t{sizes[chunk_index++ % sizes.size()]};
    MutableBytes w = framer.writable();
    const std::size_t n = std::min({chunk, stream.size() - fed, w.size()});
    // After draining, a valid stream always leaves room: a frame that fits completes before the
    // buffer fills, and one that does not fit turns the framer invalid.
    TERN_FUZZ_CHECK(n > 0);
    std::memcpy(w.data(), stream.data() + fed, n);
    framer.commit(n);
    fed += n;
    while (auto f = framer.next()) {
      // Each frame is the next bytes of the stream, in order.
      TERN_FUZZ_CHECK(consumed + f->bytes.size() <= fed);
      TERN_FUZZ_CHECK(std::equal(f->bytes.begin(), f->bytes.end(), stream.begin() +
                                 static_cast<std::ptrdiff_t>(consumed)));
      TERN_FUZZ_CHECK(!f->bytes.empty() && f->bytes.size() <= capacity);
      const FrameInfo info = peekFrame(f->bytes);
      TERN_FUZZ_CHECK(info.status == FrameInfo::Status::kComplete);
      TERN_FUZZ_CHECK(info.kind == f->kind);
      TERN_FUZZ_CHECK(info.size == f->bytes.size());
      frames.push_back({f->kind, consumed, f->bytes.size()});
      consumed += f->bytes.size();
    }
    TERN_FUZZ_CHECK(consumed + framer.buffered() == fed);
  }

  // Frames + leftover == the prefix of the stream that was delivered. writable() moves the
  // leftover to the front of the buffer, just before the writable space.
  if (!framer.invalid()) {
    const std::size_t leftover = framer.buffered();
    MutableBytes w = framer.writable();
    TERN_FUZZ_CHECK(framer.buffered() == leftover);
    const std::uint8_t* rest = w.data() - leftover;
    TERN_FUZZ_CHECK(std::equal(rest, rest + leftover, stream.begin() +
                               static_cast<std::ptrdiff_t>(consumed)));
    TERN_FUZZ_CHECK(fed == stream.size());
  }

  // Cross-check with peekFrame run over the delivered bytes in one piece.
  std::size_t pos = 0;
  for (const Frame& f : frames) {
    const FrameInfo info = peekFrame(stream.subspan(pos, fed - pos));
    TERN_FUZZ_CHECK(info.status == FrameInfo::Status::kComplete);
    TERN_FUZZ_CHECK(info.kind == f.kind);
    TERN_FUZZ_CHECK(info.size == f.size);
    TERN_FUZZ_CHECK(pos == f.offset);
    pos += info.size;
  }
  const FrameInfo tail = peekFrame(stream.subspan(pos, fed - pos));
  if (framer.invalid()) {
    // The framer gave up on this frame: it cannot be STUN/ChannelData, or cannot fit.
    TERN_FUZZ_CHECK(tail.status == FrameInfo::Status::kInvalid || tail.size > capacity);
  } else {
    // What is left is an incomplete frame (or nothing).
    TERN_FUZZ_CHECK(tail.status == FrameInfo::Status::kNeedMore);
    TERN_FUZZ_CHECK(tail.size <= capacity);
  }
  // The first byte alone decides STUN or ChannelData (RFC 8656 §12.5, RFC 7983 §7).
  if (pos < fed) {
    const PacketKind kind = classifyFirstByte(stream[pos]);
    if (tail.status != FrameInfo::Status::kInvalid) {
      TERN_FUZZ_CHECK((kind == PacketKind::kStun && tail.kind == FrameKind::kStun) ||
                      (kind == PacketKind::kChannelData && tail.kind == FrameKind::kChannelData));
    }
  }
  return 0;
}
