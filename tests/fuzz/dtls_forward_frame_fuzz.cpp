// libFuzzer target for the frames that carry DTLS datagrams between the new and the old
// process of an upgrade (relay/io/dtls_forwarding.hpp, issue 20): any bytes decode to a frame
// or are refused, never a crash; a frame accepted re-encodes to exactly its bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "fuzz_check.hpp"
#include "relay/io/dtls_forwarding.hpp"

using namespace tern;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const wire::Bytes in{data, size};
  const auto frame = io::decodeForwardFrame(in);
  if (!frame) return 0;
  std::array<std::uint8_t, io::kMaxForwardHeader> head{};
  const std::size_t n = io::encodeForwardHeader(frame->header, head);
  TERN_FUZZ_CHECK(n + frame->payload.size() == size);
  TERN_FUZZ_CHECK(std::equal(head.begin(), head.begin() + static_cast<std::ptrdiff_t>(n), data));
  TERN_FUZZ_CHECK(frame->payload.data() == data + n);
  TERN_FUZZ_CHECK((frame->header.kind == io::ForwardKind::kForget) == frame->payload.empty());
  return 0;
}
