// See reservation_hand_over.hpp.
#include "relay/io/reservation_hand_over.hpp"

#include <algorithm>
#include <array>

namespace tern::io {

namespace {

// token + family + IPv4 + port + remaining: the smallest record.
constexpr std::size_t kMinRecord = 8 + 1 + 4 + 2 + 4;

void put(std::vector<std::uint8_t>& out, std::uint64_t v, int bytes) {
  for (int shift = 8 * (bytes - 1); shift >= 0; shift -= 8)
    out.push_back(static_cast<std::uint8_t>(v >> shift));
}

std::optional<wire::IpAddress> takeIp(wire::ByteReader& r) noexcept {
  const std::uint8_t family = r.u8();
  if (family == static_cast<std::uint8_t>(wire::AddressFamily::kIPv4)) {
    std::array<std::uint8_t, 4> b{};
    const wire::Bytes raw = r.bytes(b.size());
    if (raw.size() != b.size()) return std::nullopt;
    std::copy(raw.begin(), raw.end(), b.begin());
    return wire::IpAddress::v4(b);
  }
  if (family == static_cast<std::uint8_t>(wire::AddressFamily::kIPv6)) {
    std::array<std::uint8_t, 16> b{};
    const wire::Bytes raw = r.bytes(b.size());
    if (raw.size() != b.size()) return std::nullopt;
    std::copy(raw.begin(), raw.end(), b.begin());
    return wire::IpAddress::v6(b);
  }
  return std::nullopt;
}

}  // namespace

void encodeReservations(const std::vector<HandedReservation>& reservations,
                        std::vector<std::uint8_t>& out) {
  put(out, reservations.size(), 4);
  for (const HandedReservation& r : reservations) {
    put(out, r.token, 8);
    const wire::IpAddress& ip = r.address.ip;
    out.push_back(static_cast<std::uint8_t>(ip.family()));
    out.insert(out.end(), ip.data(), ip.data() + ip.size());
    put(out, r.address.port, 2);
    const auto ms =
        std::clamp<std::int64_t>(r.remaining.count(), 0, ReservationRegistry::kHold.count() * 1000);
    put(out, static_cast<std::uint64_t>(ms), 4);
  }
}

std::optional<std::string> decodeReservations(wire::Bytes& in,
                                              std::vector<HandedReservation>& out) {
  wire::ByteReader r(in);
  const std::uint32_t count = r.u32();
  if (!r.ok()) return "bad reservation count";
  if (count > r.remaining() / kMinRecord) return "reservation count over the payload's size";
  out.reserve(count);
  for (std::uint32_t i = 0; i < count; ++i) {
    HandedReservation h;
    const std::uint64_t high = r.u32();
    h.token = (high << 32) | r.u32();
    const auto ip = takeIp(r);
    h.address.port = r.u16();
    h.remaining = std::chrono::milliseconds(r.u32());
    if (!r.ok() || !ip) return "truncated reservation";
    // RFC 8656 §7.2: a token names a reservation; zero is no token, and the hold is ~30 s.
    if (h.token == 0) return "a reservation without a token";
    if (h.remaining > ReservationRegistry::kHold) return "a reservation held past 30 seconds";
    h.address.ip = *ip;
    out.push_back(h);
  }
  in = in.subspan(r.position());
  return std::nullopt;
}

}  // namespace tern::io
