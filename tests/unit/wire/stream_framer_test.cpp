// Framing of TURN over TCP/TLS (RFC 8656 §6.2, §12.5): peekFrame on buffered bytes and the
// StreamFramer reassembly buffer, fed whole, byte by byte and in uneven chunks.
#include <doctest/doctest.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "relay/wire/channel_data.hpp"
#include "relay/wire/message.hpp"
#include "relay/wire/stream_framer.hpp"
#include "support/hex.hpp"
#include "vectors/stun_vectors.hpp"

namespace {

using tern::test::fromHex;
using tern::test::toHex;
using tern::wire::Bytes;
using tern::wire::FrameInfo;
using tern::wire::FrameKind;
using tern::wire::peekFrame;
using tern::wire::StreamFramer;
using Status = FrameInfo::Status;
namespace vectors = tern::test::vectors;

struct Frame {
  FrameKind kind;
  std::vector<std::uint8_t> bytes;
  friend bool operator==(const Frame&, const Frame&) = default;
};

// Copies as much of `data` as fits into the framer; returns how much that was.
std::size_t deliver(StreamFramer& framer, Bytes data) {
  auto w = framer.writable();
  const std::size_t n = std::min(w.size(), data.size());
  std::copy_n(data.begin(), n, w.begin());
  framer.commit(n);
  return n;
}

// Takes every complete frame, copying each: a frame's bytes live until the next writable().
std::vector<Frame> drain(StreamFramer& framer) {
  std::vector<Frame> out;
  while (auto f = framer.next()) out.push_back({f->kind, {f->bytes.begin(), f->bytes.end()}});
  return out;
}

// Feeds `stream` in chunks of `chunk` bytes, draining after each, and returns all frames.
std::vector<Frame> feed(StreamFramer& framer, Bytes stream, std::size_t chunk) {
  std::vector<Frame> frames;
  std::size_t pos = 0;
  while (pos < stream.size()) {
    const std::size_t n = deliver(framer, stream.subspan(pos, std::min(chunk, stream.size() - pos)));
    REQUIRE(n > 0);
    pos += n;
    auto more = drain(framer);
    frames.insert(frames.end(), more.begin(), more.end());
  }
  return frames;
}

const std::vector<std::uint8_t> kStun1 = fromHex(vectors::kRfc5769ResponseV4);  // 80 bytes
const std::vector<std::uint8_t> kStun2 = fromHex(vectors::kRfc5769Request);     // 108 bytes
// RFC 8656 §12.5: over a stream, ChannelData is padded to a multiple of 4.
const std::vector<std::uint8_t> kChannelData5 = fromHex("40000005" "0102030405" "000000");
const std::vector<std::uint8_t> kChannelData0 = fromHex("4fff0000");

std::vector<std::uint8_t> concat(std::initializer_list<const std::vector<std::uint8_t>*> parts) {
  std::vector<std::uint8_t> out;
  for (const auto* p : parts) out.insert(out.end(), p->begin(), p->end());
  return out;
}

std::vector<Frame> expectedFrames() {
  return {{FrameKind::kStun, kStun1},
          {FrameKind::kChannelData, kChannelData5},
          {FrameKind::kStun, kStun2},
          {FrameKind::kChannelData, kChannelData0}};
}

// --- peekFrame ------------------------------------------------------------------------------

TEST_CASE("peekFrame frames STUN by its length field (RFC 8489 §5, RFC 8656 §6.2)") {
  for (std::size_t n = 0; n < kStun1.size(); ++n) {
    CAPTURE(n);
    const FrameInfo info = peekFrame(Bytes{kStun1}.first(n));
    CHECK(info.status == Status::kNeedMore);
    CHECK(info.kind == FrameKind::kStun);
    CHECK(info.size == (n < 4 ? 0 : kStun1.size()));
  }
  const FrameInfo whole = peekFrame(kStun1);
  CHECK(whole.status == Status::kComplete);
  CHECK(whole.size == 80);
  // Bytes of the next frame behind it do not change the answer.
  const auto two = concat({&kStun1, &kStun2});
  CHECK(peekFrame(two).size == 80);
  CHECK(peekFrame(two).status == Status::kComplete);
}

TEST_CASE("peekFrame pads ChannelData to 4 bytes on a stream (RFC 8656 §12.5)") {
  for (std::size_t n = 0; n < kChannelData5.size(); ++n) {
    CAPTURE(n);
    const FrameInfo info = peekFrame(Bytes{kChannelData5}.first(n));
    CHECK(info.status == Status::kNeedMore);
    if (n >= 4) {
      CHECK(info.size == 12);
    }
  }
  const FrameInfo whole = peekFrame(kChannelData5);
  CHECK(whole.status == Status::kComplete);
  CHECK(whole.kind == FrameKind::kChannelData);
  CHECK(whole.size == 12);
  CHECK(peekFrame(kChannelData0).size == 4);
  CHECK(peekFrame(fromHex("4000ffff")).size == 4 + 0x10000);
  CHECK(peekFrame(fromHex("4ffffffc")).size == 4 + 0xfffc);
}

TEST_CASE("peekFrame rejects a first byte that is neither STUN nor ChannelData "
          "(RFC 8656 §12.5)") {
  // 0x50-0x7F are ChannelData for RFC 5766 channels (see wire::kMaxChannel).
  for (std::uint8_t first : std::initializer_list<std::uint8_t>{0x04, 0x13, 0x16, 0x3f, 0x80, 0xff}) {
    CAPTURE(static_cast<int>(first));
    const std::uint8_t bytes[] = {first, 0, 0, 0, 0x21, 0x12, 0xa4, 0x42};
    CHECK(peekFrame(bytes).status == Status::kInvalid);
    CHECK(peekFrame(Bytes{bytes}.first(1)).status == Status::kInvalid);
  }
  CHECK(peekFrame({}).status == Status::kNeedMore);
}

TEST_CASE("peekFrame rejects a bad magic cookie once it has arrived (RFC 8489 §6.3)") {
  auto bad = kStun1;
  bad[4] ^= 0xff;
  CHECK(peekFrame(Bytes{bad}.first(7)).status == Status::kNeedMore);
  CHECK(peekFrame(Bytes{bad}.first(8)).status == Status::kInvalid);
  CHECK(peekFrame(bad).status == Status::kInvalid);
}

TEST_CASE("peekFrame rejects a STUN length that is not a multiple of 4 (RFC 8489 §5)") {
  CHECK(peekFrame(fromHex("00010001")).status == Status::kInvalid);
  CHECK(peekFrame(fromHex("0001000e" "2112a442")).status == Status::kInvalid);
}

// --- StreamFramer ---------------------------------------------------------------------------

TEST_CASE("StreamFramer returns several frames delivered in one commit") {
  const auto stream = concat({&kStun1, &kChannelData5, &kStun2, &kChannelData0});
  StreamFramer framer;
  REQUIRE(deliver(framer, stream) == stream.size());
  CHECK(drain(framer) == expectedFrames());
  CHECK(framer.buffered() == 0);
  CHECK_FALSE(framer.invalid());
}

TEST_CASE("StreamFramer yields the same frames when bytes arrive one at a time") {
  const auto stream = concat({&kStun1, &kChannelData5, &kStun2, &kChannelData0});
  for (std::size_t chunk : std::initializer_list<std::size_t>{1, 2, 3, 7, 13, 64, 1000}) {
    CAPTURE(chunk);
    StreamFramer framer;
    CHECK(feed(framer, stream, chunk) == expectedFrames());
    CHECK(framer.buffered() == 0);
    CHECK_FALSE(framer.invalid());
  }
}

TEST_CASE("StreamFramer keeps a partial frame across writable()") {
  const auto stream = concat({&kStun1, &kStun2});
  StreamFramer framer(200);
  REQUIRE(deliver(framer, Bytes{stream}.first(100)) == 100);
  auto first = drain(framer);
  REQUIRE(first.size() == 1);
  CHECK(first[0].bytes == kStun1);
  CHECK(framer.buffered() == 20);
  // writable() moves the 20 buffered bytes to the front; the rest still fits in 200 bytes.
  CHECK(framer.writable().size() == 180);
  REQUIRE(deliver(framer, Bytes{stream}.subspan(100)) == stream.size() - 100);
  auto second = drain(framer);
  REQUIRE(second.size() == 1);
  CHECK(second[0].bytes == kStun2);
}

TEST_CASE("StreamFramer turns invalid on a bad first byte, and stays invalid "
          "(RFC 8656 §12.5)") {
  StreamFramer framer;
  const auto garbage = fromHex("474554202f20485454502f312e310d0a");  // "GET / HTTP/1.1\r\n"
  // 'G' (0x47) falls in the ChannelData range, so HTTP is framed as channel 0x4745 and waits.
  deliver(framer, garbage);
  CHECK_FALSE(framer.next().has_value());
  CHECK_FALSE(framer.invalid());

  StreamFramer rtp;
  deliver(rtp, fromHex("80e1000100000000"));
  CHECK_FALSE(rtp.next().has_value());
  CHECK(rtp.invalid());
  deliver(rtp, kStun1);
  CHECK_FALSE(rtp.next().has_value());
  CHECK(rtp.invalid());
}

TEST_CASE("StreamFramer turns invalid on a bad magic cookie after a good frame") {
  auto bad = kStun2;
  bad[5] ^= 0x01;
  const auto stream = concat({&kStun1, &bad});
  StreamFramer framer;
  deliver(framer, stream);
  auto frames = drain(framer);
  REQUIRE(frames.size() == 1);
  CHECK(frames[0].bytes == kStun1);
  CHECK(framer.invalid());
}

TEST_CASE("StreamFramer fits the largest STUN message and the largest ChannelData "
          "(RFC 8489 §5, RFC 8656 §12.4)") {
  // A Send indication whose DATA fills the 16-bit length: 20 + 0xFFFC bytes.
  std::vector<std::uint8_t> stun(tern::wire::kMaxStreamFrameSize, 0x5a);
  const auto header = fromHex("00160000" "2112a442" "0102030405060708090a0b0c" "0013fff8");
  std::copy(header.begin(), header.end(), stun.begin());
  tern::wire::storeU16(&stun[2], 0xfffc);
  REQUIRE(tern::wire::MessageView::parse(stun).has_value());

  // A ChannelData message of 0xFFFF bytes, padded to 0x10000.
  std::vector<std::uint8_t> cd(4 + 0x10000, 0xa5);
  tern::wire::writeChannelDataHeader(cd.data(), 0x4000, 0xffff);
  std::fill(cd.end() - 1, cd.end(), 0);

  const auto stream = concat({&stun, &cd, &kStun1});
  StreamFramer framer;
  auto frames = feed(framer, stream, 1500);
  REQUIRE(frames.size() == 3);
  CHECK(frames[0].kind == FrameKind::kStun);
  CHECK(frames[0].bytes.size() == tern::wire::kMaxStreamFrameSize);
  CHECK(frames[0].bytes == stun);
  CHECK(frames[1].kind == FrameKind::kChannelData);
  CHECK(frames[1].bytes == cd);
  CHECK(frames[2].bytes == kStun1);
  CHECK_FALSE(framer.invalid());
}

TEST_CASE("StreamFramer turns invalid on a frame larger than its capacity") {
  StreamFramer framer(64);
  CHECK(deliver(framer, kStun1) == 64);
  CHECK_FALSE(framer.next().has_value());
  CHECK(framer.invalid());
}

}  // namespace

TEST_CASE("a framer that has received nothing has nothing to give and nothing unread") {
  // Its buffer comes with the first bytes: idle or refused connections cost none.
  tern::wire::StreamFramer framer;
  CHECK_FALSE(framer.next().has_value());
  CHECK(framer.unread().empty());
  CHECK_FALSE(framer.invalid());
  CHECK(framer.writable().size() == tern::wire::kMaxStreamFrameSize);
}
