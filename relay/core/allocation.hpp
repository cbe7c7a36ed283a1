// One TURN allocation (RFC 8656 §2.2, §9, §12): the relayed address bound to a client's
// 5-tuple, its permissions (per peer IP) and channel bindings (channel <-> peer address).
// Lists are small vectors that grow only on the control path; the packet path only reads them.
#pragma once

#include <algorithm>
#include <array>
#include <chrono>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/worker_counters.hpp"
#include "relay/core/bandwidth.hpp"
#include "relay/core/five_tuple.hpp"
#include "relay/core/socket_ids.hpp"
#include "relay/wire/stun_constants.hpp"

namespace tern::core {

struct Permission {
  IpAddress peer;  // normalised (IPv4-mapped IPv6 is IPv4)
  TimePoint expires;
};

struct ChannelBinding {
  std::uint16_t number = 0;
  SocketAddress peer;
  TimePoint expires;
  // The peer is one of the relay's own addresses: a relayed address that may close while the
  // channel lives, so ChannelData re-checks the peer policy for it (and only for it).
  bool own_peer = false;
};

// What a peer policy re-check removed from an allocation (a reload that narrowed the policy).
struct PeerRecheck {
  std::size_t permissions = 0;
  std::size_t channels = 0;
};

class PeerPolicy;
struct AllocationSnapshot;

// What one allocation relayed, for its usage record when it ends (RFC 6062 data included).
struct AllocationUsage {
  std::uint64_t packets_to_peer = 0;
  std::uint64_t bytes_to_peer = 0;
  std::uint64_t packets_to_client = 0;
  std::uint64_t bytes_to_client = 0;
  bool operator==(const AllocationUsage&) const = default;
  AllocationUsage& operator+=(const AllocationUsage& more) noexcept {
    packets_to_peer += more.packets_to_peer;
    bytes_to_peer += more.bytes_to_peer;
    packets_to_client += more.packets_to_client;
    bytes_to_client += more.bytes_to_client;
    return *this;
  }
};

// One relayed transport address of an allocation and the socket behind it.
struct RelayEndpoint {
  RelayId id = 0;
  SocketAddress relayed;  // as advertised to the client (after --external-ip)
};

class Allocation {
 public:
  Allocation(const FiveTuple& tuple, RelayId relay, const SocketAddress& relayed,
             std::string username, std::vector<std::uint8_t> key, TimePoint now);

  // An upgrade hand-over (allocation_snapshot.cpp): all the allocation's state as plain values,
  // times relative to `now` (worker stays 0: the caller knows it). May throw std::bad_alloc.
  AllocationSnapshot snapshot(TimePoint now) const;
  // The allocation again in the new process, times made absolute on its clock `now`, relay ids
  // as in the snapshot, no user bandwidth (the quota gives it). May throw std::bad_alloc.
  static std::unique_ptr<Allocation> restore(const AllocationSnapshot& snapshot, TimePoint now);

