// libFuzzer target for the PROXY protocol header parser (HAProxy's doc/proxy-protocol.txt,
// relay/wire/proxy_header.hpp): arbitrary first bytes of a load balancer's connection. A whole
// header lies within the input and the bound, every shorter prefix of it needs more bytes, and
// the header alone parses to the same result; "need more" only below the bound.
#include <cstddef>
#include <cstdint>

#include "fuzz_check.hpp"
#include "relay/wire/proxy_header.hpp"

using namespace tern::wire;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::span<const std::uint8_t> input{data, size};
  const ProxyParse parsed = parseProxyHeader(input);
  if (parsed.status == ProxyParse::Status::kNeedMore) {
    TERN_FUZZ_CHECK(size < kMaxProxyHeader);
    return 0;
  }
  if (parsed.status == ProxyParse::Status::kInvalid) return 0;
  const ProxyHeader& h = parsed.header;
  TERN_FUZZ_CHECK(h.length > 0 && h.length <= size && h.length <= kMaxProxyHeader);
  TERN_FUZZ_CHECK(h.version == 1 || h.version == 2);
  TERN_FUZZ_CHECK(h.source.has_value() == h.destination.has_value());
  if (h.source) TERN_FUZZ_CHECK(h.source->ip.family() == h.destination->ip.family());
  // The bytes after the header are the connection's: they change nothing.
  const ProxyParse alone = parseProxyHeader(input.first(h.length));
  TERN_FUZZ_CHECK(alone.status == ProxyParse::Status::kDone);
  TERN_FUZZ_CHECK(alone.header.length == h.length && alone.header.source == h.source &&
                  alone.header.destination == h.destination);
  // Incremental: one byte less is never a whole header.
  TERN_FUZZ_CHECK(parseProxyHeader(input.first(h.length - 1)).status != ProxyParse::Status::kDone);
  return 0;
}
