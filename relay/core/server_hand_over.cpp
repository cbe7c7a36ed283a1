// Issue 20: the sans-I/O side of an upgrade hand-over. The old process snapshots the
// allocations that move and then forgets them without ending them; the new process restores
// each before its worker reads a socket. The snapshot's encoding is allocation_snapshot.cpp.
#include "relay/core/turn_server.hpp"
#include "relay/wire/checks.hpp"

namespace tern::core {

AllocationSnapshot TurnServer::snapshotOf(const Allocation& allocation, TimePoint now) const {
  AllocationSnapshot s = allocation.snapshot(now);
  s.worker = options_.worker_index;
  return s;
}

void TurnServer::forgetOne(const Allocation& allocation, TimePoint /*now*/) noexcept {
  // Its kernel fast path entries were taken out when the worker froze (uncacheAll).
  if (context_.channel_cache != nullptr) (void)context_.channel_cache->remove(allocation);
  // RFC 6062 connections: this process's copies of their sockets close here (the new process
  // holds the sockets and the connections' state, server_tcp_hand_over.cpp).
  for (ConnectionId id : allocation.connections()) {
    connections_.erase(id);
    output_.peer_connections.closeConnection(id);
  }
  for (const RelayEndpoint& r : allocation.relays()) {
    output_.relays.closeRelay(r.id);
    context_.forgetRename(r.id);
  }
  services_.quota->release(quotaKey(allocation.username()));
  counters_.allocationLeft(counterTransport(allocation.tuple().transport),
                           counterFamily(allocation.relayed().ip));
  allocations_.erase(allocation);
}

bool TurnServer::restoreAllocation(const AllocationSnapshot& snapshot,
                                   std::span<const RelayId> relays, TimePoint now) noexcept {
  // Before an allocation holds them, the adopted sockets are closed here.
  const auto abandon = [&] {
    for (RelayId id : relays) {
      if (id != kLostRelay) output_.relays.closeRelay(id);
    }
    return false;
  };
  if (snapshot.relays.empty() || relays.size() != snapshot.relays.size()) return abandon();
  std::unique_ptr<Allocation> restored;
  try {
    restored = Allocation::restore(snapshot, now);
  } catch (const std::bad_alloc&) {
    checks::outOfMemory("restored allocation");
  }
  // Without the allocation there is nothing to write a usage record from.
  if (!restored) return abandon();
  // RFC 6062 connections come back one by one through restoreConnection, which knows which
  // of them the I/O layer could take over: a listed id without its entry would name nothing.
  restored->clearConnections();
  bool sockets = true;
  for (std::size_t i = 0; i < relays.size(); ++i) {
    restored->setRelayId(i, relays[i]);
    sockets = sockets && relays[i] != kLostRelay;
  }
  // A call that was running is never refused: a lowered limit applies to new Allocates only.
  const AllocationQuota::Admission admission =
      services_.quota->forceAcquire(quotaKey(restored->username()));
  const auto transport = counterTransport(restored->tuple().transport);
  const auto family = counterFamily(restored->relayed().ip);
  // Only out of memory refuses a forced acquire; the quota holds nothing for it then.
  if (admission.grant != AllocationQuota::Grant::kGranted) return abandon();
  restored->setUserBandwidth(admission.user);
  counters_.allocationArrived(transport, family);
  if (!sockets || allocations_.find(restored->tuple()) != nullptr) {
    // Ends as any allocation does, with its usage record (what the old process relayed too).
    context_.releaseAllocation(*restored, metrics::AllocationEnd::kDeleted, now);
    return false;
  }
  try {
    (void)allocations_.insert(std::move(restored));
  } catch (const std::bad_alloc&) {
    // insert() destroyed it: no usage record can be written, the rest is undone.
    checks::outOfMemory("restored allocation");
    (void)abandon();
    services_.quota->release(quotaKey(snapshot.username));
    counters_.allocationLeft(transport, family);
    return false;
  }
  try {
    for (std::size_t i = 0; i < relays.size(); ++i) {
      const std::uint64_t key = ServerContext::renameKey(snapshot.worker, snapshot.relays[i].id);
      context_.renamed_relays[key] = relays[i];
      context_.renamed_from[relays[i]] = key;
    }
  } catch (const std::bad_alloc&) {
    checks::outOfMemory("mobility ticket rename");  // only the old process's tickets stop working
  }
  return true;
}

Allocation* TurnServer::restoredFrom(std::uint8_t worker, RelayId relay) noexcept {
  const auto it = context_.renamed_relays.find(ServerContext::renameKey(worker, relay));
  return it == context_.renamed_relays.end() ? nullptr : allocations_.findByRelay(it->second);
}

const Allocation* TurnServer::updateRestored(const AllocationSnapshot& snapshot,
                                             TimePoint now) noexcept {
  if (snapshot.relays.empty()) return nullptr;
  Allocation* current = restoredFrom(snapshot.worker, snapshot.relays.front().id);
  if (current == nullptr || current->relays().size() != snapshot.relays.size()) return nullptr;
  std::unique_ptr<Allocation> fresh;
  try {
    fresh = Allocation::restore(snapshot, now);
  } catch (const std::bad_alloc&) {
    checks::outOfMemory("updated allocation");
  }
  if (!fresh) return nullptr;
  const FiveTuple moved_to = fresh->tuple();
  if (moved_to != current->tuple() && allocations_.find(moved_to) != nullptr) return nullptr;
  fresh->clearConnections();  // as in restoreAllocation
  for (std::size_t i = 0; i < current->relays().size(); ++i)
    fresh->setRelayId(i, current->relays()[i].id);
  fresh->setUserBandwidth(current->userBandwidth());
  // In place, so the table's entries (5-tuple, relay ids, expiry slot) stay this object's.
  const FiveTuple tuple = current->tuple();
  const std::size_t slot = current->expirySlot();
  *current = std::move(*fresh);
  current->setTuple(tuple);
  current->setExpirySlot(slot);
  if (moved_to != tuple) (void)allocations_.rekey(*current, moved_to);  // checked free above
  allocations_.scheduleExpiry(*current);
  return current;
}

bool TurnServer::dropRestored(std::uint8_t worker, RelayId relay, TimePoint now) noexcept {
  const Allocation* a = restoredFrom(worker, relay);
  if (a == nullptr) return false;
  forgetOne(*a, now);
  return true;
}

}  // namespace tern::core
