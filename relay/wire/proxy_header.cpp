// PROXY protocol v1 and v2 header parsing; see proxy_header.hpp. Section numbers are those of
// HAProxy's doc/proxy-protocol.txt.
#include "relay/wire/proxy_header.hpp"

#include <algorithm>
#include <array>
#include <string_view>

namespace tern::wire {

namespace {

using Status = ProxyParse::Status;

constexpr std::string_view kV1Prefix = "PROXY ";
// §2.1: "a 108-byte buffer is always enough to store all the line and a trailing zero".
constexpr std::size_t kV1MaxLine = 107;
// §2.2: the v2 signature, chosen so it cannot start a v1 line or common protocols.
constexpr std::array<std::uint8_t, 12> kV2Signature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                                       0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
constexpr std::size_t kV2Fixed = 16;  // signature, version/command, family/protocol, length

ProxyParse invalid(ProxyHeaderError error) noexcept {
  ProxyParse r;
  r.status = Status::kInvalid;
  r.error = error;
  return r;
}

ProxyParse done(ProxyHeader header) noexcept {
  ProxyParse r;
  r.status = Status::kDone;
  r.header = header;
  return r;
}

// True when the first `data.size()` bytes (or all of `prefix`) agree.
bool startsLike(std::span<const std::uint8_t> data, std::span<const std::uint8_t> prefix) noexcept {
  const std::size_t n = std::min(data.size(), prefix.size());
  return std::equal(data.begin(), data.begin() + static_cast<std::ptrdiff_t>(n), prefix.begin());
}

std::span<const std::uint8_t> asBytes(std::string_view s) noexcept {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

// §2.1: ports are decimal, 0-65535, without leading zeros.
std::optional<std::uint16_t> parsePort(std::string_view text) noexcept {
  if (text.empty() || text.size() > 5 || (text.size() > 1 && text[0] == '0')) return std::nullopt;
  std::uint32_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + static_cast<std::uint32_t>(c - '0');
  }
  if (value > 65535) return std::nullopt;
  return static_cast<std::uint16_t>(value);
}

// Splits off the text before the next single space.
std::string_view nextField(std::string_view& rest) noexcept {
  const auto space = rest.find(' ');
  const std::string_view field = rest.substr(0, space);
  rest = space == std::string_view::npos ? std::string_view{} : rest.substr(space + 1);
  return field;
}

// §2.1: "PROXY" SP ("TCP4" | "TCP6") SP src SP dst SP sport SP dport CRLF, or
// "PROXY UNKNOWN" followed by anything up to CRLF (the receiver ignores it).
ProxyParse parseV1(std::span<const std::uint8_t> data) noexcept {
  if (!startsLike(data, asBytes(kV1Prefix))) return invalid(ProxyHeaderError::kMissing);
  const std::string_view text{reinterpret_cast<const char*>(data.data()),
                              std::min(data.size(), kV1MaxLine)};
  const auto cr = text.find('\r');
  if (cr == std::string_view::npos) {
    return data.size() >= kV1MaxLine ? invalid(ProxyHeaderError::kTooLong) : ProxyParse{};
  }
  if (cr + 1 >= text.size()) {
    return data.size() > cr + 1 || cr + 1 >= kV1MaxLine ? invalid(ProxyHeaderError::kTooLong)
                                                        : ProxyParse{};
  }
  if (text[cr + 1] != '\n') return invalid(ProxyHeaderError::kMalformed);
  ProxyHeader header{cr + 2, 1, std::nullopt, std::nullopt};
  std::string_view rest = text.substr(kV1Prefix.size(), cr - kV1Prefix.size());
  const std::string_view protocol = nextField(rest);
  if (protocol == "UNKNOWN") return done(header);
  if (protocol != "TCP4" && protocol != "TCP6") return invalid(ProxyHeaderError::kMalformed);
  const auto src = IpAddress::parse(nextField(rest));
  const auto dst = IpAddress::parse(nextField(rest));
  const auto sport = parsePort(nextField(rest));
  const auto dport = parsePort(nextField(rest));
  const bool v4 = protocol == "TCP4";
  if (!src || !dst || !sport || !dport || !rest.empty() || src->isV4() != v4 || dst->isV4() != v4)
    return invalid(ProxyHeaderError::kMalformed);
  header.source = SocketAddress{*src, *sport};
  header.destination = SocketAddress{*dst, *dport};
  return done(header);
}

std::uint16_t readU16(const std::uint8_t* p) noexcept {
  return static_cast<std::uint16_t>((p[0] << 8) | p[1]);
}

template <std::size_t N>
SocketAddress readAddress(const std::uint8_t* ip, const std::uint8_t* port) noexcept {
  std::array<std::uint8_t, N> bytes{};
  std::copy_n(ip, N, bytes.begin());
  if constexpr (N == 4) {
    return {IpAddress::v4(bytes), readU16(port)};
  } else {
    return {IpAddress::v6(bytes), readU16(port)};
  }
}

// §2.2.7: type (1 byte), length (2 bytes), value; every TLV must fit the header exactly.
// Their meaning (ALPN, authority, SSL, cloud vendors' ids) is not needed, so they are skipped.
bool tlvsFit(std::span<const std::uint8_t> tlvs) noexcept {
  while (!tlvs.empty()) {
    if (tlvs.size() < 3) return false;
    const std::size_t length = 3 + readU16(tlvs.data() + 1);
    if (length > tlvs.size()) return false;
    tlvs = tlvs.subspan(length);
  }
  return true;
}

// §2.2: the binary header.
ProxyParse parseV2(std::span<const std::uint8_t> data) noexcept {
  if (!startsLike(data, kV2Signature)) return invalid(ProxyHeaderError::kMissing);
  if (data.size() < kV2Fixed) return {};
  // §2.2: the 13th byte's high nibble is the version (2); its low nibble the command.
  const std::uint8_t version = data[12] >> 4;
  const std::uint8_t command = data[12] & 0x0F;
  if (version != 2 || command > 1) return invalid(ProxyHeaderError::kUnsupported);
  const std::uint8_t family = data[13] >> 4;
  const std::uint8_t protocol = data[13] & 0x0F;
  if (family > 3 || protocol > 2) return invalid(ProxyHeaderError::kMalformed);
  const std::size_t length = kV2Fixed + readU16(data.data() + 14);
  if (length > kMaxProxyHeader) return invalid(ProxyHeaderError::kTooLong);
  if (data.size() < length) return {};
  ProxyHeader header{length, 2, std::nullopt, std::nullopt};
  const std::span<const std::uint8_t> body = data.subspan(kV2Fixed, length - kV2Fixed);
  // §2.2: family AF_INET carries 12 address bytes, AF_INET6 36, AF_UNIX 216.
  constexpr std::array<std::size_t, 4> kAddressBytes = {0, 12, 36, 216};
  if (body.size() < kAddressBytes[family]) return invalid(ProxyHeaderError::kMalformed);
  if (!tlvsFit(body.subspan(kAddressBytes[family]))) return invalid(ProxyHeaderError::kMalformed);
  // §2.2: LOCAL is the proxy's own connection (a health check): "the receiver must accept
  // this connection as valid and must use the real connection endpoints and discard the
  // protocol block including the family". So must UNSPEC and UNIX, whose addresses say
  // nothing about an IP client.
  if (command == 0 || family == 0 || family == 3 || protocol == 0) return done(header);
  // A datagram's addresses on a stream connection are a proxy misconfiguration.
  if (protocol != 1) return invalid(ProxyHeaderError::kMalformed);
  const std::uint8_t* p = body.data();
  if (family == 1) {
    header.source = readAddress<4>(p, p + 8);
    header.destination = readAddress<4>(p + 4, p + 10);
  } else {
    header.source = readAddress<16>(p, p + 32);
    header.destination = readAddress<16>(p + 16, p + 34);
  }
  return done(header);
}

}  // namespace

const char* nameOf(ProxyHeaderError error) noexcept {
  switch (error) {
    case ProxyHeaderError::kMissing:
      return "missing";
    case ProxyHeaderError::kMalformed:
      return "malformed";
    case ProxyHeaderError::kTooLong:
      return "too_long";
    case ProxyHeaderError::kUnsupported:
      return "unsupported";
  }
  return "malformed";
}

ProxyParse parseProxyHeader(std::span<const std::uint8_t> data) noexcept {
  if (data.empty()) return {};
  // §2: the first byte tells the versions apart: 'P' for v1, CR for v2.
  if (data[0] == kV1Prefix[0]) return parseV1(data);
  return parseV2(data);
}

}  // namespace tern::wire
