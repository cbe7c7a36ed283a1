// TurnServer's operator calls (turn_server.hpp): what the admin API and revocations end.
#include <vector>

#include "relay/core/turn_server.hpp"

namespace tern::core {

std::size_t TurnServer::endAllocations(const AllocationMatch& match, metrics::AllocationEnd why,
                                       TimePoint now) {
  if (!match.any()) return 0;
  // Listed first, ended after: ending erases from the table being walked.
  std::vector<FiveTuple> named;
  allocations_.forEach([&](const Allocation& a) {
    if (match.matches(a)) named.push_back(a.tuple());
  });
  std::size_t ended = 0;
  for (const FiveTuple& tuple : named) {
    Allocation* a = allocations_.find(tuple);
    if (a == nullptr) continue;
    context_.endAllocation(*a, why, now);
    ++ended;
  }
  return ended;
}

}  // namespace tern::core
