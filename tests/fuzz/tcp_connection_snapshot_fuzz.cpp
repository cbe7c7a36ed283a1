// libFuzzer target for the upgrade hand-over's record of an RFC 6062 connection (issue 20):
// decodes records from the front of arbitrary bytes until one is refused. Every record
// accepted names a plain TCP control connection and a non-zero CONNECTION-ID, and re-encodes
// to exactly the bytes it was read from (one encoding per record).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "fuzz_check.hpp"
#include "relay/core/allocation_snapshot.hpp"

using namespace tern;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  wire::Bytes in{data, size};
  while (!in.empty()) {
    const wire::Bytes before = in;
    auto decoded = core::decodeTcpConnection(in);
    if (!decoded) {
      // A refused record consumes nothing, and says why.
      TERN_FUZZ_CHECK(in.data() == before.data() && in.size() == before.size());
      TERN_FUZZ_CHECK(!decoded.error().empty());
      return 0;
    }
    const std::size_t consumed = before.size() - in.size();
    TERN_FUZZ_CHECK(consumed >= 5 && in.data() == before.data() + consumed);
    TERN_FUZZ_CHECK(decoded->id != 0);
    TERN_FUZZ_CHECK(decoded->control.transport == core::Transport::kTcp);
    TERN_FUZZ_CHECK(decoded->deadline_in_ns >= -core::kMaxSnapshotNs &&
                    decoded->deadline_in_ns <= core::kMaxSnapshotNs);
    std::vector<std::uint8_t> again;
    core::encodeTcpConnection(*decoded, again);
    TERN_FUZZ_CHECK(again.size() == consumed);
    TERN_FUZZ_CHECK(std::equal(again.begin(), again.end(), before.begin()));
  }
  return 0;
}
