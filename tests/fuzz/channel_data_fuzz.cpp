// libFuzzer target for ChannelData datagrams (RFC 8656 §12.4-12.5) and first-byte
// demultiplexing (RFC 7983 §7): parses arbitrary bytes as a UDP datagram, checks the view
// against the bytes, and rebuilds the message to parse it again.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_check.hpp"
#include "relay/wire/channel_data.hpp"
#include "relay/wire/stream_framer.hpp"

using namespace tern::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes datagram{data, size};
  const PacketKind kind = classify(datagram);
  const auto cd = ChannelDataView::parse(datagram);
  if (!cd) {
    // Rejected: too short, a channel outside 0x4000-0x4FFF, or shorter than its length.
    TERN_FUZZ_CHECK(size < kChannelDataHeaderSize || !isValidChannel(loadU16(data)) ||
                    size - kChannelDataHeaderSize < loadU16(data + 2));
    return 0;
  }
  // RFC 8656 §12: a valid channel number starts with 0x40-0x4F, which RFC 7983 routes to TURN.
  TERN_FUZZ_CHECK(kind == PacketKind::kChannelData);
  TERN_FUZZ_CHECK(isValidChannel(cd->channel));
  TERN_FUZZ_CHECK(cd->channel == loadU16(data));
  TERN_FUZZ_CHECK(cd->data.size() == loadU16(data + 2));
  // The data is the bytes right after the header; UDP padding after it is allowed and ignored.
  TERN_FUZZ_CHECK(cd->data.data() == data + kChannelDataHeaderSize);
  TERN_FUZZ_CHECK(kChannelDataHeaderSize + cd->data.size() <= size);
  tern::fuzz::touch(cd->data);

  // Rebuilt without padding, it parses to the same channel and data.
  std::vector<std::uint8_t> rebuilt(kChannelDataHeaderSize + cd->data.size());
  writeChannelDataHeader(rebuilt.data(), cd->channel, static_cast<std::uint16_t>(cd->data.size()));
  if (!cd->data.empty()) std::memcpy(rebuilt.data() + kChannelDataHeaderSize, cd->data.data(), cd->data.size());
  const auto again = ChannelDataView::parse(rebuilt);
  TERN_FUZZ_CHECK(again.has_value());
  TERN_FUZZ_CHECK(again->channel == cd->channel);
  TERN_FUZZ_CHECK(std::equal(again->data.begin(), again->data.end(), cd->data.begin(), cd->data.end()));

  // On a stream the same message is framed with its padding (RFC 8656 §12.5).
  const FrameInfo frame = peekFrame(datagram);
  TERN_FUZZ_CHECK(frame.kind == FrameKind::kChannelData);
  TERN_FUZZ_CHECK(frame.size == kChannelDataHeaderSize + padTo4(cd->data.size()));
  TERN_FUZZ_CHECK((frame.status == FrameInfo::Status::kComplete) == (size >= frame.size));
  return 0;
}
