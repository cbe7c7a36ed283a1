// The unit tern's abuse limits count by (DESIGN.md §4): an IPv4 address, or an IPv6
// address's /64. One host, or one LAN, holds a whole /64 and may pick any address in it, so
// counting IPv6 addresses one by one would give a single machine 2^64 allowances; its /64
// is what an IPv4 NAT's one public address is to the hosts behind it.
#pragma once

#include <cstdint>

#include "relay/core/five_tuple.hpp"

namespace tern::core {

struct SourceKey {
  std::uint64_t prefix = 0;  // the IPv4 address, or the first 64 bits of the IPv6 address
  bool v6 = false;
  friend bool operator==(const SourceKey&, const SourceKey&) noexcept = default;
};

// IPv4-mapped IPv6 addresses count as the IPv4 host they name.
SourceKey sourceKeyOf(const IpAddress& ip) noexcept;

// SipHash-2-4 (Aumasson and Bernstein) of two 64-bit words under the key (k0, k1): a hash an
// attacker cannot steer towards collisions without the key, for tables whose keys come
// from the network.
std::uint64_t sipHash(std::uint64_t k0, std::uint64_t k1, std::uint64_t m0,
                      std::uint64_t m1) noexcept;

}  // namespace tern::core
