// See mobility_ticket.hpp.
#include "auth/mobility_ticket.hpp"

#include <algorithm>
#include <exception>
#include <string_view>

#include "auth/base64.hpp"
#include "auth/crypto.hpp"

namespace tern::auth {

namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kBodySize = 14;  // everything before the tag
constexpr std::size_t kTagSize = MobilityTicketCodec::kRawSize - kBodySize;

Bytes textBytes(std::string_view s) noexcept { return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()}; }

void putBig(std::uint8_t* out, std::uint64_t v, std::size_t n) noexcept {
  for (std::size_t i = 0; i < n; ++i) out[i] = static_cast<std::uint8_t>(v >> (8 * (n - 1 - i)));
}

std::uint64_t getBig(const std::uint8_t* in, std::size_t n) noexcept {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v = (v << 8) | in[i];
  return v;
}

}  // namespace

MobilityTicketCodec::MobilityTicketCodec(std::span<const std::uint8_t> secret)
    : key_(hmacSha256(secret, {textBytes("tern mobility ticket key v1")})) {}

std::string MobilityTicketCodec::seal(const MobilityTicket& ticket) const {
  std::array<std::uint8_t, kRawSize> out{};
  out[0] = kVersion;
  out[1] = ticket.worker;
  putBig(out.data() + 2, ticket.relay, 4);
  putBig(out.data() + 6, ticket.handle, 8);
  const Sha256Digest tag = hmacSha256(key_, {Bytes(out.data(), kBodySize)});
  std::copy_n(tag.begin(), kTagSize, out.begin() + kBodySize);
  return base64Encode(out);
}

std::optional<MobilityTicket> MobilityTicketCodec::open(std::span<const std::uint8_t> text) const noexcept {
  if (text.size() != kSize) return std::nullopt;
  try {
    const auto raw = base64Decode({reinterpret_cast<const char*>(text.data()), text.size()});
    if (!raw || raw->size() != kRawSize || (*raw)[0] != kVersion) return std::nullopt;
    const Bytes sealed(*raw);
    const Sha256Digest tag = hmacSha256(key_, {sealed.first(kBodySize)});
    if (!constantTimeEqual(Bytes(tag.data(), kTagSize), sealed.subspan(kBodySize))) return std::nullopt;
    return MobilityTicket{sealed[1], static_cast<std::uint32_t>(getBig(sealed.data() + 2, 4)),
                          getBig(sealed.data() + 6, 8)};
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace tern::auth
