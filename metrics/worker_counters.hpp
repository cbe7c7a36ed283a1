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

// A value that goes up and down, with one writer: allocations alive, event-loop lag.
template <class T>
class OneWriterGauge {
 public:
  void add(T delta) noexcept { set(get() + delta); }
  void set(T v) noexcept { value_.store(v, std::memory_order_relaxed); }
  T get() const noexcept { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<T> value_{};
};

// Fixed upper bounds (seconds) of a histogram's buckets; +Inf is implied.
inline constexpr std::array<double, 12> kRequestDurationBounds = {
    0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25};
inline constexpr std::array<double, 12> kAllocationDurationBounds = {
    10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 14400, 43200, 86400};

// A histogram with one writer: one counter per bucket (not cumulative; the scrape adds them
// up) and the running sum. Observing is a short linear search, no lock, no CAS.
template <const auto& Bounds>
class OneWriterHistogram {
 public:
  static constexpr const auto& bounds = Bounds;
  void observe(double seconds) noexcept {
    std::size_t i = 0;
    while (i < Bounds.size() && seconds > Bounds[i]) ++i;
    buckets_[i].add();
    sum_.add(seconds);
  }
  std::uint64_t bucket(std::size_t i) const noexcept { return buckets_[i].get(); }
  double sum() const noexcept { return sum_.get(); }
  // An upgrade carries observations over (counter_snapshot.hpp); before the writer starts.
  void restoreBucket(std::size_t i, std::uint64_t n) noexcept { buckets_[i].add(n); }
  void restoreSum(double seconds) noexcept { sum_.add(seconds); }

