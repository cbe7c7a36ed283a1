// STUN message encoding (RFC 8489 §5) into caller buffers.
#include "relay/wire/builder.hpp"

#include <cstring>

#include "relay/wire/message.hpp"

namespace tern::wire {

MessageBuilder::MessageBuilder(MutableBytes buffer, Method method, MessageClass cls,
                               const TransactionId& transaction_id) noexcept
    : writer_(buffer), transaction_id_(transaction_id) {
  writer_.u16(encodeMessageType(method, cls));
  writer_.u16(0);
  writer_.u32(kMagicCookie);
  writer_.bytes(transaction_id);
}

std::uint8_t* MessageBuilder::addAttribute(std::uint16_t type, std::size_t size) noexcept {
  // The message length field is 16 bits; refuse rather than wrap.
  if (size > 0xFFFF || writer_.size() + kAttributeHeaderSize + padTo4(size) > 0xFFFF + kHeaderSize) {
    writer_.fail();
    return nullptr;
  }
  writer_.u16(type);
  writer_.u16(static_cast<std::uint16_t>(size));
  std::uint8_t* value = writer_.reserve(size);
  writer_.zeros(padTo4(size) - size);  // RFC 8489 §14: padding bytes are zero when sent
  if (!writer_.ok()) return nullptr;
  storeU16(writer_.data() + 2, static_cast<std::uint16_t>(writer_.size() - kHeaderSize));
  return value;
}

MessageBuilder& MessageBuilder::addRaw(std::uint16_t type, Bytes value) noexcept {
  if (std::uint8_t* out = addAttribute(type, value.size()); out && !value.empty()) {
    std::memcpy(out, value.data(), value.size());
  }
  return *this;
}

MessageBuilder& MessageBuilder::addFingerprint() noexcept {
  const std::size_t start = writer_.size();
  if (std::uint8_t* out = addAttribute(static_cast<std::uint16_t>(AttributeType::kFingerprint), 4)) {
    storeU32(out, crc32(Bytes{writer_.data(), start}) ^ kFingerprintXor);
  }
  return *this;
}

std::optional<Bytes> MessageBuilder::finish() noexcept {
  if (!writer_.ok()) return std::nullopt;
  return Bytes{writer_.data(), writer_.size()};
}

}  // namespace tern::wire
