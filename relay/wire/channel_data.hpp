// TURN ChannelData messages (RFC 8656 §12.4) and the first-byte demultiplexing of STUN,
// ChannelData and everything else on a TURN port (RFC 8656 §12.5, RFC 7983 §7).
#pragma once

#include <cstdint>
#include <optional>

#include "relay/wire/bytes.hpp"

namespace tern::wire {

// RFC 8656 §12 narrowed channel numbers to 0x4000-0x4FFF; RFC 5766, which it replaced, had
// 0x4000-0x7FFF, and clients still in use pick from that range (coturn's own turnutils_uclient
// among them). tern accepts both: on a TURN port a first byte of 0x50-0x7F collides with
// nothing (RFC 7983 §7 leaves 80-127 unassigned), and refusing would break those calls.
inline constexpr std::uint16_t kMinChannel = 0x4000;
inline constexpr std::uint16_t kMaxChannel = 0x7FFF;
inline constexpr std::uint16_t kMaxChannelRfc8656 = 0x4FFF;
inline constexpr std::size_t kChannelDataHeaderSize = 4;
constexpr bool isValidChannel(std::uint16_t n) noexcept {
  return n >= kMinChannel && n <= kMaxChannel;
}

//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |         Channel Number        |            Length             |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// /                       Application Data                        /
struct ChannelDataView {
  std::uint16_t channel = 0;
  Bytes data;

  // Over UDP the datagram may carry padding after the data (RFC 8656 §12.5); anything
  // shorter than the length field says is dropped, as is a channel outside 0x4000-0x7FFF.
  static std::optional<ChannelDataView> parse(Bytes datagram) noexcept;
};

// Writes the 4-byte header in front of a payload of `length` bytes.
inline void writeChannelDataHeader(std::uint8_t* out, std::uint16_t channel,
                                   std::uint16_t length) noexcept {
  storeU16(out, channel);
  storeU16(out + 2, length);
}

enum class PacketKind : std::uint8_t { kStun, kChannelData, kDtls, kOther };

// RFC 7983 §7 and RFC 8656 §12.5: 0-3 STUN, 20-63 DTLS, 64-79 ChannelData; 80-127 as well
// for RFC 5766 channel numbers (see kMaxChannel).
constexpr PacketKind classifyFirstByte(std::uint8_t b) noexcept {
  if (b <= 3) return PacketKind::kStun;
  if (b >= 20 && b <= 63) return PacketKind::kDtls;
  if (b >= 64 && b <= 127) return PacketKind::kChannelData;
  return PacketKind::kOther;
}
inline PacketKind classify(Bytes packet) noexcept {
  return packet.empty() ? PacketKind::kOther : classifyFirstByte(packet[0]);
}

}  // namespace tern::wire
