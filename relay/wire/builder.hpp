// Writes a STUN message into a caller-owned buffer (RFC 8489 §5, §14). Never allocates: when
// the buffer is too small the builder turns bad and finish() returns nothing.
#pragma once

#include <optional>

#include "relay/wire/bytes.hpp"
#include "relay/wire/stun_constants.hpp"

namespace tern::wire {

class MessageBuilder {
 public:
  MessageBuilder(MutableBytes buffer, Method method, MessageClass cls,
                 const TransactionId& transaction_id) noexcept;

  // Appends an attribute header and `size` value bytes (padding zeroed) and returns where the
  // value goes, or null when out of room. The header length is kept current after every add.
  std::uint8_t* addAttribute(std::uint16_t type, std::size_t size) noexcept;
  MessageBuilder& addRaw(std::uint16_t type, Bytes value) noexcept;

  // Typed attributes from attributes.hpp: builder.add(attr::Lifetime{600}).
  template <class A>
  MessageBuilder& add(const A& attribute) noexcept {
    attribute.encode(*this);
    return *this;
  }

  // MESSAGE-INTEGRITY or MESSAGE-INTEGRITY-SHA256 (RFC 8489 §14.5-14.6). The codec knows no
  // keys: `mac(input, out)` (auth/) fills `out` with the HMAC of `input`, which is the
  // message so far with its length already covering this attribute.
  template <class MacFunction>
  MessageBuilder& addIntegrity(AttributeType type, std::size_t mac_size, MacFunction&& mac) noexcept {
    const std::size_t start = writer_.size();
    if (std::uint8_t* out = addAttribute(static_cast<std::uint16_t>(type), mac_size)) {
      mac(Bytes{writer_.data(), start}, MutableBytes{out, mac_size});
    }
    return *this;
  }

  // RFC 8489 §14.7; must be the last attribute added.
  MessageBuilder& addFingerprint() noexcept;

  // Marks the message as unusable, e.g. when a typed attribute's value breaks its limits.
  void fail() noexcept { writer_.fail(); }

  const TransactionId& transactionId() const noexcept { return transaction_id_; }
  bool ok() const noexcept { return writer_.ok(); }
  std::size_t size() const noexcept { return writer_.size(); }
  // The finished message, or nothing if any write ran out of room.
  std::optional<Bytes> finish() noexcept;

 private:
  ByteWriter writer_;
  TransactionId transaction_id_;
};

}  // namespace tern::wire
