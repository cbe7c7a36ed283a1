// STUN/TURN numbers from the IANA "STUN Parameters" registry: methods, classes, attribute
// types and error codes of RFC 8489, RFC 8656, RFC 6062, RFC 7635 and RFC 8016.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>

namespace tern::wire {

// RFC 8489 §5: the magic cookie is the fixed value 0x2112A442 in network byte order.
inline constexpr std::uint32_t kMagicCookie = 0x2112A442;
inline constexpr std::size_t kHeaderSize = 20;
inline constexpr std::size_t kAttributeHeaderSize = 4;
inline constexpr std::size_t kTransactionIdSize = 12;

using TransactionId = std::array<std::uint8_t, kTransactionIdSize>;

enum class Method : std::uint16_t {
  kBinding = 0x001,            // RFC 8489
  kAllocate = 0x003,           // RFC 8656 §7
  kRefresh = 0x004,            // RFC 8656 §8
  kSend = 0x006,               // RFC 8656 §11
  kData = 0x007,               // RFC 8656 §11
  kCreatePermission = 0x008,   // RFC 8656 §10
  kChannelBind = 0x009,        // RFC 8656 §12
  kConnect = 0x00A,            // RFC 6062 §4.3
  kConnectionBind = 0x00B,     // RFC 6062 §4.4
  kConnectionAttempt = 0x00C,  // RFC 6062 §4.5
};

enum class MessageClass : std::uint8_t {
  kRequest = 0b00,
  kIndication = 0b01,
  kSuccessResponse = 0b10,
  kErrorResponse = 0b11,
};

// RFC 8489 §5: the 14-bit message type interleaves the class bits C1 (bit 8) and C0 (bit 4)
// with the 12 method bits:
//    0                 1
//    2  3  4 5 6 7 8 9 0 1 2 3 4 5
//   +--+--+-+-+-+-+-+-+-+-+-+-+-+-+
//   |M |M |M|M|M|C|M|M|M|C|M|M|M|M|
//   |11|10|9|8|7|1|6|5|4|0|3|2|1|0|
//   +--+--+-+-+-+-+-+-+-+-+-+-+-+-+
constexpr std::uint16_t encodeMessageType(Method m, MessageClass c) noexcept {
  auto mv = static_cast<std::uint16_t>(m);
  auto cv = static_cast<std::uint16_t>(c);
  return static_cast<std::uint16_t>((mv & 0x000F) | ((mv & 0x0070) << 1) | ((mv & 0x0F80) << 2) |
                                    ((cv & 0x1) << 4) | ((cv & 0x2) << 7));
}
constexpr std::uint16_t methodOf(std::uint16_t type) noexcept {
  return static_cast<std::uint16_t>((type & 0x000F) | ((type & 0x00E0) >> 1) | ((type & 0x3E00) >> 2));
}
constexpr MessageClass classOf(std::uint16_t type) noexcept {
  return static_cast<MessageClass>(((type >> 4) & 0x1) | ((type >> 7) & 0x2));
}

enum class AttributeType : std::uint16_t {
  // Comprehension-required range 0x0000-0x7FFF.
  kMappedAddress = 0x0001,           // RFC 8489 §14.1
  kUsername = 0x0006,                // RFC 8489 §14.3
  kMessageIntegrity = 0x0008,        // RFC 8489 §14.5
  kErrorCode = 0x0009,               // RFC 8489 §14.8
  kUnknownAttributes = 0x000A,       // RFC 8489 §14.9
  kChannelNumber = 0x000C,           // RFC 8656 §18.1
  kLifetime = 0x000D,                // RFC 8656 §18.2
  kXorPeerAddress = 0x0012,          // RFC 8656 §18.3
  kData = 0x0013,                    // RFC 8656 §18.4
  kRealm = 0x0014,                   // RFC 8489 §14.9
  kNonce = 0x0015,                   // RFC 8489 §14.10
  kXorRelayedAddress = 0x0016,       // RFC 8656 §18.5
  kRequestedAddressFamily = 0x0017,  // RFC 8656 §18.6
  kEvenPort = 0x0018,                // RFC 8656 §18.7
  kRequestedTransport = 0x0019,      // RFC 8656 §18.8
  kDontFragment = 0x001A,            // RFC 8656 §18.9
  kAccessToken = 0x001B,             // RFC 7635 §6.2
  kMessageIntegritySha256 = 0x001C,  // RFC 8489 §14.6
  kPasswordAlgorithm = 0x001D,       // RFC 8489 §14.12
  kUserhash = 0x001E,                // RFC 8489 §14.4
  kXorMappedAddress = 0x0020,        // RFC 8489 §14.2
  kReservationToken = 0x0022,        // RFC 8656 §18.10
  kPriority = 0x0024,                // RFC 8445 §16.1
  kUseCandidate = 0x0025,            // RFC 8445 §16.1
  kConnectionId = 0x002A,            // RFC 6062 §6.2.1
  // Comprehension-optional range 0x8000-0xFFFF.
  kAdditionalAddressFamily = 0x8000,  // RFC 8656 §18.11
  kAddressErrorCode = 0x8001,         // RFC 8656 §18.12
  kPasswordAlgorithms = 0x8002,       // RFC 8489 §14.11
  kAlternateDomain = 0x8003,          // RFC 8489 §14.16
  kIcmp = 0x8004,                     // RFC 8656 §18.13
  kSoftware = 0x8022,                 // RFC 8489 §14.14
  kAlternateServer = 0x8023,          // RFC 8489 §14.15
  kFingerprint = 0x8028,              // RFC 8489 §14.7
  kIceControlled = 0x8029,            // RFC 8445 §16.1
  kIceControlling = 0x802A,           // RFC 8445 §16.1
  kThirdPartyAuthorization = 0x802E,  // RFC 7635 §6.1
  kMobilityTicket = 0x8030,           // RFC 8016 §3.1
  // ADDITIONAL-ADDRESS-FAMILY's number in the drafts before RFC 8656, still sent by coturn
  // 4.6's turnutils_uclient -Z; unassigned in the IANA registry, so taken as an alias.
  kAdditionalAddressFamilyDraft = 0x8032,
};

// RFC 8489 §14: types 0x0000-0x7FFF are comprehension-required.
constexpr bool isComprehensionRequired(std::uint16_t type) noexcept { return type < 0x8000; }

// True for every attribute in the registry above; anything else comprehension-required in a
// request earns a 420 (RFC 8489 §6.3.1). The ICE attributes (RFC 8445) are known so that a
// connectivity check sent to tern, as in RFC 5769 §2.1, is answered rather than refused.
bool isKnownAttribute(std::uint16_t type) noexcept;
std::string_view attributeName(std::uint16_t type) noexcept;
std::string_view methodName(std::uint16_t method) noexcept;

// RFC 8489 §14.8 and RFC 8656 §19 error codes.
namespace error_code {
inline constexpr std::uint16_t kTryAlternate = 300;
inline constexpr std::uint16_t kBadRequest = 400;
inline constexpr std::uint16_t kUnauthenticated = 401;
inline constexpr std::uint16_t kForbidden = 403;
inline constexpr std::uint16_t kMobilityForbidden = 405;
inline constexpr std::uint16_t kUnknownAttribute = 420;
inline constexpr std::uint16_t kAllocationMismatch = 437;
inline constexpr std::uint16_t kStaleNonce = 438;
inline constexpr std::uint16_t kAddressFamilyNotSupported = 440;
inline constexpr std::uint16_t kWrongCredentials = 441;
inline constexpr std::uint16_t kUnsupportedTransportProtocol = 442;
inline constexpr std::uint16_t kPeerAddressFamilyMismatch = 443;
inline constexpr std::uint16_t kConnectionAlreadyExists = 446;
inline constexpr std::uint16_t kConnectionTimeoutOrFailure = 447;
inline constexpr std::uint16_t kAllocationQuotaReached = 486;
inline constexpr std::uint16_t kServerError = 500;
inline constexpr std::uint16_t kInsufficientCapacity = 508;
}  // namespace error_code

// The reason phrase the RFCs suggest for a code; "Error" for codes they do not name.
std::string_view defaultReason(std::uint16_t code) noexcept;

}  // namespace tern::wire
