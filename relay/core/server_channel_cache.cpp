// TurnServer and the kernel fast path's channel cache (issue 21, turn_server.hpp): the core
// decides, the cache mirrors; these keep the mirror whole across a worker's life.
#include "relay/core/turn_server.hpp"

namespace tern::core {

void TurnServer::setChannelCache(ChannelCache* cache, TimePoint now) noexcept {
  if (context_.channel_cache != nullptr) uncacheAll();
  context_.channel_cache = cache;
  recacheAll(now);
}

void TurnServer::recacheAll(TimePoint now) noexcept {
  if (context_.channel_cache == nullptr) return;
  allocations_.forEachMutable([&](Allocation& a) { context_.cacheAllocation(a, now, true); });
}

void TurnServer::uncacheAll() noexcept {
  allocations_.forEachMutable([&](Allocation& a) { context_.uncacheAllocation(a); });
}

void TurnServer::creditUsage(const Allocation& allocation,
                             const AllocationUsage& relayed) noexcept {
  // The cache names the allocation it knows; the table's is the same object while it lives.
  Allocation* a = allocations_.find(allocation.tuple());
  if (a == &allocation) a->usage() += relayed;
}

}  // namespace tern::core
