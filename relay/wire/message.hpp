// Zero-copy view of a STUN message (RFC 8489 §5, §6.3, §14): validates the header and the
// attribute TLVs once, then answers look-ups by scanning the borrowed bytes in place.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "relay/wire/bytes.hpp"
#include "relay/wire/expected.hpp"
#include "relay/wire/stun_constants.hpp"

namespace tern::wire {

enum class ParseError : std::uint8_t {
  kTooShort,               // fewer than 20 bytes
  kNotStun,                // the two most significant bits are not zero
  kBadMagicCookie,         // RFC 8489 §6.3: magic cookie must be 0x2112A442
  kLengthNotMultipleOf4,   // RFC 8489 §5: the last two bits of the length are zero
  kLengthMismatch,         // header length does not match the bytes present
  kAttributeOverrun,       // an attribute's length runs past the message
  kIntegrityLength,        // MESSAGE-INTEGRITY(-SHA256) or FINGERPRINT of the wrong size
  kFingerprintNotLast,     // RFC 8489 §14.7: FINGERPRINT must be the last attribute
};

std::string_view describe(ParseError e) noexcept;

struct Header {
  std::uint16_t type = 0;
  std::uint16_t length = 0;  // bytes after the 20-byte header
  TransactionId transaction_id{};

  std::uint16_t method() const noexcept { return methodOf(type); }
  MessageClass messageClass() const noexcept { return classOf(type); }
  bool isRequest() const noexcept { return messageClass() == MessageClass::kRequest; }
};

// Checks only the fixed header: enough for demux and for answering 400 to a request whose
// attributes are broken. `bytes` may hold more than one message (a stream).
Expected<Header, ParseError> parseHeader(Bytes bytes) noexcept;

struct RawAttribute {
  std::uint16_t type = 0;
  Bytes value;
  std::size_t offset = 0;  // of the 4-byte TLV header within the message
};

// What an HMAC must cover to check a MESSAGE-INTEGRITY(-SHA256): the header with its length
// field set to end just after that attribute (RFC 8489 §14.5), followed by `body`.
struct IntegrityInput {
  std::array<std::uint8_t, kHeaderSize> header{};
  Bytes body;  // from the end of the header up to the integrity attribute
  Bytes mac;   // the attribute's value as received
};

// A small inline list, so collecting unknown attributes never allocates on the packet path.
template <class T, std::size_t N>
class FixedList {
 public:
  bool push(const T& v) noexcept {
    if (size_ == N) return false;
    items_[size_++] = v;
    return true;
  }
  std::size_t size() const noexcept { return size_; }
  bool empty() const noexcept { return size_ == 0; }
  const T& operator[](std::size_t i) const noexcept { return items_[i]; }
  const T* begin() const noexcept { return items_.data(); }
  const T* end() const noexcept { return items_.data() + size_; }
  static constexpr std::size_t capacity() noexcept { return N; }

 private:
  std::array<T, N> items_{};
  std::size_t size_ = 0;
};

// 16 is far more than any honest request carries; the 420 response lists the first 16.
using UnknownAttributeList = FixedList<std::uint16_t, 16>;

class MessageView {
 public:
  // Validates the whole message. `message` must be exactly one STUN message.
  static Expected<MessageView, ParseError> parse(Bytes message) noexcept;

  const Header& header() const noexcept { return header_; }
  std::uint16_t method() const noexcept { return header_.method(); }
  MessageClass messageClass() const noexcept { return header_.messageClass(); }
  const TransactionId& transactionId() const noexcept { return header_.transaction_id; }
  Bytes bytes() const noexcept { return bytes_; }

  // The first attribute of `type` that counts: RFC 8489 §14.5-14.6 say attributes after
  // MESSAGE-INTEGRITY (other than MESSAGE-INTEGRITY-SHA256 and FINGERPRINT) and after
  // MESSAGE-INTEGRITY-SHA256 (other than FINGERPRINT) are ignored.
  std::optional<RawAttribute> find(AttributeType type) const noexcept;
  bool has(AttributeType type) const noexcept { return find(type).has_value(); }

  // Typed access; see attributes.hpp. Empty when absent or malformed; has() tells which.
  template <class A>
  std::optional<A> get() const noexcept {
    auto raw = find(A::kType);
    if (!raw) return std::nullopt;
    return A::decode(raw->value, header_);
  }

  // Calls f(RawAttribute) for each attribute that counts, in order.
  template <class F>
  void forEachAttribute(F&& f) const noexcept {
    std::size_t pos = kHeaderSize;
    while (pos < visible_end_) {
      RawAttribute a = attributeAt(pos);
      f(a);
      pos += kAttributeHeaderSize + padTo4(a.value.size());
    }
  }

  std::optional<IntegrityInput> integrityInput(AttributeType type) const noexcept;
  bool hasFingerprint() const noexcept { return fingerprint_offset_ != kNone; }
  // RFC 8489 §14.7: CRC-32 of the message up to FINGERPRINT, XOR 0x5354554E.
  bool fingerprintMatches() const noexcept;

  // RFC 8489 §6.3.1: comprehension-required attributes this codec does not know.
  UnknownAttributeList unknownComprehensionRequired() const noexcept;

 private:
  static constexpr std::size_t kNone = ~std::size_t{0};
  RawAttribute attributeAt(std::size_t offset) const noexcept;

  Bytes bytes_;
  Header header_;
  std::size_t visible_end_ = kHeaderSize;
  std::size_t integrity_offset_ = kNone;
  std::size_t integrity_sha256_offset_ = kNone;
  std::size_t fingerprint_offset_ = kNone;
};

// RFC 8489 §14.7: FINGERPRINT = CRC-32 (ITU V.42, as in zlib) XOR 0x5354554E.
inline constexpr std::uint32_t kFingerprintXor = 0x5354554E;
std::uint32_t crc32(Bytes data, std::uint32_t crc = 0) noexcept;

}  // namespace tern::wire
