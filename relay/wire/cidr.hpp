// CIDR address ranges ("10.0.0.0/8", "2001:db8::/32"; RFC 4632 §3.1, RFC 4291 §2.3) for the
// peer policy's default, --allow-peer and --deny-peer lists. Sans-I/O, allocation-free lookups.
// Address text like address.hpp, so in wire: config validates the lists without linking core.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "relay/wire/address.hpp"

namespace tern::wire {

struct Cidr {
  IpAddress network;  // host bits zeroed
  std::uint8_t prefix = 0;  // 0-32 for IPv4, 0-128 for IPv6

  // The range of `prefix` leading bits of `ip`, with the host bits of `ip` cleared; nullopt if
  // the prefix is longer than the address.
  static std::optional<Cidr> of(const IpAddress& ip, std::uint8_t prefix) noexcept;

  // "ADDRESS/PREFIX" or a bare ADDRESS (= /32 or /128). ADDRESS is what IpAddress::parse
  // accepts (so IPv6 is written without brackets); PREFIX is decimal without a sign or leading
  // zeros ("/08" is rejected, like "010" in a dotted quad) and at most 32 or 128. Host bits set
  // in ADDRESS are accepted and cleared: "10.1.2.3/8" is 10.0.0.0/8, as Linux `ip route` and
  // Python's ipaddress(strict=False) read it; describe() shows the range that is actually used.
  static std::optional<Cidr> parse(std::string_view text) noexcept;

  // True if `ip` is inside the range. Families never match each other: an IPv4-mapped IPv6
  // address is not inside an IPv4 range (PeerPolicy::normalize converts it first).
  bool contains(const IpAddress& ip) const noexcept;

  // "10.0.0.0/8", "2001:db8::/32" (RFC 5952 text for the network).
  std::string describe() const;

  friend bool operator==(const Cidr&, const Cidr&) noexcept = default;
};

}  // namespace tern::wire
