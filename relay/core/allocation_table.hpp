// A worker's allocations, found by client 5-tuple (client packets) and by relay socket (peer
// packets), with one expiry queue driven by the worker's tick (../shared/DESIGN.md §3): no
// timer per allocation.
#pragma once

#include <memory>
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
  // Throws std::bad_alloc with the table unchanged.
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
  // Moves the allocation's one entry in the expiry queue to its current expiry time, after
  // Allocation::setExpiry: later or earlier, in O(log n) and without a second entry. A queue
  // that took a new entry per Refresh grew with the requests, not the allocations (issue 18:
  // a million replays of one signed Refresh held 58 MB until their entries came due).
  void scheduleExpiry(Allocation& allocation) noexcept;
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
  // Entries in the expiry queue: exactly one per allocation, whatever the requests.
  std::size_t scheduledExpiries() const noexcept { return due_.size(); }

 private:
  // The expiry queue is a binary min-heap on Allocation::expires(), each allocation knowing
  // its slot (an indexed heap), so a Refresh updates its entry in place.
  void enqueue(Allocation& allocation);
  void dequeue(const Allocation& allocation) noexcept;
  void place(std::size_t slot, Allocation* allocation) noexcept;
  void siftUp(std::size_t slot) noexcept;
  void siftDown(std::size_t slot) noexcept;

  std::unordered_map<FiveTuple, std::unique_ptr<Allocation>, FiveTupleHash> by_tuple_;
  std::unordered_map<RelayId, Allocation*> by_relay_;
  std::vector<Allocation*> due_;
};

template <class F>
void AllocationTable::expire(TimePoint now, F&& expired) {
  while (!due_.empty() && due_.front()->expired(now)) {
    Allocation& a = *due_.front();
    // Out of the queue before the callback, which erases it (and may not touch the queue
    // again for it).
    dequeue(a);
    expired(a);
  }
}

}  // namespace tern::core
