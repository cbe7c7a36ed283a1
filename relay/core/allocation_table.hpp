// A worker's allocations, found by client 5-tuple (client packets) and by relay socket (peer
// packets), with one expiry queue driven by the worker's tick (../shared/DESIGN.md §3): no
// timer per allocation.
#pragma once

#include <memory>
#include <queue>
#include <unordered_map>
#include <vector>

#include "relay/core/allocation.hpp"

namespace tern::core {

struct FiveTupleHash {
  std::size_t operator()(const FiveTuple& t) const noexcept;
};

class AllocationTable {
 public:
  Allocation* find(const FiveTuple& tuple) noexcept;
  Allocation* findByRelay(RelayId relay) noexcept;
  Allocation& insert(std::unique_ptr<Allocation> allocation);
  // Adds or drops one relayed address of a dual allocation (RFC 8656 §7.2, §8), keeping the
  // relay index true.
  void addRelay(Allocation& allocation, const RelayEndpoint& endpoint);
  void removeRelay(Allocation& allocation, wire::AddressFamily family);
  // RFC 8016: the allocation answers to `tuple` from now on. False (and nothing changes) if
  // another allocation has that 5-tuple.
  bool rekey(Allocation& allocation, const FiveTuple& tuple);
  // Takes the allocation out of the table without destroying it: a hand-over to another
  // worker. Its relay ids are forgotten here; the caller keeps its sockets open.
  std::unique_ptr<Allocation> detach(const Allocation& allocation);
  // Removes and destroys the allocation; the caller has released its relay socket and quota.
  void erase(const Allocation& allocation);
  // Queues an expiry check at the allocation's current expiry time. Refreshing simply queues
  // again; stale entries are skipped when they come due, and dropped all at once when they
  // outnumber the live allocations (deleted allocations would otherwise keep theirs for a
  // whole lifetime: memory that grows with churn, not with load).
  void scheduleExpiry(const Allocation& allocation);
  // Calls `expired(Allocation&)` for every allocation whose time has come, in expiry order.
  // The callback must erase the allocation.
  template <class F>
  void expire(TimePoint now, F&& expired);
  std::size_t size() const noexcept { return by_tuple_.size(); }
  // Calls `f(const Allocation&)` for every allocation (the tick's recount of permissions).
  template <class F>
  void forEach(F&& f) const {
    for (const auto& [tuple, a] : by_tuple_) f(*a);
  }
  // The same with a mutable allocation; `f` must not add or erase allocations.
  template <class F>
  void forEachMutable(F&& f) {
    for (auto& [tuple, a] : by_tuple_) f(*a);
  }
  // Entries in the expiry queue, stale ones included (bounded by twice the live count plus a
  // little).
  std::size_t scheduledExpiries() const noexcept { return due_.size(); }

 private:
  struct Due {
    TimePoint when;
    FiveTuple tuple;
    bool operator>(const Due& o) const noexcept { return when > o.when; }
  };
  std::unordered_map<FiveTuple, std::unique_ptr<Allocation>, FiveTupleHash> by_tuple_;
  std::unordered_map<RelayId, Allocation*> by_relay_;
  void dropStaleEntries();

  std::priority_queue<Due, std::vector<Due>, std::greater<>> due_;
};

template <class F>
void AllocationTable::expire(TimePoint now, F&& expired) {
  while (!due_.empty() && due_.top().when <= now) {
    const FiveTuple tuple = due_.top().tuple;
    due_.pop();
    Allocation* a = find(tuple);
    // Gone already, refreshed to a later time, or a newer allocation on the same 5-tuple.
    if (a == nullptr || !a->expired(now)) continue;
    expired(*a);
  }
}

}  // namespace tern::core
