// Source keys and their keyed hash; see source_key.hpp.
#include "relay/core/source_key.hpp"

#include <bit>
#include <cstring>

#include "relay/core/peer_policy.hpp"

namespace tern::core {

SourceKey sourceKeyOf(const IpAddress& source) noexcept {
  const IpAddress ip = PeerPolicy::normalize(source);
  SourceKey key;
  std::uint8_t prefix[8] = {};
  std::memcpy(prefix, ip.data(), ip.isV4() ? 4 : 8);
  std::memcpy(&key.prefix, prefix, sizeof prefix);
  key.v6 = ip.isV6();
  return key;
}

std::uint64_t sipHash(std::uint64_t k0, std::uint64_t k1, std::uint64_t m0,
                      std::uint64_t m1) noexcept {
  std::uint64_t v0 = k0 ^ 0x736f6d6570736575ull;
  std::uint64_t v1 = k1 ^ 0x646f72616e646f6dull;
  std::uint64_t v2 = k0 ^ 0x6c7967656e657261ull;
  std::uint64_t v3 = k1 ^ 0x7465646279746573ull;
  auto round = [&] {
    v0 += v1;
    v1 = std::rotl(v1, 13);
    v1 ^= v0;
    v0 = std::rotl(v0, 32);
    v2 += v3;
    v3 = std::rotl(v3, 16);
    v3 ^= v2;
    v0 += v3;
    v3 = std::rotl(v3, 21);
    v3 ^= v0;
    v2 += v1;
    v1 = std::rotl(v1, 17);
    v1 ^= v2;
    v2 = std::rotl(v2, 32);
  };
  // A 16-byte message: two words, then the final block, which holds only the length.
  for (std::uint64_t m : {m0, m1, std::uint64_t{16} << 56}) {
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  }
  v2 ^= 0xff;
  for (int i = 0; i < 4; ++i) round();
  return v0 ^ v1 ^ v2 ^ v3;
}

}  // namespace tern::core
