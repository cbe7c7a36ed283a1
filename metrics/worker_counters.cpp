// Label values of the per-worker counters.
#include "metrics/worker_counters.hpp"

namespace tern::metrics {

std::string_view labelOf(ClientTransport t) noexcept {
  switch (t) {
    case ClientTransport::kUdp: return "udp";
    case ClientTransport::kTcp: return "tcp";
    case ClientTransport::kTls: return "tls";
    case ClientTransport::kDtls: return "dtls";
    case ClientTransport::kCount: break;
  }
  return "unknown";
}

std::string_view labelOf(PacketKind k) noexcept {
  switch (k) {
    case PacketKind::kStun: return "stun";
    case PacketKind::kChannelData: return "channel_data";
    case PacketKind::kOther: return "other";
    case PacketKind::kCount: break;
  }
  return "unknown";
}

std::string_view labelOf(DropReason r) noexcept {
  switch (r) {
    case DropReason::kMalformed: return "malformed";
    case DropReason::kBadFingerprint: return "bad_fingerprint";
    case DropReason::kUnexpectedClass: return "unexpected_class";
    case DropReason::kNoAllocation: return "no_allocation";
    case DropReason::kSendFailed: return "send_failed";
    case DropReason::kNoPermission: return "no_permission";
    case DropReason::kPeerDenied: return "peer_denied";
    case DropReason::kNoChannel: return "no_channel";
    case DropReason::kIcmpIgnored: return "icmp_ignored";
    case DropReason::kBandwidthLimit: return "bandwidth_limit";
    case DropReason::kUserBandwidthLimit: return "user_bandwidth_limit";
    case DropReason::kRateLimited: return "rate_limited";
    case DropReason::kAllocationRequestRate: return "allocation_request_rate";
    case DropReason::kCount: break;
  }
  return "unknown";
}

std::string_view labelOf(BandwidthLimitKind k) noexcept {
  switch (k) {
    case BandwidthLimitKind::kAllocation: return "allocation";
    case BandwidthLimitKind::kUser: return "user";
    case BandwidthLimitKind::kCount: break;
  }
  return "unknown";
}

std::string_view labelOf(RequestMethod m) noexcept {
  switch (m) {
    case RequestMethod::kBinding: return "binding";
    case RequestMethod::kAllocate: return "allocate";
    case RequestMethod::kRefresh: return "refresh";
    case RequestMethod::kCreatePermission: return "create_permission";
    case RequestMethod::kChannelBind: return "channel_bind";
    case RequestMethod::kConnect: return "connect";
    case RequestMethod::kConnectionBind: return "connection_bind";
    case RequestMethod::kOther: return "other";
    case RequestMethod::kCount: break;
  }
  return "unknown";
}

std::string_view labelOf(Direction d) noexcept {
  switch (d) {
    case Direction::kClientToPeer: return "client_to_peer";
    case Direction::kPeerToClient: return "peer_to_client";
    case Direction::kCount: break;
  }
  return "unknown";
}

std::string_view labelOf(AuthResult r) noexcept {
  switch (r) {
    case AuthResult::kOk: return "ok";
    case AuthResult::kNoIntegrity: return "no_integrity";
    case AuthResult::kMissingAttributes: return "missing_attributes";
    case AuthResult::kWrongRealm: return "wrong_realm";
    case AuthResult::kStaleNonce: return "stale_nonce";
    case AuthResult::kInvalidNonce: return "invalid_nonce";
    case AuthResult::kUnknownUser: return "unknown_user";
    case AuthResult::kExpiredUser: return "expired_user";
    case AuthResult::kBadIntegrity: return "bad_integrity";
    case AuthResult::kBadPasswordAlgorithm: return "bad_password_algorithm";
    case AuthResult::kBadToken: return "bad_token";
    case AuthResult::kExpiredToken: return "expired_token";
    case AuthResult::kCount: break;
  }
  return "unknown";
}

std::string_view labelOf(AllocationEnd e) noexcept {
  switch (e) {
    case AllocationEnd::kExpired: return "expired";
    case AllocationEnd::kDeleted: return "deleted";
    case AllocationEnd::kConnectionClosed: return "connection_closed";
    case AllocationEnd::kShutdown: return "shutdown";
    case AllocationEnd::kEndedByAdmin: return "ended_by_admin";
    case AllocationEnd::kRevoked: return "revoked";
    case AllocationEnd::kCount: break;
  }
  return "unknown";
}

std::string_view labelOf(Family f) noexcept {
  switch (f) {
    case Family::kIPv4: return "ipv4";
    case Family::kIPv6: return "ipv6";
    case Family::kCount: break;
  }
  return "unknown";
}

std::string_view labelOf(Quota q) noexcept {
  switch (q) {
    case Quota::kUserAllocations: return "user_allocations";
    case Quota::kTotalAllocations: return "total_allocations";
    case Quota::kPermissions: return "permissions";
    case Quota::kChannels: return "channels";
    case Quota::kConnections: return "connections";
    case Quota::kCount: break;
  }
  return "unknown";
}

std::string_view labelOf(ConnectionLimit l) noexcept {
  switch (l) {
    case ConnectionLimit::kPerIp: return "per_ip";
    case ConnectionLimit::kTotal: return "total";
    case ConnectionLimit::kCount: break;
  }
  return "unknown";
}

std::string_view labelOf(ProxyRejection r) noexcept {
  switch (r) {
    case ProxyRejection::kMissing: return "missing";
    case ProxyRejection::kMalformed: return "malformed";
    case ProxyRejection::kTooLong: return "too_long";
    case ProxyRejection::kUnsupported: return "unsupported";
    case ProxyRejection::kTimeout: return "timeout";
    case ProxyRejection::kCount: break;
  }
  return "unknown";
}

std::string_view labelOf(DtlsLimit l) noexcept {
  switch (l) {
    case DtlsLimit::kHandshakesPerIp: return "handshakes_per_ip";
    case DtlsLimit::kHandshakes: return "handshakes";
    case DtlsLimit::kSessionsPerIp: return "sessions_per_ip";
    case DtlsLimit::kSessions: return "sessions";
    case DtlsLimit::kCount: break;
  }
  return "unknown";
}

RequestMethod requestMethodOf(std::uint16_t stun_method) noexcept {
  // STUN method numbers (RFC 8489 §18.2, RFC 8656 §17, RFC 6062 §6.1).
  switch (stun_method) {
    case 0x001: return RequestMethod::kBinding;
    case 0x003: return RequestMethod::kAllocate;
    case 0x004: return RequestMethod::kRefresh;
    case 0x008: return RequestMethod::kCreatePermission;
    case 0x009: return RequestMethod::kChannelBind;
    case 0x00A: return RequestMethod::kConnect;
    case 0x00B: return RequestMethod::kConnectionBind;
    default: return RequestMethod::kOther;
  }
}

std::size_t responseCodeIndex(std::uint16_t code) noexcept {
  std::size_t server_error = 0;
  for (std::size_t i = 0; i < kResponseCodes.size(); ++i) {
    if (kResponseCodes[i] == code) return i;
    if (kResponseCodes[i] == 500) server_error = i;
  }
  return server_error;
}

}  // namespace tern::metrics
