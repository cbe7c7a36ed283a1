// ChannelData parsing (RFC 8656 §12.4-12.5).
#include "relay/wire/channel_data.hpp"

namespace tern::wire {

std::optional<ChannelDataView> ChannelDataView::parse(Bytes datagram) noexcept {
  if (datagram.size() < kChannelDataHeaderSize) return std::nullopt;
  const std::uint16_t channel = loadU16(datagram.data());
  const std::size_t length = loadU16(datagram.data() + 2);
  if (!isValidChannel(channel)) return std::nullopt;
  if (datagram.size() - kChannelDataHeaderSize < length) return std::nullopt;
  return ChannelDataView{channel, datagram.subspan(kChannelDataHeaderSize, length)};
}

}  // namespace tern::wire