  const FiveTuple& tuple() const noexcept { return tuple_; }
  // RFC 8016: mobility moves the allocation to a new 5-tuple. Only AllocationTable::rekey
  // and a hand-over between workers (before the new owner's table takes it) call this.
  void setTuple(const FiveTuple& tuple) noexcept {
    tuple_ = tuple;
    changed();
  }
  // The first relayed address: the only one, or the IPv4 one of a dual allocation.
  RelayId relay() const noexcept { return relays_[0].id; }
  // The relayed transport address as advertised to the client (after --external-ip).
  const SocketAddress& relayed() const noexcept { return relays_[0].relayed; }
  // RFC 8656 §7.2 dual allocation: one relayed address per family, IPv4 first.
  std::span<const RelayEndpoint> relays() const noexcept { return {relays_.data(), relay_count_}; }
  // The relayed address a peer of `peer`'s family is reached from; null when the allocation
  // has none of that family (RFC 8656 §10.2, §12.2: 443 Peer Address Family Mismatch).
  const RelayEndpoint* relayFor(const IpAddress& peer) const noexcept { return relayOf(peer.family()); }
  const RelayEndpoint* relayOf(wire::AddressFamily family) const noexcept;
  // Adds the IPv6 half of a dual allocation (the caller keeps the table's index in step).
  void addRelay(const RelayEndpoint& endpoint) noexcept;
  // Drops the relayed address of `family` (RFC 8656 §8: a Refresh with LIFETIME 0 and
  // REQUESTED-ADDRESS-FAMILY); the other stays. Only for dual allocations.
  void removeRelay(wire::AddressFamily family) noexcept;
  // A hand-over to another worker renumbers the relay sockets there (same sockets, same
  // addresses).
  void setRelayId(std::size_t index, RelayId id) noexcept {
    relays_[index].id = id;
    changed();
  }
  const std::string& username() const noexcept { return username_; }
  const std::vector<std::uint8_t>& key() const noexcept { return key_; }
  // The integrity attribute the client signs with, for responses sent later (RFC 6062 Connect).
  wire::AttributeType integrity() const noexcept { return integrity_; }
  void setIntegrity(wire::AttributeType integrity) noexcept {
    integrity_ = integrity;
    changed();
  }
  // RFC 7635: an allocation made with an ACCESS-TOKEN keeps the token's expiry, its kid (the
  // USERNAME requests without a token must carry) and its mac_key as key(); a Refresh with a
  // newer token, perhaps sealed under another kid, moves all three on. username() stays the
  // first kid, for the quota and the usage record.
  const std::optional<std::int64_t>& tokenExpiry() const noexcept { return token_expiry_; }
  const std::string& tokenKid() const noexcept { return token_kid_; }
  void setToken(std::optional<std::int64_t> expiry, std::vector<std::uint8_t> key, std::string_view kid) {
    token_expiry_ = expiry;
    key_ = std::move(key);
    token_kid_ = kid;
    changed();
  }
  TimePoint created() const noexcept { return created_; }
  // --max-bps: this allocation's bucket for each direction of relayed data (indexed by
  // metrics::Direction: one direction's flood cannot starve the other).
  TokenBucket& bandwidth(metrics::Direction d) noexcept { return bandwidth_[metrics::idx(d)]; }
  const TokenBucket& bandwidth(metrics::Direction d) const noexcept { return bandwidth_[metrics::idx(d)]; }
  // --max-bps-per-user: the buckets all allocations of this user share across workers, from
  // AllocationQuota::acquire; null only for allocations made without one (tests).
  UserBandwidth* userBandwidth() const noexcept { return user_bandwidth_; }
  void setUserBandwidth(UserBandwidth* user) noexcept { user_bandwidth_ = user; }
  // --max-requests-per-allocation: one token per authenticated request on this allocation
  // (Refresh, CreatePermission, ChannelBind, Connect, a retransmitted Allocate), so a holder of
  // its credentials cannot spend the worker's CPU on it. kFirstDrop once per episode of drops.
  enum class RequestVerdict : std::uint8_t { kAdmit, kDrop, kFirstDrop };
  RequestVerdict admitRequest(const RequestRateLimit& limit, TimePoint now) noexcept;
  AllocationUsage& usage() noexcept { return usage_; }
  const AllocationUsage& usage() const noexcept { return usage_; }
  TimePoint expires() const noexcept { return expires_; }
  void setExpiry(TimePoint t) noexcept {
    expires_ = t;
    changed();
  }
  bool expired(TimePoint now) const noexcept { return now >= expires_; }
  // Where the allocation sits in its table's expiry heap; only AllocationTable sets it.
  static constexpr std::size_t kNotQueued = static_cast<std::size_t>(-1);
  std::size_t expirySlot() const noexcept { return expiry_slot_; }
  void setExpirySlot(std::size_t slot) noexcept { expiry_slot_ = slot; }

  // RFC 8656 §7.2: a retransmitted Allocate is answered with success again, not 437.
  const wire::TransactionId& allocateTransaction() const noexcept { return allocate_transaction_; }
  void setAllocateTransaction(const wire::TransactionId& t) noexcept {
    allocate_transaction_ = t;
    changed();
  }
  // What that success carried besides the addresses and the lifetime, for the retransmission:
  // the RESERVATION-TOKEN of the port reserved with it, and the ADDRESS-ERROR-CODE (440 or
  // 508; 0 for none) that refused the IPv6 half ADDITIONAL-ADDRESS-FAMILY asked for.
  const std::optional<std::uint64_t>& reservationToken() const noexcept {
    return reservation_token_;
  }
  std::uint16_t additionalFamilyError() const noexcept { return additional_family_error_; }
  void setAllocateExtras(std::optional<std::uint64_t> token, std::uint16_t additional_family_error) noexcept {
    reservation_token_ = token;
    additional_family_error_ = additional_family_error;
    changed();
  }

  // RFC 8016: the handle the client's current MOBILITY-TICKET names; 0 when the client did
  // not ask for mobility. A new ticket gets a new handle, so older tickets stop working.
  std::uint64_t mobilityHandle() const noexcept { return mobility_handle_; }
  void setMobilityHandle(std::uint64_t handle) noexcept {
    mobility_handle_ = handle;
    changed();
  }

