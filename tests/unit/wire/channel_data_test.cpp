// ChannelData parsing (RFC 8656 §12.4-12.5) and first-byte demultiplexing (RFC 7983 §7,
// RFC 8656 §12.5).
#include <doctest/doctest.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <optional>
#include <vector>

#include "relay/wire/channel_data.hpp"
#include "support/hex.hpp"

namespace {

using tern::test::fromHex;
using tern::test::toHex;
using tern::wire::Bytes;
using tern::wire::ChannelDataView;
using tern::wire::PacketKind;

// Parses from an exact-size heap copy, so AddressSanitizer catches a read past the datagram.
std::optional<ChannelDataView> parse(const std::vector<std::uint8_t>& datagram,
                                     std::unique_ptr<std::uint8_t[]>& storage) {
  storage = std::make_unique<std::uint8_t[]>(datagram.size());
  std::copy(datagram.begin(), datagram.end(), storage.get());
  return ChannelDataView::parse(Bytes{storage.get(), datagram.size()});
}

TEST_CASE("parses a ChannelData message (RFC 8656 §12.4)") {
  std::unique_ptr<std::uint8_t[]> storage;
  auto cd = parse(fromHex("40000004" "deadbeef"), storage);
  REQUIRE(cd.has_value());
  CHECK(cd->channel == 0x4000);
  CHECK(toHex(cd->data) == "deadbeef");
  CHECK(cd->data.data() == storage.get() + 4);

  auto empty = parse(fromHex("4fff0000"), storage);
  REQUIRE(empty.has_value());
  CHECK(empty->channel == 0x4fff);
  CHECK(empty->data.empty());
}

TEST_CASE("accepts channels 0x4000-0x4FFF only (RFC 8656 §12)") {
  std::unique_ptr<std::uint8_t[]> storage;
  for (std::uint16_t channel : std::initializer_list<std::uint16_t>{0x4000, 0x4001, 0x4abc, 0x4fff}) {
    CAPTURE(channel);
    std::vector<std::uint8_t> d{static_cast<std::uint8_t>(channel >> 8),
                                static_cast<std::uint8_t>(channel), 0, 1, 0x55};
    CHECK(parse(d, storage).has_value());
    CHECK(tern::wire::isValidChannel(channel));
  }
}

TEST_CASE("rejects channel 0x3FFF (RFC 8656 §12)") {
  std::unique_ptr<std::uint8_t[]> storage;
  CHECK_FALSE(parse(fromHex("3fff0001" "55000000"), storage).has_value());
  CHECK_FALSE(tern::wire::isValidChannel(0x3fff));
}

TEST_CASE("accepts RFC 5766 channels 0x5000-0x7FFF that RFC 8656 §12 reserves, for interop") {
  std::unique_ptr<std::uint8_t[]> storage;
  CHECK(parse(fromHex("50000001" "55000000"), storage).has_value());
  CHECK(parse(fromHex("7fff0000"), storage).has_value());
  CHECK(tern::wire::isValidChannel(0x5000));
  CHECK(tern::wire::isValidChannel(0x7fff));
}

TEST_CASE("rejects channel 0x8000 and above, and 0x0000 (RFC 5766 §11, RFC 8656 §12)") {
  std::unique_ptr<std::uint8_t[]> storage;
  CHECK_FALSE(parse(fromHex("80000001" "55000000"), storage).has_value());
  CHECK_FALSE(tern::wire::isValidChannel(0x8000));
  CHECK_FALSE(tern::wire::isValidChannel(0xffff));
  CHECK_FALSE(tern::wire::isValidChannel(0x0000));
}

TEST_CASE("rejects a datagram shorter than its header or its length (RFC 8656 §12.5)") {
  std::unique_ptr<std::uint8_t[]> storage;
  for (auto hex : {"", "40", "4000", "400000"}) {
    CAPTURE(hex);
    CHECK_FALSE(parse(fromHex(hex), storage).has_value());
  }
  CHECK_FALSE(parse(fromHex("40000005" "deadbeef"), storage).has_value());
  CHECK_FALSE(parse(fromHex("4000ffff" "deadbeef"), storage).has_value());
}

TEST_CASE("allows padding after the data over UDP (RFC 8656 §12.5)") {
  std::unique_ptr<std::uint8_t[]> storage;
  auto cd = parse(fromHex("40010003" "aabbcc00"), storage);
  REQUIRE(cd.has_value());
  CHECK(toHex(cd->data) == "aabbcc");
  auto unpadded = parse(fromHex("40010003" "aabbcc"), storage);
  REQUIRE(unpadded.has_value());
  CHECK(toHex(unpadded->data) == "aabbcc");
}

TEST_CASE("writeChannelDataHeader writes channel and length (RFC 8656 §12.4)") {
  std::vector<std::uint8_t> out(4);
  tern::wire::writeChannelDataHeader(out.data(), 0x4123, 0x0456);
  CHECK(toHex(out) == "41230456");
}

TEST_CASE("classifies packets by first byte at the RFC 7983 boundaries (RFC 7983 §7, "
          "RFC 8656 §12.5)") {
  struct Case {
    std::uint8_t first;
    PacketKind kind;
  };
  const Case cases[] = {
      {0, PacketKind::kStun},          {3, PacketKind::kStun},
      {4, PacketKind::kOther},         {19, PacketKind::kOther},
      {20, PacketKind::kDtls},         {63, PacketKind::kDtls},
      {64, PacketKind::kChannelData},  {79, PacketKind::kChannelData},
      {80, PacketKind::kChannelData},  {127, PacketKind::kChannelData},
      {128, PacketKind::kOther},       {255, PacketKind::kOther},
  };
  for (const Case& c : cases) {
    CAPTURE(static_cast<int>(c.first));
    CHECK(tern::wire::classifyFirstByte(c.first) == c.kind);
    const std::uint8_t packet[] = {c.first, 0, 0, 0};
    CHECK(tern::wire::classify(packet) == c.kind);
  }
  CHECK(tern::wire::classify({}) == PacketKind::kOther);
  // Every byte falls in exactly the range its kind names.
  for (int b = 0; b < 256; ++b) {
    PacketKind expected = PacketKind::kOther;
    if (b <= 3) {
      expected = PacketKind::kStun;
    } else if (b >= 20 && b <= 63) {
      expected = PacketKind::kDtls;
    } else if (b >= 64 && b <= 127) {  // RFC 5766 channels up to 0x7FFF
      expected = PacketKind::kChannelData;
    }
    CAPTURE(b);
    CHECK(tern::wire::classifyFirstByte(static_cast<std::uint8_t>(b)) == expected);
  }
}

}  // namespace
