// STUN message parsing and checks of RFC 8489 §6.3 and §14.5-14.7.
#include "relay/wire/message.hpp"

#include <cstring>

namespace tern::wire {

std::string_view describe(ParseError e) noexcept {
  switch (e) {
    case ParseError::kTooShort: return "shorter than a STUN header";
    case ParseError::kNotStun: return "leading bits are not zero";
    case ParseError::kBadMagicCookie: return "bad magic cookie";
    case ParseError::kLengthNotMultipleOf4: return "length is not a multiple of 4";
    case ParseError::kLengthMismatch: return "length does not match the message size";
    case ParseError::kAttributeOverrun: return "attribute runs past the end of the message";
    case ParseError::kIntegrityLength: return "integrity or fingerprint attribute of wrong size";
    case ParseError::kFingerprintNotLast: return "FINGERPRINT is not the last attribute";
  }
  return "unknown parse error";
}

//  0                   1                   2                   3
//  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |0 0|     STUN Message Type     |         Message Length        |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                         Magic Cookie                          |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
// |                     Transaction ID (96 bits)                  |
// +-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+-+
Expected<Header, ParseError> parseHeader(Bytes bytes) noexcept {
  if (bytes.size() < kHeaderSize) return Unexpected{ParseError::kTooShort};
  if ((bytes[0] & 0xC0) != 0) return Unexpected{ParseError::kNotStun};
  if (loadU32(&bytes[4]) != kMagicCookie) return Unexpected{ParseError::kBadMagicCookie};
  Header h;
  h.type = loadU16(&bytes[0]);
  h.length = loadU16(&bytes[2]);
  if (h.length % 4 != 0) return Unexpected{ParseError::kLengthNotMultipleOf4};
  std::memcpy(h.transaction_id.data(), &bytes[8], kTransactionIdSize);
  return h;
}

Expected<MessageView, ParseError> MessageView::parse(Bytes message) noexcept {
  auto header = parseHeader(message);
  if (!header) return Unexpected{header.error()};
  if (message.size() != kHeaderSize + header->length) return Unexpected{ParseError::kLengthMismatch};

  MessageView v;
  v.bytes_ = message;
  v.header_ = *header;
  v.visible_end_ = message.size();
  std::size_t pos = kHeaderSize;
  while (pos < message.size()) {
    if (message.size() - pos < kAttributeHeaderSize) return Unexpected{ParseError::kAttributeOverrun};
    const auto type = static_cast<AttributeType>(loadU16(&message[pos]));
    const std::size_t len = loadU16(&message[pos + 2]);
    // The last attribute's padding is counted in the header length, so it must be present.
    if (message.size() - pos - kAttributeHeaderSize < padTo4(len)) {
      return Unexpected{ParseError::kAttributeOverrun};
    }
    if (v.fingerprint_offset_ != kNone) return Unexpected{ParseError::kFingerprintNotLast};
    const bool after_integrity =
        v.integrity_offset_ != kNone || v.integrity_sha256_offset_ != kNone;
    if (type == AttributeType::kFingerprint) {
      if (len != 4) return Unexpected{ParseError::kIntegrityLength};
      v.fingerprint_offset_ = pos;
      v.visible_end_ = std::min(v.visible_end_, pos);
    } else if (type == AttributeType::kMessageIntegrity && !after_integrity) {
      // RFC 8489 §14.5: HMAC-SHA1, always 20 bytes.
      if (len != 20) return Unexpected{ParseError::kIntegrityLength};
      v.integrity_offset_ = pos;
      v.visible_end_ = std::min(v.visible_end_, pos);
    } else if (type == AttributeType::kMessageIntegritySha256 &&
               v.integrity_sha256_offset_ == kNone) {
      // RFC 8489 §14.6: at least 16 bytes, at most 32, a multiple of 4.
      if (len < 16 || len > 32 || len % 4 != 0) return Unexpected{ParseError::kIntegrityLength};
      v.integrity_sha256_offset_ = pos;
      v.visible_end_ = std::min(v.visible_end_, pos);
    }
    pos += kAttributeHeaderSize + padTo4(len);
  }
  return v;
}

RawAttribute MessageView::attributeAt(std::size_t offset) const noexcept {
  RawAttribute a;
  a.type = loadU16(&bytes_[offset]);
  a.value = bytes_.subspan(offset + kAttributeHeaderSize, loadU16(&bytes_[offset + 2]));
  a.offset = offset;
  return a;
}

std::optional<RawAttribute> MessageView::find(AttributeType type) const noexcept {
  switch (type) {
    case AttributeType::kMessageIntegrity:
      if (integrity_offset_ == kNone) return std::nullopt;
      return attributeAt(integrity_offset_);
    case AttributeType::kMessageIntegritySha256:
      if (integrity_sha256_offset_ == kNone) return std::nullopt;
      return attributeAt(integrity_sha256_offset_);
    case AttributeType::kFingerprint:
      if (fingerprint_offset_ == kNone) return std::nullopt;
      return attributeAt(fingerprint_offset_);
    default: break;
  }
  const auto wanted = static_cast<std::uint16_t>(type);
  std::size_t pos = kHeaderSize;
  while (pos < visible_end_) {
    RawAttribute a = attributeAt(pos);
    if (a.type == wanted) return a;
    pos += kAttributeHeaderSize + padTo4(a.value.size());
  }
  return std::nullopt;
}

std::optional<IntegrityInput> MessageView::integrityInput(AttributeType type) const noexcept {
  auto attr = find(type);
  if (!attr || (type != AttributeType::kMessageIntegrity &&
                type != AttributeType::kMessageIntegritySha256)) {
    return std::nullopt;
  }
  IntegrityInput in;
  std::memcpy(in.header.data(), bytes_.data(), kHeaderSize);
  // RFC 8489 §14.5: the length covers everything up to and including this attribute.
  const std::size_t end = attr->offset + kAttributeHeaderSize + attr->value.size();
  storeU16(&in.header[2], static_cast<std::uint16_t>(end - kHeaderSize));
  in.body = bytes_.subspan(kHeaderSize, attr->offset - kHeaderSize);
  in.mac = attr->value;
  return in;
}

bool MessageView::fingerprintMatches() const noexcept {
  if (fingerprint_offset_ == kNone) return false;
  // FINGERPRINT is last, so the header length already ends just after it.
  const std::uint32_t expected = crc32(bytes_.first(fingerprint_offset_)) ^ kFingerprintXor;
  return loadU32(&bytes_[fingerprint_offset_ + kAttributeHeaderSize]) == expected;
}

UnknownAttributeList MessageView::unknownComprehensionRequired() const noexcept {
  UnknownAttributeList unknown;
  forEachAttribute([&](const RawAttribute& a) {
    if (isComprehensionRequired(a.type) && !isKnownAttribute(a.type)) {
      for (auto seen : unknown) {
        if (seen == a.type) return;
      }
      unknown.push(a.type);
    }
  });
  return unknown;
}

namespace {
constexpr std::array<std::uint32_t, 256> makeCrcTable() {
  std::array<std::uint32_t, 256> t{};
  for (std::uint32_t i = 0; i < 256; ++i) {
    std::uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? 0xEDB88320u ^ (c >> 1) : c >> 1;
    t[i] = c;
  }
  return t;
}
constexpr auto kCrcTable = makeCrcTable();
}  // namespace

std::uint32_t crc32(Bytes data, std::uint32_t crc) noexcept {
  crc = ~crc;
  for (auto b : data) crc = kCrcTable[(crc ^ b) & 0xFF] ^ (crc >> 8);
  return ~crc;
}

}  // namespace tern::wire