 private:
  std::array<OneWriterCounter, Bounds.size() + 1> buckets_{};
  OneWriterGauge<double> sum_;
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
  kIcmpIgnored,     // RFC 8656 §11.5: an ICMP error of a type that is not passed on
  kBandwidthLimit,      // --max-bps: the allocation's bucket for that direction is empty
  kUserBandwidthLimit,  // --max-bps-per-user: the user's shared bucket is empty
  kRateLimited,     // an unauthenticated request from a source over its answer limit
  kAllocationRequestRate,  // an authenticated request on an allocation over its request limit
  kCount
};
enum class Direction : std::uint8_t { kClientToPeer, kPeerToClient, kCount };
// Which bandwidth limit stopped an RFC 6062 TCP connection's reading.
enum class BandwidthLimitKind : std::uint8_t { kAllocation, kUser, kCount };
// The relayed address's family.
enum class Family : std::uint8_t { kIPv4, kIPv6, kCount };
// Which limit refused a request.
enum class Quota : std::uint8_t {
  kUserAllocations,   // --max-allocations-per-user: 486
  kTotalAllocations,  // --max-allocations: 508
  kPermissions,       // --max-permissions-per-allocation: 508
  kChannels,          // --max-channels-per-allocation: 508
  kConnections,       // --max-connections-per-allocation (RFC 6062)
  kCount
};
// Which limit refused a TCP or TLS client connection at accept.
enum class ConnectionLimit : std::uint8_t {
  kPerIp,  // --max-tcp-connections-per-ip
  kTotal,  // --max-tcp-connections
  kCount
};
// Why a connection from a --proxy-protocol-from source was closed before its PROXY header
// was read (wire::ProxyHeaderError, and the deadline).
enum class ProxyRejection : std::uint8_t {
  kMissing,      // the connection did not start with a PROXY header
  kMalformed,    // a header the spec does not allow
  kTooLong,      // a header longer than tern reads
  kUnsupported,  // a v2 version or command the spec does not define
  kTimeout,      // no whole header within the deadline
  kCount
};
// Which limit refused a DTLS client that had echoed its cookie (RFC 6347 §4.2.1).
enum class DtlsLimit : std::uint8_t {
  kHandshakesPerIp,  // --max-dtls-handshakes-per-ip, node-wide
  kHandshakes,       // the worker's cap on handshakes in progress (DtlsEndpoint::kMaxHandshakes)
  kSessionsPerIp,    // --max-dtls-sessions-per-ip
  kSessions,         // --max-dtls-sessions
  kCount
};
// Outcomes of authentication (RFC 8489 §9.2.4), as label values.
enum class AuthResult : std::uint8_t {
  kOk, kNoIntegrity, kMissingAttributes, kWrongRealm, kStaleNonce, kInvalidNonce, kUnknownUser,
  kExpiredUser, kBadIntegrity, kBadPasswordAlgorithm, kBadToken, kExpiredToken, kCount
};
// kConnectionClosed: the TCP or TLS connection that carried the allocation closed.
// kEndedByAdmin: an operator's call (the admin API, `tern admin end`); kRevoked: the user's
// credentials were revoked (`tern admin revoke`).
enum class AllocationEnd : std::uint8_t { kExpired, kDeleted, kConnectionClosed, kShutdown, kEndedByAdmin, kRevoked, kCount };
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
std::string_view labelOf(Family f) noexcept;
std::string_view labelOf(Quota q) noexcept;
std::string_view labelOf(BandwidthLimitKind k) noexcept;
std::string_view labelOf(ConnectionLimit l) noexcept;
std::string_view labelOf(DtlsLimit l) noexcept;
std::string_view labelOf(ProxyRejection r) noexcept;
RequestMethod requestMethodOf(std::uint16_t stun_method) noexcept;
// Index of `code` in kResponseCodes; codes tern never sends are counted as 500.
std::size_t responseCodeIndex(std::uint16_t code) noexcept;

template <class E>
constexpr std::size_t idx(E e) noexcept {
  return static_cast<std::size_t>(e);
}

// Why the fast path passed a packet it had an entry for up to user space, in the order of
// relay/io/fast_path_maps.h's enum tern_fp_fallback.
inline constexpr std::array<std::string_view, 6> kFastPathFallbacks = {"expired", "mtu", "route", "checksum",
                                                                        "malformed", "forwarding"};

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
  // Issue 21: what the kernel fast path relayed for this worker's allocations (UDP clients
  // only), credited on every tick; and its state. Worker 0 also copies the program's own
  // per-CPU totals (misses, fallbacks by reason: FastPathFallback) and the interfaces.
  std::array<OneWriterCounter, idx(Direction::kCount)> kernel_relayed_packets{};
  std::array<OneWriterCounter, idx(Direction::kCount)> kernel_relayed_bytes{};
  OneWriterGauge<std::int64_t> fastpath_allocations;  // allocations with entries in the maps
  OneWriterGauge<std::int64_t> fastpath_entries;      // channel entries (one per map and direction)
  OneWriterCounter fastpath_full;                     // allocations left in user space: maps full
  OneWriterGauge<std::int64_t> fastpath_attached;     // worker 0: interfaces attached
  OneWriterGauge<std::int64_t> fastpath_misses;       // worker 0: the program's total
  std::array<OneWriterGauge<std::int64_t>, kFastPathFallbacks.size()> fastpath_fallbacks{};
  std::array<OneWriterCounter, idx(AuthResult::kCount)> auth_results{};
  std::array<std::array<OneWriterCounter, idx(Family::kCount)>, idx(ClientTransport::kCount)> allocations_created{};
  std::array<std::array<OneWriterGauge<std::int64_t>, idx(Family::kCount)>, idx(ClientTransport::kCount)>
      allocations_active{};
  std::array<OneWriterCounter, idx(AllocationEnd::kCount)> allocations_ended{};
  OneWriterHistogram<kAllocationDurationBounds> allocation_duration;
  std::array<OneWriterCounter, idx(Quota::kCount)> quota_rejections{};
  // Recounted on every tick: permissions and channel bindings expire without an event.
  OneWriterGauge<std::int64_t> permissions_active;
  OneWriterGauge<std::int64_t> channels_active;
  // Written by the I/O layer: request handling time, and how the worker's loop keeps up.
  std::array<OneWriterHistogram<kRequestDurationBounds>, idx(RequestMethod::kCount)> request_duration{};
  OneWriterGauge<double> loop_lag_seconds;
  OneWriterGauge<std::int64_t> loop_handles;  // libuv handles of the worker's loop
  OneWriterGauge<std::int64_t> last_tick_ns;  // steady clock; /healthz reads it
  OneWriterCounter log_lines_suppressed;
  // RFC 8656 §11.5: ICMP errors from peers passed to clients in Data indications.
  OneWriterCounter icmp_indications;
  // RFC 8016: allocations moved to a new 5-tuple, counted by the worker that serves them
  // afterwards; [0] stayed on the worker, [1] came from another worker.
  std::array<OneWriterCounter, 2> allocations_moved{};
  // RFC 6062 TCP connections that stopped reading until a bandwidth limit's bucket refilled
  // (bytes in a TCP pipe are paused, never dropped).
  std::array<OneWriterCounter, idx(BandwidthLimitKind::kCount)> bandwidth_pauses{};
  // TCP and TLS client connections: refused at accept by a limit, and open now.
  std::array<OneWriterCounter, idx(ConnectionLimit::kCount)> tcp_connections_refused{};
  OneWriterGauge<std::int64_t> tcp_connections_open;
  std::array<OneWriterCounter, idx(ProxyRejection::kCount)> proxy_rejected{};
  // Relay ports: taken minus released by this worker (only the sum over workers is the number
  // in use), and taken beyond the worker's share of --relay-ports since the start.
  OneWriterGauge<std::int64_t> relay_ports_held;
  OneWriterGauge<std::int64_t> relay_ports_borrowed;
  // Permissions, channels and RFC 6062 peer connections a reload's narrower peer policy ended.
  std::array<OneWriterCounter, 3> peers_revoked{};
  // DTLS clients refused after their cookie echo by a limit, and sessions held now (in
  // handshake or established).
  std::array<OneWriterCounter, idx(DtlsLimit::kCount)> dtls_refused{};
  OneWriterGauge<std::int64_t> dtls_sessions_open;