  // RFC 6062: the relayed address is a TCP listener, and data flows over TCP connections
  // (listed here by CONNECTION-ID) instead of Send/Data and channels.
  bool tcp() const noexcept { return tcp_; }
  void setTcp() noexcept {
    tcp_ = true;
    changed();
  }
  const std::vector<ConnectionId>& connections() const noexcept { return connections_; }
  // Room for one more connection first (may throw std::bad_alloc), so that adding it once the
  // connection has started cannot fail.
  void reserveConnection() {
    if (connections_.size() == connections_.capacity()) connections_.reserve(std::max<std::size_t>(4, 2 * connections_.size()));
  }
  void addConnection(ConnectionId id) {
    connections_.push_back(id);
    changed();
  }
  void removeConnection(ConnectionId id) noexcept;
  // An upgrade hand-over restores an allocation without its RFC 6062 peer connections.
  void clearConnections() noexcept {
    connections_.clear();
    changed();
  }

  // RFC 8656 §9: permissions are per IP address; expired ones do not count.
  bool hasPermission(const IpAddress& peer, TimePoint now) const noexcept;
  // Installs or refreshes; false if that would exceed `max_permissions` live permissions.
  // Out of memory: false too (relay/wire/checks.hpp), so the request is refused with 508.
  bool installPermission(const IpAddress& peer, TimePoint now, TimePoint expires,
                         std::size_t max_permissions) noexcept;
  std::size_t activePermissions(TimePoint now) const noexcept;

  const ChannelBinding* channelByNumber(std::uint16_t number, TimePoint now) const noexcept;
  const ChannelBinding* channelByPeer(const SocketAddress& peer, TimePoint now) const noexcept;
  // Binds or refreshes; the caller has checked RFC 8656 §12.2's rules. False past the cap.
  bool bindChannel(std::uint16_t number, const SocketAddress& peer, TimePoint now,
                   TimePoint expires, std::size_t max_channels, bool own_peer = false) noexcept;
  // Ends at once the permissions and channels whose peer `policy` refuses now, and marks
  // again which channels lead to the relay's own addresses (a reload may change both).
  PeerRecheck recheckPeers(const PeerPolicy& policy, TimePoint now) noexcept;
  std::size_t activeChannels(TimePoint now) const noexcept;
  // Every channel binding, expired ones included (their slots are reused), and the end of the
  // permission for `peer` (none if there never was one): the kernel fast path's entries.
  std::span<const ChannelBinding> channels() const noexcept { return channels_; }
  std::optional<TimePoint> permissionExpiry(const IpAddress& peer) const noexcept;

  // Issue 20's pre-copy: counts every change to the state a snapshot carries, except what
  // the packet path changes (usage() and the bandwidth buckets, compared by value instead).
  // An upgrade sends an allocation early and again at the end only if this moved meanwhile.
  std::uint32_t changes() const noexcept { return changes_; }
  // Issue 21: whether the channel cache (ChannelCache) has seen the latest changes().
  bool cacheStale() const noexcept { return cached_changes_ != changes_; }
  void markCached() noexcept { cached_changes_ = changes_; }
  void markCacheStale() noexcept { cached_changes_ = changes_ - 1; }

 private:
  void changed() noexcept { ++changes_; }

  FiveTuple tuple_;
  std::array<RelayEndpoint, 2> relays_;
  std::size_t relay_count_ = 1;
  std::string username_;
  std::vector<std::uint8_t> key_;  // long-term key, to sign responses (RFC 8489 §9.2.4)
  wire::AttributeType integrity_ = wire::AttributeType::kMessageIntegrity;
  std::optional<std::int64_t> token_expiry_;
  std::string token_kid_;
  TimePoint created_;
  TimePoint expires_;
  std::size_t expiry_slot_ = kNotQueued;
  AllocationUsage usage_;
  std::array<TokenBucket, metrics::idx(metrics::Direction::kCount)> bandwidth_{};
  UserBandwidth* user_bandwidth_ = nullptr;
  TokenBucket requests_;
  bool requests_limited_ = false;
  wire::TransactionId allocate_transaction_{};
  std::optional<std::uint64_t> reservation_token_;
  std::uint16_t additional_family_error_ = 0;
  bool tcp_ = false;
  std::uint64_t mobility_handle_ = 0;
  std::vector<ConnectionId> connections_;
  std::vector<Permission> permissions_;
  std::vector<ChannelBinding> channels_;
  std::uint32_t changes_ = 0;
  std::uint32_t cached_changes_ = static_cast<std::uint32_t>(-1);
};

// RFC 8016 across workers: an allocation on its way from the worker that owned it to the
// worker whose listener receives the client's new 5-tuple. The relay sockets travel beside
// it in the I/O layer.
struct AllocationHandOver {
  std::unique_ptr<Allocation> allocation;  // already carries the new 5-tuple
  SocketAddress previous_client;
  std::vector<std::uint8_t> request;  // the Refresh that moved it; the new owner answers it
};

}  // namespace tern::core
