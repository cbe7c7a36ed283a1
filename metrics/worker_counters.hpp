// Per-worker counters for the packet path: plain atomics with exactly one writer (the worker's
// thread), so an increment is a relaxed load and store, never a lock or a CAS. A scrape sums
// every worker's counters (see counter_collector.hpp).
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tern::metrics {

class OneWriterCounter {
 public:
  void add(std::uint64_t n = 1) noexcept {
    value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
  }
  std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<std::uint64_t> value_{0};
};

// Label values are fixed sets, so every series is known up front (bounded cardinality).
enum class ClientTransport : std::uint8_t { kUdp, kTcp, kTls, kDtls, kCount };
enum class PacketKind : std::uint8_t { kStun, kChannelData, kOther, kCount };
enum class DropReason : std::uint8_t {
  kMalformed,       // not parseable as STUN or ChannelData
  kBadFingerprint,  // RFC 8489 §7.3: a FINGERPRINT that does not match
  kUnexpectedClass, // a response or unknown indication sent to the server
  kNoAllocation,    // ChannelData or Send without an allocation
  kSendFailed,      // the kernel refused the datagram (buffer full)
  kNoPermission,    // RFC 8656 §9: no permission for that peer (either direction)
  kPeerDenied,      // the peer policy refused the destination
  kNoChannel,       // ChannelData on a channel that is not bound
  kCount
};
enum class Direction : std::uint8_t { kClientToPeer, kPeerToClient, kCount };
// Outcomes of authentication (RFC 8489 §9.2.4), as label values.
enum class AuthResult : std::uint8_t {
  kOk, kNoIntegrity, kMissingAttributes, kWrongRealm, kStaleNonce, kInvalidNonce, kUnknownUser,
  kExpiredUser, kBadIntegrity, kCount
};
// kConnectionClosed: the TCP or TLS connection that carried the allocation closed.
enum class AllocationEnd : std::uint8_t { kExpired, kDeleted, kConnectionClosed, kShutdown, kCount };
// The methods tern answers, and the response codes it sends (200 = success).
enum class RequestMethod : std::uint8_t {
  kBinding, kAllocate, kRefresh, kCreatePermission, kChannelBind, kConnect, kConnectionBind,
  kOther, kCount
};
inline constexpr std::array<std::uint16_t, 18> kResponseCodes = {
    200, 300, 400, 401, 403, 405, 420, 437, 438, 440, 441, 442, 443, 446, 447, 486, 500, 508};

std::string_view labelOf(ClientTransport t) noexcept;
std::string_view labelOf(PacketKind k) noexcept;
std::string_view labelOf(DropReason r) noexcept;
std::string_view labelOf(RequestMethod m) noexcept;
std::string_view labelOf(Direction d) noexcept;
std::string_view labelOf(AuthResult r) noexcept;
std::string_view labelOf(AllocationEnd e) noexcept;
RequestMethod requestMethodOf(std::uint16_t stun_method) noexcept;
// Index of `code` in kResponseCodes; codes tern never sends are counted as 500.
std::size_t responseCodeIndex(std::uint16_t code) noexcept;

template <class E>
constexpr std::size_t idx(E e) noexcept {
  return static_cast<std::size_t>(e);
}

struct WorkerCounters {
  std::array<std::array<OneWriterCounter, idx(PacketKind::kCount)>, idx(ClientTransport::kCount)>
      packets_received{};
  std::array<OneWriterCounter, idx(DropReason::kCount)> dropped{};
  std::array<std::array<OneWriterCounter, kResponseCodes.size()>, idx(RequestMethod::kCount)>
      responses{};

  std::array<std::array<OneWriterCounter, idx(ClientTransport::kCount)>, idx(Direction::kCount)>
      relayed_packets{};
  std::array<std::array<OneWriterCounter, idx(ClientTransport::kCount)>, idx(Direction::kCount)>
      relayed_bytes{};
  std::array<OneWriterCounter, idx(AuthResult::kCount)> auth_results{};
  std::array<OneWriterCounter, idx(ClientTransport::kCount)> allocations_created{};
  std::array<OneWriterCounter, idx(AllocationEnd::kCount)> allocations_ended{};

  void relayed(Direction d, ClientTransport t, std::size_t bytes) noexcept {
    relayed_packets[idx(d)][idx(t)].add();
    relayed_bytes[idx(d)][idx(t)].add(bytes);
  }
  void received(ClientTransport t, PacketKind k) noexcept { packets_received[idx(t)][idx(k)].add(); }
  void drop(DropReason r) noexcept { dropped[idx(r)].add(); }
  void responded(std::uint16_t stun_method, std::uint16_t code) noexcept {
    responses[idx(requestMethodOf(stun_method))][responseCodeIndex(code)].add();
  }
};

}  // namespace tern::metrics
