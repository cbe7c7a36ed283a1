// Decoding and encoding of the typed STUN/TURN attributes declared in attributes.hpp.
#include "relay/wire/attributes.hpp"

#include <cstring>

namespace tern::wire::attr {

namespace {

std::uint16_t typeOf(AttributeType t) { return static_cast<std::uint16_t>(t); }

// RFC 8489 §14.8: the class is the hundreds digit (3-6), the number the rest (0-99).
bool validErrorCode(std::uint16_t code) { return code >= 300 && code <= 699; }

}  // namespace

//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |0 0 0 0 0 0 0 0|    Family     |           Port                |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                 Address (32 bits or 128 bits)                 |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
std::optional<SocketAddress> decodeAddress(Bytes value) noexcept {
  if (value.size() < 4) return std::nullopt;
  const std::uint8_t family = value[1];
  const auto port = loadU16(&value[2]);
  if (family == static_cast<std::uint8_t>(AddressFamily::kIPv4) && value.size() == 8) {
    return SocketAddress{IpAddress::v4({value[4], value[5], value[6], value[7]}), port};
  }
  if (family == static_cast<std::uint8_t>(AddressFamily::kIPv6) && value.size() == 20) {
    std::array<std::uint8_t, 16> b{};
    std::memcpy(b.data(), &value[4], 16);
    return SocketAddress{IpAddress::v6(b), port};
  }
  return std::nullopt;
}

void encodeAddress(MessageBuilder& b, std::uint16_t type, const SocketAddress& a) noexcept {
  const std::size_t n = a.ip.size();
  if (std::uint8_t* p = b.addAttribute(type, 4 + n)) {
    p[0] = 0;
    p[1] = static_cast<std::uint8_t>(a.ip.family());
    storeU16(p + 2, a.port);
    std::memcpy(p + 4, a.ip.data(), n);
  }
}

namespace {
// The 16-byte XOR mask: magic cookie then transaction id (RFC 8489 §14.2).
std::array<std::uint8_t, 16> xorMask(const TransactionId& tid) noexcept {
  std::array<std::uint8_t, 16> mask{};
  storeU32(mask.data(), kMagicCookie);
  std::memcpy(mask.data() + 4, tid.data(), tid.size());
  return mask;
}
}  // namespace

std::optional<SocketAddress> decodeXorAddress(Bytes value, const TransactionId& tid) noexcept {
  auto plain = decodeAddress(value);
  if (!plain) return std::nullopt;
  const auto mask = xorMask(tid);
  plain->port = static_cast<std::uint16_t>(plain->port ^ (kMagicCookie >> 16));
  if (plain->ip.isV4()) {
    plain->ip = IpAddress::v4({static_cast<std::uint8_t>(value[4] ^ mask[0]),
                               static_cast<std::uint8_t>(value[5] ^ mask[1]),
                               static_cast<std::uint8_t>(value[6] ^ mask[2]),
                               static_cast<std::uint8_t>(value[7] ^ mask[3])});
  } else {
    std::array<std::uint8_t, 16> b{};
    for (std::size_t i = 0; i < 16; ++i) b[i] = static_cast<std::uint8_t>(value[4 + i] ^ mask[i]);
    plain->ip = IpAddress::v6(b);
  }
  return plain;
}

void encodeXorAddress(MessageBuilder& b, std::uint16_t type, const SocketAddress& a) noexcept {
  const std::size_t n = a.ip.size();
  if (std::uint8_t* p = b.addAttribute(type, 4 + n)) {
    const auto mask = xorMask(b.transactionId());
    p[0] = 0;
    p[1] = static_cast<std::uint8_t>(a.ip.family());
    storeU16(p + 2, static_cast<std::uint16_t>(a.port ^ (kMagicCookie >> 16)));
    for (std::size_t i = 0; i < n; ++i) p[4 + i] = static_cast<std::uint8_t>(a.ip.data()[i] ^ mask[i]);
  }
}

std::optional<ChannelNumber> ChannelNumber::decode(Bytes v, const Header&) noexcept {
  if (v.size() != 4) return std::nullopt;
  return ChannelNumber{loadU16(v.data())};
}
void ChannelNumber::encode(MessageBuilder& b) const noexcept {
  if (std::uint8_t* p = b.addAttribute(typeOf(kType), 4)) {
    storeU16(p, number);
    storeU16(p + 2, 0);
  }
}

std::optional<Lifetime> Lifetime::decode(Bytes v, const Header&) noexcept {
  if (v.size() != 4) return std::nullopt;
  return Lifetime{loadU32(v.data())};
}
void Lifetime::encode(MessageBuilder& b) const noexcept {
  if (std::uint8_t* p = b.addAttribute(typeOf(kType), 4)) storeU32(p, seconds);
}

std::optional<RequestedTransport> RequestedTransport::decode(Bytes v, const Header&) noexcept {
  if (v.size() != 4) return std::nullopt;
  return RequestedTransport{v[0]};
}
void RequestedTransport::encode(MessageBuilder& b) const noexcept {
  if (std::uint8_t* p = b.addAttribute(typeOf(kType), 4)) {
    p[0] = protocol;
    p[1] = p[2] = p[3] = 0;
  }
}

std::optional<EvenPort> EvenPort::decode(Bytes v, const Header&) noexcept {
  if (v.size() != 1) return std::nullopt;
  return EvenPort{(v[0] & 0x80) != 0};
}
void EvenPort::encode(MessageBuilder& b) const noexcept {
  if (std::uint8_t* p = b.addAttribute(typeOf(kType), 1)) p[0] = reserve_next ? 0x80 : 0x00;
}

std::optional<DontFragment> DontFragment::decode(Bytes v, const Header&) noexcept {
  if (!v.empty()) return std::nullopt;
  return DontFragment{};
}
void DontFragment::encode(MessageBuilder& b) const noexcept { b.addAttribute(typeOf(kType), 0); }

std::optional<ReservationToken> ReservationToken::decode(Bytes v, const Header&) noexcept {
  if (v.size() != 8) return std::nullopt;
  return ReservationToken{(std::uint64_t{loadU32(v.data())} << 32) | loadU32(v.data() + 4)};
}
void ReservationToken::encode(MessageBuilder& b) const noexcept {
  if (std::uint8_t* p = b.addAttribute(typeOf(kType), 8)) {
    storeU32(p, static_cast<std::uint32_t>(token >> 32));
    storeU32(p + 4, static_cast<std::uint32_t>(token));
  }
}

std::optional<Icmp> Icmp::decode(Bytes v, const Header&) noexcept {
  if (v.size() != 8) return std::nullopt;
  return Icmp{v[2], v[3], loadU32(v.data() + 4)};
}
void Icmp::encode(MessageBuilder& b) const noexcept {
  if (std::uint8_t* p = b.addAttribute(typeOf(kType), 8)) {
    p[0] = p[1] = 0;
    p[2] = type;
    p[3] = code;
    storeU32(p + 4, error_data);
  }
}

std::optional<ConnectionId> ConnectionId::decode(Bytes v, const Header&) noexcept {
  if (v.size() != 4) return std::nullopt;
  return ConnectionId{loadU32(v.data())};
}
void ConnectionId::encode(MessageBuilder& b) const noexcept {
  if (std::uint8_t* p = b.addAttribute(typeOf(kType), 4)) storeU32(p, id);
}

std::optional<Fingerprint> Fingerprint::decode(Bytes v, const Header&) noexcept {
  if (v.size() != 4) return std::nullopt;
  return Fingerprint{loadU32(v.data())};
}
void Fingerprint::encode(MessageBuilder& b) const noexcept {
  if (std::uint8_t* p = b.addAttribute(typeOf(kType), 4)) storeU32(p, crc);
}

//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |           Reserved, should be 0         |Class|     Number    |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |      Reason Phrase (variable)                                ..
std::optional<ErrorCode> ErrorCode::decode(Bytes v, const Header&) noexcept {
  if (v.size() < 4 || v.size() > 4 + 763) return std::nullopt;
  const auto code = static_cast<std::uint16_t>((v[2] & 0x07) * 100 + v[3]);
  if (v[3] > 99 || !validErrorCode(code)) return std::nullopt;
  return ErrorCode{code, asText(v.subspan(4))};
}
void ErrorCode::encode(MessageBuilder& b) const noexcept {
  if (!validErrorCode(code) || reason.size() > 763) {
    b.fail();
    return;
  }
  if (std::uint8_t* p = b.addAttribute(typeOf(kType), 4 + reason.size())) {
    p[0] = p[1] = 0;
    p[2] = static_cast<std::uint8_t>(code / 100);
    p[3] = static_cast<std::uint8_t>(code % 100);
    if (!reason.empty()) std::memcpy(p + 4, reason.data(), reason.size());
  }
}

//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |  Family       |    Reserved             |Class|     Number    |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |      Reason Phrase (variable)                                ..
std::optional<AddressErrorCode> AddressErrorCode::decode(Bytes v, const Header&) noexcept {
  if (v.size() < 4 || v.size() > 4 + 763) return std::nullopt;
  const auto code = static_cast<std::uint16_t>((v[2] & 0x07) * 100 + v[3]);
  if (v[3] > 99 || !validErrorCode(code)) return std::nullopt;
  return AddressErrorCode{v[0], code, asText(v.subspan(4))};
}
void AddressErrorCode::encode(MessageBuilder& b) const noexcept {
  if (!validErrorCode(code) || reason.size() > 763) {
    b.fail();
    return;
  }
  if (std::uint8_t* p = b.addAttribute(typeOf(kType), 4 + reason.size())) {
    p[0] = family;
    p[1] = 0;
    p[2] = static_cast<std::uint8_t>(code / 100);
    p[3] = static_cast<std::uint8_t>(code % 100);
    if (!reason.empty()) std::memcpy(p + 4, reason.data(), reason.size());
  }
}

std::optional<UnknownAttributes> UnknownAttributes::decode(Bytes v, const Header&) noexcept {
  if (v.size() % 2 != 0) return std::nullopt;
  UnknownAttributes out;
  for (std::size_t i = 0; i + 1 < v.size(); i += 2) {
    if (!out.types.push(loadU16(&v[i]))) break;  // keep the first ones; the rest add nothing
  }
  return out;
}
void UnknownAttributes::encode(MessageBuilder& b) const noexcept {
  if (std::uint8_t* p = b.addAttribute(typeOf(kType), 2 * types.size())) {
    for (std::size_t i = 0; i < types.size(); ++i) storeU16(p + 2 * i, types[i]);
  }
}

namespace {
// One algorithm entry, as used by both PASSWORD-ALGORITHM and PASSWORD-ALGORITHMS.
std::optional<PasswordAlgorithm> readAlgorithm(ByteReader& r, bool padded) noexcept {
  PasswordAlgorithm a;
  a.algorithm = r.u16();
  const std::size_t len = r.u16();
  a.parameters = r.bytes(len);
  if (padded) r.skip(padTo4(len) - len);
  if (!r.ok()) return std::nullopt;
  return a;
}
std::size_t algorithmSize(const PasswordAlgorithm& a) { return 4 + padTo4(a.parameters.size()); }
void writeAlgorithm(std::uint8_t* p, const PasswordAlgorithm& a) {
  storeU16(p, a.algorithm);
  storeU16(p + 2, static_cast<std::uint16_t>(a.parameters.size()));
  if (!a.parameters.empty()) std::memcpy(p + 4, a.parameters.data(), a.parameters.size());
  std::memset(p + 4 + a.parameters.size(), 0, padTo4(a.parameters.size()) - a.parameters.size());
}
}  // namespace

std::optional<PasswordAlgorithm> PasswordAlgorithm::decode(Bytes v, const Header&) noexcept {
  ByteReader r(v);
  auto a = readAlgorithm(r, false);
  if (!a || !r.atEnd()) return std::nullopt;
  return a;
}
void PasswordAlgorithm::encode(MessageBuilder& b) const noexcept {
  // The attribute's own padding covers the parameters' padding.
  if (std::uint8_t* p = b.addAttribute(typeOf(kType), 4 + parameters.size())) {
    storeU16(p, algorithm);
    storeU16(p + 2, static_cast<std::uint16_t>(parameters.size()));
    if (!parameters.empty()) std::memcpy(p + 4, parameters.data(), parameters.size());
  }
}

std::optional<PasswordAlgorithms> PasswordAlgorithms::decode(Bytes v, const Header&) noexcept {
  ByteReader r(v);
  PasswordAlgorithms out;
  while (r.remaining() > 0) {
    auto a = readAlgorithm(r, true);
    if (!a || !out.algorithms.push(*a)) return std::nullopt;
  }
  return out;
}
void PasswordAlgorithms::encode(MessageBuilder& b) const noexcept {
  std::size_t total = 0;
  for (const auto& a : algorithms) total += algorithmSize(a);
  if (std::uint8_t* p = b.addAttribute(typeOf(kType), total)) {
    for (const auto& a : algorithms) {
      writeAlgorithm(p, a);
      p += algorithmSize(a);
    }
  }
}

}  // namespace tern::wire::attr
