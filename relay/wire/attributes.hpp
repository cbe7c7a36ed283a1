// Typed STUN/TURN attributes: each type decodes from a borrowed value (decode) and writes
// itself into a MessageBuilder (encode). Values borrow the message; nothing allocates.
// RFC 8489 §14, RFC 8656 §18, RFC 6062 §6.2, RFC 7635 §6, RFC 8016 §3.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string_view>

#include "relay/wire/address.hpp"
#include "relay/wire/builder.hpp"
#include "relay/wire/message.hpp"

namespace tern::wire::attr {

// --- Addresses ----------------------------------------------------------------------------

// RFC 8489 §14.1 (MAPPED-ADDRESS) and §14.15 (ALTERNATE-SERVER): family, port, address.
std::optional<SocketAddress> decodeAddress(Bytes value) noexcept;
void encodeAddress(MessageBuilder& b, std::uint16_t type, const SocketAddress& a) noexcept;
// RFC 8489 §14.2: the port is XORed with the cookie's top 16 bits, an IPv4 address with the
// cookie, an IPv6 address with the cookie followed by the transaction id.
std::optional<SocketAddress> decodeXorAddress(Bytes value, const TransactionId& tid) noexcept;
void encodeXorAddress(MessageBuilder& b, std::uint16_t type, const SocketAddress& a) noexcept;

template <AttributeType T>
struct PlainAddress {
  static constexpr AttributeType kType = T;
  SocketAddress address;
  static std::optional<PlainAddress> decode(Bytes v, const Header&) noexcept {
    if (auto a = decodeAddress(v)) return PlainAddress{*a};
    return std::nullopt;
  }
  void encode(MessageBuilder& b) const noexcept {
    encodeAddress(b, static_cast<std::uint16_t>(T), address);
  }
};

template <AttributeType T>
struct XorAddress {
  static constexpr AttributeType kType = T;
  SocketAddress address;
  static std::optional<XorAddress> decode(Bytes v, const Header& h) noexcept {
    if (auto a = decodeXorAddress(v, h.transaction_id)) return XorAddress{*a};
    return std::nullopt;
  }
  void encode(MessageBuilder& b) const noexcept {
    encodeXorAddress(b, static_cast<std::uint16_t>(T), address);
  }
};

using MappedAddress = PlainAddress<AttributeType::kMappedAddress>;
using AlternateServer = PlainAddress<AttributeType::kAlternateServer>;
using XorMappedAddress = XorAddress<AttributeType::kXorMappedAddress>;
using XorPeerAddress = XorAddress<AttributeType::kXorPeerAddress>;
using XorRelayedAddress = XorAddress<AttributeType::kXorRelayedAddress>;

// --- Text and opaque values ---------------------------------------------------------------

// Text attributes carry UTF-8 up to a byte limit; decode rejects longer values.
template <AttributeType T, std::size_t MaxBytes>
struct Text {
  static constexpr AttributeType kType = T;
  static constexpr std::size_t kMaxBytes = MaxBytes;
  std::string_view value;
  static std::optional<Text> decode(Bytes v, const Header&) noexcept {
    if (v.size() > MaxBytes) return std::nullopt;
    return Text{asText(v)};
  }
  void encode(MessageBuilder& b) const noexcept {
    if (value.size() > MaxBytes) {
      b.fail();
      return;
    }
    b.addRaw(static_cast<std::uint16_t>(T), asBytes(value));
  }
};

// RFC 8489 §14.3: USERNAME is fewer than 509 bytes.
using Username = Text<AttributeType::kUsername, 508>;
// RFC 8489 §14.9-14.10, §14.14: fewer than 128 characters, at most 763 bytes.
using Realm = Text<AttributeType::kRealm, 763>;
using Nonce = Text<AttributeType::kNonce, 763>;
using Software = Text<AttributeType::kSoftware, 763>;
// RFC 8489 §14.16: a domain name, at most 255 bytes.
using AlternateDomain = Text<AttributeType::kAlternateDomain, 255>;
// RFC 7635 §6.1: the authorization server's name.
using ThirdPartyAuthorization = Text<AttributeType::kThirdPartyAuthorization, 763>;

template <AttributeType T, std::size_t MinBytes, std::size_t MaxBytes>
struct Opaque {
  static constexpr AttributeType kType = T;
  Bytes value;
  static std::optional<Opaque> decode(Bytes v, const Header&) noexcept {
    if (v.size() < MinBytes || v.size() > MaxBytes) return std::nullopt;
    return Opaque{v};
  }
  // Like decode, refuses sizes outside the attribute's limits, so the builder never writes a
  // value its own parser would reject.
  void encode(MessageBuilder& b) const noexcept {
    if (value.size() < MinBytes || value.size() > MaxBytes) {
      b.fail();
      return;
    }
    b.addRaw(static_cast<std::uint16_t>(T), value);
  }
};

// RFC 8656 §18.4: the application data of a Send or Data indication.
using Data = Opaque<AttributeType::kData, 0, 0xFFFF>;
// RFC 7635 §6.2: an opaque token, decrypted by auth/.
using AccessToken = Opaque<AttributeType::kAccessToken, 1, 0xFFFF>;
// RFC 8016 §3.1: an opaque ticket the server issues and later recognises.
using MobilityTicket = Opaque<AttributeType::kMobilityTicket, 1, 0xFFFF>;
// RFC 8489 §14.4: SHA-256 of "username:realm", exactly 32 bytes.
using Userhash = Opaque<AttributeType::kUserhash, 32, 32>;
// RFC 8489 §14.5-14.6: usually written with MessageBuilder::addIntegrity().
using MessageIntegrity = Opaque<AttributeType::kMessageIntegrity, 20, 20>;
using MessageIntegritySha256 = Opaque<AttributeType::kMessageIntegritySha256, 16, 32>;

// --- Fixed-size numbers -------------------------------------------------------------------

// RFC 8656 §18.1: CHANNEL-NUMBER is 16 bits of channel followed by 16 bits RFFU.
struct ChannelNumber {
  static constexpr AttributeType kType = AttributeType::kChannelNumber;
  std::uint16_t number = 0;
  static std::optional<ChannelNumber> decode(Bytes v, const Header&) noexcept;
  void encode(MessageBuilder& b) const noexcept;
};

// RFC 8656 §18.2: seconds remaining until expiry.
struct Lifetime {
  static constexpr AttributeType kType = AttributeType::kLifetime;
  std::uint32_t seconds = 0;
  static std::optional<Lifetime> decode(Bytes v, const Header&) noexcept;
  void encode(MessageBuilder& b) const noexcept;
};

// RFC 8656 §18.8: an IANA protocol number (17 = UDP, 6 = TCP) and 24 bits RFFU.
struct RequestedTransport {
  static constexpr AttributeType kType = AttributeType::kRequestedTransport;
  static constexpr std::uint8_t kUdp = 17;
  static constexpr std::uint8_t kTcp = 6;
  std::uint8_t protocol = kUdp;
  static std::optional<RequestedTransport> decode(Bytes v, const Header&) noexcept;
  void encode(MessageBuilder& b) const noexcept;
};

// RFC 8656 §18.6 and §18.11: an address family (0x01 IPv4, 0x02 IPv6) and 24 bits RFFU.
// The family is kept raw so a handler can answer 440 to a value it does not support.
template <AttributeType T>
struct FamilyAttribute {
  static constexpr AttributeType kType = T;
  std::uint8_t family = 0x01;
  static std::optional<FamilyAttribute> decode(Bytes v, const Header&) noexcept {
    if (v.size() != 4) return std::nullopt;
    return FamilyAttribute{v[0]};
  }
  void encode(MessageBuilder& b) const noexcept {
    if (std::uint8_t* p = b.addAttribute(static_cast<std::uint16_t>(T), 4)) {
      p[0] = family;
      p[1] = p[2] = p[3] = 0;
    }
  }
};
using RequestedAddressFamily = FamilyAttribute<AttributeType::kRequestedAddressFamily>;
using AdditionalAddressFamily = FamilyAttribute<AttributeType::kAdditionalAddressFamily>;
using AdditionalAddressFamilyDraft = FamilyAttribute<AttributeType::kAdditionalAddressFamilyDraft>;

// RFC 8656 §18.7: one byte whose top bit R asks the server to reserve the next port.
struct EvenPort {
  static constexpr AttributeType kType = AttributeType::kEvenPort;
  bool reserve_next = false;
  static std::optional<EvenPort> decode(Bytes v, const Header&) noexcept;
  void encode(MessageBuilder& b) const noexcept;
};

// RFC 8656 §18.9: no value.
struct DontFragment {
  static constexpr AttributeType kType = AttributeType::kDontFragment;
  static std::optional<DontFragment> decode(Bytes v, const Header&) noexcept;
  void encode(MessageBuilder& b) const noexcept;
};

// RFC 8656 §18.10: an 8-byte token naming a reserved relayed address.
struct ReservationToken {
  static constexpr AttributeType kType = AttributeType::kReservationToken;
  std::uint64_t token = 0;
  static std::optional<ReservationToken> decode(Bytes v, const Header&) noexcept;
  void encode(MessageBuilder& b) const noexcept;
};

// RFC 8656 §18.13: 16 bits reserved, ICMP type, ICMP code, 32 bits of error data.
struct Icmp {
  static constexpr AttributeType kType = AttributeType::kIcmp;
  std::uint8_t type = 0;
  std::uint8_t code = 0;
  std::uint32_t error_data = 0;
  static std::optional<Icmp> decode(Bytes v, const Header&) noexcept;
  void encode(MessageBuilder& b) const noexcept;
};

// RFC 6062 §6.2.1: a 32-bit identifier of a peer data connection.
struct ConnectionId {
  static constexpr AttributeType kType = AttributeType::kConnectionId;
  std::uint32_t id = 0;
  static std::optional<ConnectionId> decode(Bytes v, const Header&) noexcept;
  void encode(MessageBuilder& b) const noexcept;
};

// RFC 8489 §14.7: usually written with MessageBuilder::addFingerprint().
struct Fingerprint {
  static constexpr AttributeType kType = AttributeType::kFingerprint;
  std::uint32_t crc = 0;
  static std::optional<Fingerprint> decode(Bytes v, const Header&) noexcept;
  void encode(MessageBuilder& b) const noexcept;
};

// --- Structured values --------------------------------------------------------------------

// RFC 8489 §14.8: 21 bits reserved, class (3 bits, 3-6), number (8 bits, 0-99), reason.
struct ErrorCode {
  static constexpr AttributeType kType = AttributeType::kErrorCode;
  std::uint16_t code = 0;
  std::string_view reason;  // UTF-8, at most 763 bytes
  static std::optional<ErrorCode> decode(Bytes v, const Header&) noexcept;
  void encode(MessageBuilder& b) const noexcept;
};

// RFC 8656 §18.12: family, 13 bits reserved, class, number, reason.
struct AddressErrorCode {
  static constexpr AttributeType kType = AttributeType::kAddressErrorCode;
  std::uint8_t family = 0x01;
  std::uint16_t code = 0;
  std::string_view reason;
  static std::optional<AddressErrorCode> decode(Bytes v, const Header&) noexcept;
  void encode(MessageBuilder& b) const noexcept;
};

// RFC 8489 §14.9: a list of 16-bit attribute types.
struct UnknownAttributes {
  static constexpr AttributeType kType = AttributeType::kUnknownAttributes;
  UnknownAttributeList types;
  static std::optional<UnknownAttributes> decode(Bytes v, const Header&) noexcept;
  void encode(MessageBuilder& b) const noexcept;
};

// RFC 8489 §18.5: password algorithm numbers.
enum class PasswordAlgorithmId : std::uint16_t { kMd5 = 0x0001, kSha256 = 0x0002 };

// RFC 8489 §14.12: algorithm (16 bits), parameters length (16 bits), parameters, padding.
struct PasswordAlgorithm {
  static constexpr AttributeType kType = AttributeType::kPasswordAlgorithm;
  std::uint16_t algorithm = 0;
  Bytes parameters;
  static std::optional<PasswordAlgorithm> decode(Bytes v, const Header&) noexcept;
  void encode(MessageBuilder& b) const noexcept;
  friend bool operator==(const PasswordAlgorithm& x, const PasswordAlgorithm& y) noexcept {
    return x.algorithm == y.algorithm && std::equal(x.parameters.begin(), x.parameters.end(),
                                                     y.parameters.begin(), y.parameters.end());
  }
};

// RFC 8489 §14.11: a list of PASSWORD-ALGORITHM entries, each padded to 4 bytes.
struct PasswordAlgorithms {
  static constexpr AttributeType kType = AttributeType::kPasswordAlgorithms;
  FixedList<PasswordAlgorithm, 8> algorithms;
  static std::optional<PasswordAlgorithms> decode(Bytes v, const Header&) noexcept;
  void encode(MessageBuilder& b) const noexcept;
};

}  // namespace tern::wire::attr
