// See allocation_table.hpp.
#include "relay/core/allocation_table.hpp"

#include <algorithm>
#include <utility>

#include "relay/wire/checks.hpp"

namespace tern::core {

std::size_t FiveTupleHash::operator()(const FiveTuple& t) const noexcept {
  return (wire::hashOf(t.client) * 31 + wire::hashOf(t.server)) * 31 + static_cast<std::size_t>(t.transport);
}

Allocation* AllocationTable::find(const FiveTuple& tuple) noexcept {
  auto it = by_tuple_.find(tuple);
  return it == by_tuple_.end() ? nullptr : it->second.get();
}

Allocation* AllocationTable::findByRelay(RelayId relay) noexcept {
  auto it = by_relay_.find(relay);
  return it == by_relay_.end() ? nullptr : it->second;
}

Allocation& AllocationTable::insert(std::unique_ptr<Allocation> allocation) {
  Allocation& a = *allocation;
  // Whatever may throw std::bad_alloc comes before a change that stays, so a refused insert
  // leaves the table as it was (relay/wire/checks.hpp: the Allocate is refused, not the node).
  // Room for one more, grown geometrically (reserve(size + 1) would copy the queue every time).
  if (due_.size() == due_.capacity()) due_.reserve(std::max<std::size_t>(64, 2 * due_.capacity()));
  auto [entry, added] = by_tuple_.try_emplace(a.tuple());
  TERN_BUG_IF(!added, "an allocation was inserted on a 5-tuple that already has one");
  try {
    for (const RelayEndpoint& r : a.relays()) by_relay_[r.id] = &a;
  } catch (...) {
    for (const RelayEndpoint& r : a.relays()) by_relay_.erase(r.id);
    if (added) by_tuple_.erase(entry);
    throw;
  }
  entry->second = std::move(allocation);
  enqueue(a);  // cannot throw: the room was reserved
  return a;
}

void AllocationTable::erase(const Allocation& allocation) {
  const FiveTuple key = allocation.tuple();  // a copy: erasing destroys `allocation`
  for (const RelayEndpoint& r : allocation.relays()) by_relay_.erase(r.id);
  dequeue(allocation);
  by_tuple_.erase(key);
}

bool AllocationTable::rekey(Allocation& allocation, const FiveTuple& tuple) {
  if (by_tuple_.contains(tuple)) return false;
  auto node = by_tuple_.extract(allocation.tuple());
  allocation.setTuple(tuple);
  node.key() = tuple;
  by_tuple_.insert(std::move(node));
  // The queue holds the allocation itself, not its 5-tuple: its entry stays good.
  return true;
}

std::unique_ptr<Allocation> AllocationTable::detach(const Allocation& allocation) {
  for (const RelayEndpoint& r : allocation.relays()) by_relay_.erase(r.id);
  dequeue(allocation);
  auto node = by_tuple_.extract(allocation.tuple());
  return node.empty() ? nullptr : std::move(node.mapped());
}

void AllocationTable::addRelay(Allocation& allocation, const RelayEndpoint& endpoint) {
  allocation.addRelay(endpoint);
  by_relay_[endpoint.id] = &allocation;
}

void AllocationTable::removeRelay(Allocation& allocation, wire::AddressFamily family) {
  for (const RelayEndpoint& r : allocation.relays()) {
    if (r.relayed.ip.family() == family) by_relay_.erase(r.id);
  }
  allocation.removeRelay(family);
}

void AllocationTable::scheduleExpiry(Allocation& allocation) noexcept {
  const std::size_t slot = allocation.expirySlot();
  TERN_BUG_IF(slot != Allocation::kNotQueued && (slot >= due_.size() || due_[slot] != &allocation),
              "an allocation's expiry slot is out of step with the expiry queue");
  if (slot >= due_.size() || due_[slot] != &allocation) return;  // not in this table's queue
  // One of the two moves is a no-op: the new time is either earlier or later.
  siftUp(slot);
  siftDown(allocation.expirySlot());
}

void AllocationTable::enqueue(Allocation& allocation) {
  due_.push_back(&allocation);
  allocation.setExpirySlot(due_.size() - 1);
  siftUp(due_.size() - 1);
}

void AllocationTable::dequeue(const Allocation& allocation) noexcept {
  const std::size_t slot = allocation.expirySlot();
  if (slot >= due_.size() || due_[slot] != &allocation) return;
  Allocation* removed = due_[slot];  // the queue's own, non-const pointer to `allocation`
  Allocation* last = due_.back();
  due_.pop_back();
  removed->setExpirySlot(Allocation::kNotQueued);
  if (last == removed) return;
  // The last entry fills the hole and moves whichever way its time says.
  place(slot, last);
  siftUp(slot);
  siftDown(last->expirySlot());
}

void AllocationTable::place(std::size_t slot, Allocation* allocation) noexcept {
  due_[slot] = allocation;
  allocation->setExpirySlot(slot);
}

void AllocationTable::siftUp(std::size_t slot) noexcept {
  Allocation* moving = due_[slot];
  while (slot > 0) {
    const std::size_t parent = (slot - 1) / 2;
    if (!(moving->expires() < due_[parent]->expires())) break;
    place(slot, due_[parent]);
    slot = parent;
  }
  place(slot, moving);
}

void AllocationTable::siftDown(std::size_t slot) noexcept {
  Allocation* moving = due_[slot];
  const std::size_t n = due_.size();
  while (true) {
    std::size_t child = 2 * slot + 1;
    if (child >= n) break;
    if (child + 1 < n && due_[child + 1]->expires() < due_[child]->expires()) ++child;
    if (!(due_[child]->expires() < moving->expires())) break;
    place(slot, due_[child]);
    slot = child;
  }
  place(slot, moving);
}

}  // namespace tern::core
