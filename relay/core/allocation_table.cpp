// See allocation_table.hpp.
#include "relay/core/allocation_table.hpp"

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
  for (const RelayEndpoint& r : a.relays()) by_relay_[r.id] = &a;
  by_tuple_[a.tuple()] = std::move(allocation);
  scheduleExpiry(a);
  return a;
}

void AllocationTable::erase(const Allocation& allocation) {
  const FiveTuple key = allocation.tuple();  // a copy: erasing destroys `allocation`
  for (const RelayEndpoint& r : allocation.relays()) by_relay_.erase(r.id);
  by_tuple_.erase(key);
  dropStaleEntries();
}

bool AllocationTable::rekey(Allocation& allocation, const FiveTuple& tuple) {
  if (by_tuple_.contains(tuple)) return false;
  auto node = by_tuple_.extract(allocation.tuple());
  allocation.setTuple(tuple);
  node.key() = tuple;
  by_tuple_.insert(std::move(node));
  // The old tuple's queue entry finds nothing when it comes due; the new one takes over.
  scheduleExpiry(allocation);
  return true;
}

std::unique_ptr<Allocation> AllocationTable::detach(const Allocation& allocation) {
  for (const RelayEndpoint& r : allocation.relays()) by_relay_.erase(r.id);
  auto node = by_tuple_.extract(allocation.tuple());
  dropStaleEntries();
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

void AllocationTable::dropStaleEntries() {
  // Amortised O(1): a rebuild costs O(live) and happens only after that many stale entries.
  constexpr std::size_t kSlack = 64;
  if (due_.size() <= 2 * by_tuple_.size() + kSlack) return;
  std::vector<Due> live;
  live.reserve(by_tuple_.size());
  for (const auto& [tuple, allocation] : by_tuple_) live.push_back({allocation->expires(), tuple});
  due_ = decltype(due_)(std::greater<>{}, std::move(live));
}

void AllocationTable::scheduleExpiry(const Allocation& allocation) {
  due_.push({allocation.expires(), allocation.tuple()});
}

}  // namespace tern::core