  void allocationCreated(ClientTransport t, Family f) noexcept {
    allocations_created[idx(t)][idx(f)].add();
    allocations_active[idx(t)][idx(f)].add(1);
  }
  void allocationEnded(ClientTransport t, Family f, AllocationEnd why, double seconds) noexcept {
    allocations_active[idx(t)][idx(f)].add(-1);
    allocations_ended[idx(why)].add();
    allocation_duration.observe(seconds);
  }
  // A hand-over between workers moves the allocation's place in the active gauge; the
  // gauges are summed over workers, so the total stays true.
  void allocationLeft(ClientTransport t, Family f) noexcept { allocations_active[idx(t)][idx(f)].add(-1); }
  // An upgrade hand-over: the allocation is active in the new process from now on (its
  // creation was counted by the old one, whose counters carry over separately).
  void allocationArrived(ClientTransport t, Family f) noexcept {
    allocations_active[idx(t)][idx(f)].add(1);
  }
  void allocationMoved(ClientTransport t, Family f, bool cross_worker) noexcept {
    if (cross_worker) allocations_active[idx(t)][idx(f)].add(1);
    allocations_moved[cross_worker ? 1 : 0].add();
  }
  void rejected(Quota q) noexcept { quota_rejections[idx(q)].add(); }
  void tcpConnectionRefused(ConnectionLimit l) noexcept { tcp_connections_refused[idx(l)].add(); }
  void peersRevoked(std::size_t permissions, std::size_t channels, std::size_t connections) noexcept {
    peers_revoked[0].add(permissions);
    peers_revoked[1].add(channels);
    peers_revoked[2].add(connections);
  }
  void dtlsRefused(DtlsLimit l) noexcept { dtls_refused[idx(l)].add(); }
  std::int64_t activeAllocations() const noexcept {
    std::int64_t n = 0;
    for (const auto& by_family : allocations_active) {
      for (const auto& g : by_family) n += g.get();
    }
    return n;
  }

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
