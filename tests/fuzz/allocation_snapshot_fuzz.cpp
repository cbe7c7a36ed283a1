// libFuzzer target for the upgrade hand-over's allocation snapshot (issue 20): decodes records
// from the front of arbitrary bytes until one is refused. Every record accepted re-encodes to
// exactly the bytes it was read from (one encoding per snapshot), and survives Allocation's
// restore and snapshot on another clock unchanged.
#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_check.hpp"
#include "relay/core/allocation_snapshot.hpp"

using namespace tern;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  wire::Bytes in{data, size};
  // A new process's clock: any value far enough from the ends of its range.
  const core::TimePoint now{std::chrono::hours(24 * 365)};
  while (!in.empty()) {
    const wire::Bytes before = in;
    auto decoded = core::decodeSnapshot(in);
    if (!decoded) {
      // A refused record consumes nothing, and says why.
      TERN_FUZZ_CHECK(in.data() == before.data() && in.size() == before.size());
      TERN_FUZZ_CHECK(!decoded.error().empty());
      return 0;
    }
    const std::size_t consumed = before.size() - in.size();
    TERN_FUZZ_CHECK(consumed >= 5 && in.data() == before.data() + consumed);
    const core::AllocationSnapshot& s = *decoded;
    TERN_FUZZ_CHECK(s.relays.size() == 1 || s.relays.size() == 2);
    TERN_FUZZ_CHECK(s.key.size() <= core::kMaxSnapshotText &&
                    s.username.size() <= core::kMaxSnapshotText);
    TERN_FUZZ_CHECK(s.permissions.size() <= core::kMaxSnapshotEntries);

    std::vector<std::uint8_t> again;
    core::encodeSnapshot(s, again);
    TERN_FUZZ_CHECK(again.size() == consumed);
    TERN_FUZZ_CHECK(std::equal(again.begin(), again.end(), before.begin()));

    // Restored and taken again (its worker is the server's to set), the same bytes.
    const auto allocation = core::Allocation::restore(s, now);
    TERN_FUZZ_CHECK(allocation != nullptr);
    TERN_FUZZ_CHECK(allocation->relays().size() == s.relays.size());
    core::AllocationSnapshot round = allocation->snapshot(now);
    round.worker = s.worker;
    std::vector<std::uint8_t> restored;
    core::encodeSnapshot(round, restored);
    TERN_FUZZ_CHECK(restored == again);
  }
  return 0;
}
