// Names for the STUN registry numbers, for logs and the error responses' reason phrases.
#include "relay/wire/stun_constants.hpp"

namespace tern::wire {

std::string_view attributeName(std::uint16_t type) noexcept {
  switch (static_cast<AttributeType>(type)) {
    case AttributeType::kMappedAddress: return "MAPPED-ADDRESS";
    case AttributeType::kUsername: return "USERNAME";
    case AttributeType::kMessageIntegrity: return "MESSAGE-INTEGRITY";
    case AttributeType::kErrorCode: return "ERROR-CODE";
    case AttributeType::kUnknownAttributes: return "UNKNOWN-ATTRIBUTES";
    case AttributeType::kChannelNumber: return "CHANNEL-NUMBER";
    case AttributeType::kLifetime: return "LIFETIME";
    case AttributeType::kXorPeerAddress: return "XOR-PEER-ADDRESS";
    case AttributeType::kData: return "DATA";
    case AttributeType::kRealm: return "REALM";
    case AttributeType::kNonce: return "NONCE";
    case AttributeType::kXorRelayedAddress: return "XOR-RELAYED-ADDRESS";
    case AttributeType::kRequestedAddressFamily: return "REQUESTED-ADDRESS-FAMILY";
    case AttributeType::kEvenPort: return "EVEN-PORT";
    case AttributeType::kRequestedTransport: return "REQUESTED-TRANSPORT";
    case AttributeType::kDontFragment: return "DONT-FRAGMENT";
    case AttributeType::kAccessToken: return "ACCESS-TOKEN";
    case AttributeType::kMessageIntegritySha256: return "MESSAGE-INTEGRITY-SHA256";
    case AttributeType::kPasswordAlgorithm: return "PASSWORD-ALGORITHM";
    case AttributeType::kUserhash: return "USERHASH";
    case AttributeType::kXorMappedAddress: return "XOR-MAPPED-ADDRESS";
    case AttributeType::kReservationToken: return "RESERVATION-TOKEN";
    case AttributeType::kPriority: return "PRIORITY";
    case AttributeType::kUseCandidate: return "USE-CANDIDATE";
    case AttributeType::kConnectionId: return "CONNECTION-ID";
    case AttributeType::kAdditionalAddressFamily: return "ADDITIONAL-ADDRESS-FAMILY";
    case AttributeType::kAdditionalAddressFamilyDraft: return "ADDITIONAL-ADDRESS-FAMILY (draft 0x8032)";
    case AttributeType::kAddressErrorCode: return "ADDRESS-ERROR-CODE";
    case AttributeType::kPasswordAlgorithms: return "PASSWORD-ALGORITHMS";
    case AttributeType::kAlternateDomain: return "ALTERNATE-DOMAIN";
    case AttributeType::kIcmp: return "ICMP";
    case AttributeType::kSoftware: return "SOFTWARE";
    case AttributeType::kAlternateServer: return "ALTERNATE-SERVER";
    case AttributeType::kFingerprint: return "FINGERPRINT";
    case AttributeType::kIceControlled: return "ICE-CONTROLLED";
    case AttributeType::kIceControlling: return "ICE-CONTROLLING";
    case AttributeType::kThirdPartyAuthorization: return "THIRD-PARTY-AUTHORIZATION";
    case AttributeType::kMobilityTicket: return "MOBILITY-TICKET";
  }
  return "UNKNOWN";
}

bool isKnownAttribute(std::uint16_t type) noexcept { return attributeName(type) != "UNKNOWN"; }

std::string_view methodName(std::uint16_t method) noexcept {
  switch (static_cast<Method>(method)) {
    case Method::kBinding: return "Binding";
    case Method::kAllocate: return "Allocate";
    case Method::kRefresh: return "Refresh";
    case Method::kSend: return "Send";
    case Method::kData: return "Data";
    case Method::kCreatePermission: return "CreatePermission";
    case Method::kChannelBind: return "ChannelBind";
    case Method::kConnect: return "Connect";
    case Method::kConnectionBind: return "ConnectionBind";
    case Method::kConnectionAttempt: return "ConnectionAttempt";
  }
  return "Unknown";
}

std::string_view defaultReason(std::uint16_t code) noexcept {
  switch (code) {
    case error_code::kTryAlternate: return "Try Alternate";
    case error_code::kBadRequest: return "Bad Request";
    case error_code::kUnauthenticated: return "Unauthenticated";
    case error_code::kForbidden: return "Forbidden";
    case error_code::kMobilityForbidden: return "Mobility Forbidden";
    case error_code::kUnknownAttribute: return "Unknown Attribute";
    case error_code::kAllocationMismatch: return "Allocation Mismatch";
    case error_code::kStaleNonce: return "Stale Nonce";
    case error_code::kAddressFamilyNotSupported: return "Address Family not Supported";
    case error_code::kWrongCredentials: return "Wrong Credentials";
    case error_code::kUnsupportedTransportProtocol: return "Unsupported Transport Protocol";
    case error_code::kPeerAddressFamilyMismatch: return "Peer Address Family Mismatch";
    case error_code::kConnectionAlreadyExists: return "Connection Already Exists";
    case error_code::kConnectionTimeoutOrFailure: return "Connection Timeout or Failure";
    case error_code::kAllocationQuotaReached: return "Allocation Quota Reached";
    case error_code::kServerError: return "Server Error";
    case error_code::kInsufficientCapacity: return "Insufficient Capacity";
    default: return "Error";
  }
}

}  // namespace tern::wire
