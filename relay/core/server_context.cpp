// ServerContext: the state and steps the handlers, the client side and the peer side of a
// worker's TurnServer share (see server_context.hpp).
#include "relay/core/server_context.hpp"

#include <algorithm>

#include "relay/core/peer_policy.hpp"

namespace tern::core {

void ServerContext::endConnection(ConnectionId id, bool close_sockets) noexcept {
  TcpConnection* c = connections.find(id);
  if (c == nullptr) return;
  if (Allocation* a = allocations.find(c->control)) a->removeConnection(id);
  connections.erase(id);
  if (close_sockets) output.peer_connections.closeConnection(id);
}

void ServerContext::endAllocation(Allocation& allocation, metrics::AllocationEnd why,
                                  TimePoint now) noexcept {
  releaseAllocation(allocation, why, now);
  allocations.erase(allocation);
}

void ServerContext::cacheAllocation(Allocation& allocation, TimePoint now, bool force) noexcept {
  if (channel_cache == nullptr || (!force && !allocation.cacheStale())) return;
  allocation.markCached();
  // A bandwidth limit is enforced here, packet by packet: such allocations stay in user space.
  const bool eligible = options.allocation_bandwidth.unlimited() && options.user_bandwidth.unlimited();
  channel_cache->update(allocation, eligible, now);
}

void ServerContext::uncacheAllocation(Allocation& allocation) noexcept {
  if (channel_cache == nullptr) return;
  allocation.usage() += channel_cache->remove(allocation);
  allocation.markCacheStale();
}

void ServerContext::releaseAllocation(Allocation& allocation, metrics::AllocationEnd why,
                                      TimePoint now) noexcept {
  // The kernel stops relaying for it before its sockets close, and what it relayed is counted.
  uncacheAllocation(allocation);
  // RFC 6062: the TCP connections of an allocation end with it.
  for (ConnectionId id : allocation.connections()) {
    connections.erase(id);
    output.peer_connections.closeConnection(id);
  }
  for (const RelayEndpoint& r : allocation.relays()) {
    output.relays.closeRelay(r.id);
    forgetRename(r.id);
  }
  services.quota->release(quotaKey(allocation.username()));
  const auto age =
      std::chrono::duration_cast<std::chrono::milliseconds>(now - allocation.created());
  counters.allocationEnded(counterTransport(allocation.tuple().transport),
                           counterFamily(allocation.relayed().ip), why,
                           static_cast<double>(age.count()) / 1000.0);
  output.events.onAllocationEnded(allocation, metrics::labelOf(why),
                                  std::chrono::duration_cast<std::chrono::seconds>(age));
}

void ServerContext::forgetRename(RelayId relay) noexcept {
  if (renamed_from.empty()) return;  // no upgrade restored anything here: the usual case
  const auto it = renamed_from.find(relay);
  if (it == renamed_from.end()) return;
  renamed_relays.erase(it->second);
  renamed_from.erase(it);
}

void ServerContext::countRelayed(Allocation& allocation, metrics::Direction direction,
                                 std::size_t bytes) noexcept {
  counters.relayed(direction, counterTransport(allocation.tuple().transport), bytes);
  AllocationUsage& usage = allocation.usage();
  if (direction == metrics::Direction::kClientToPeer) {
    ++usage.packets_to_peer;
    usage.bytes_to_peer += bytes;
  } else {
    ++usage.packets_to_client;
    usage.bytes_to_client += bytes;
  }
}

bool ServerContext::admitBandwidth(Allocation& allocation, metrics::Direction direction,
                                   std::size_t bytes, TimePoint now) noexcept {
  const auto refused = bandwidthRefusal(allocation, direction, bytes, now);
  if (refused) counters.drop(*refused);
  return !refused;
}

std::optional<metrics::DropReason> ServerContext::bandwidthRefusal(Allocation& allocation,
                                                                   metrics::Direction direction,
                                                                   std::size_t bytes,
                                                                   TimePoint now) noexcept {
  const BandwidthLimit& own_limit = options.allocation_bandwidth;
  const BandwidthLimit& user_limit = options.user_bandwidth;
  if (own_limit.unlimited() && user_limit.unlimited()) return std::nullopt;
  TokenBucket& own = allocation.bandwidth(direction);
  if (!own.hasTokens(own_limit, now)) return metrics::DropReason::kBandwidthLimit;
  // The shared bucket is charged in the same step that checks it (another worker may take
  // from it meanwhile); the allocation's own, which only this thread touches, after it, so
  // a packet the user's budget refuses costs the allocation nothing.
  if (UserBandwidth* user = allocation.userBandwidth();
      user != nullptr && !user->buckets[metrics::idx(direction)].tryTake(user_limit, bytes, now)) {
    return metrics::DropReason::kUserBandwidthLimit;
  }
  own.take(own_limit, bytes, now);
  return std::nullopt;
}

std::chrono::nanoseconds ServerContext::chargeStream(Allocation& allocation,
                                                     metrics::Direction direction,
                                                     std::size_t bytes, TimePoint now) noexcept {
  allocation.bandwidth(direction).take(options.allocation_bandwidth, bytes, now);
  UserBandwidth* user = allocation.userBandwidth();
  if (user != nullptr)
    user->buckets[metrics::idx(direction)].take(options.user_bandwidth, bytes, now);
  const auto own = allocation.bandwidth(direction).wait(options.allocation_bandwidth, now);
  const auto shared = user != nullptr
                          ? user->buckets[metrics::idx(direction)].wait(options.user_bandwidth, now)
                          : std::chrono::nanoseconds{};
  if (own.count() > 0 || shared.count() > 0) {
    const auto limit = own >= shared ? metrics::BandwidthLimitKind::kAllocation
                                     : metrics::BandwidthLimitKind::kUser;
    counters.bandwidth_pauses[metrics::idx(limit)].add();
  }
  return std::max(own, shared);
}

std::chrono::nanoseconds ServerContext::bandwidthWait(const Allocation& allocation,
                                                      metrics::Direction direction,
                                                      TimePoint now) const noexcept {
  const auto own = allocation.bandwidth(direction).wait(options.allocation_bandwidth, now);
  const UserBandwidth* user = allocation.userBandwidth();
  const auto shared = user != nullptr
                          ? user->buckets[metrics::idx(direction)].wait(options.user_bandwidth, now)
                          : std::chrono::nanoseconds{};
  return std::max(own, shared);
}

Allocation* ServerContext::liveAllocation(const FiveTuple& tuple, TimePoint now) noexcept {
  Allocation* allocation = allocations.find(tuple);
  if (allocation == nullptr || allocation->expired(now)) {
    counters.drop(metrics::DropReason::kNoAllocation);
    return nullptr;
  }
  return allocation;
}

std::optional<metrics::DropReason> ServerContext::relayToPeer(Allocation& allocation,
                                                              const SocketAddress& peer,
                                                              wire::Bytes payload,
                                                              bool check_policy,
                                                              TimePoint now) noexcept {
  const auto refuse = [this](metrics::DropReason why) {
    counters.drop(why);
    return std::optional(why);
  };
  if (!allocation.hasPermission(peer.ip, now)) return refuse(metrics::DropReason::kNoPermission);
  // A relayed address of this relay is a peer only while it is open: once its allocation
  // ends, some other program may hold the port. The permission was checked per IP; the
  // relay's own addresses also need a relay port.
  if (check_policy && services.peer_policy->checkPeer(peer) != PeerVerdict::kAllowed) {
    return refuse(metrics::DropReason::kPeerDenied);
  }
  if (const auto refused =
          bandwidthRefusal(allocation, metrics::Direction::kClientToPeer, payload.size(), now)) {
    return refuse(*refused);
  }
  // The permission implies a relayed address of the peer's family (RFC 8656 §10.2).
  const RelayEndpoint* relay = allocation.relayFor(peer.ip);
  if (relay == nullptr || !output.relays.sendToPeer(relay->id, peer, payload)) {
    return refuse(metrics::DropReason::kSendFailed);
  }
  countRelayed(allocation, metrics::Direction::kClientToPeer, payload.size());
  return std::nullopt;
}

}  // namespace tern::core
