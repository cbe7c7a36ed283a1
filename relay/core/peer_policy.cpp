// The peer policy: normalisation of embedded IPv4, the built-in deny list (IANA IPv4 and IPv6
// Special-Purpose Address Registries, RFC 6890 and successors), operator ranges and the relay's
// own addresses. Every check is allocation-free; only construction allocates.
#include "relay/core/peer_policy.hpp"

#include <algorithm>
#include <array>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <utility>

namespace tern::core {

namespace {

struct RangeText {
  std::string_view cidr;
  std::string_view reason;
};

// Ranges no client may reach unless the operator allows them (--allow-peer). The first match
// names the reason, so narrow ranges come before the wide ones that hold them.
constexpr std::array kDefaultDenyText = {
    // IPv4 (IANA IPv4 Special-Purpose Address Registry).
    // 0.0.0.0 itself is kUnspecified before this table is consulted (CVE-2020-26262).
    RangeText{"0.0.0.0/8", "this network (RFC 791, RFC 1122 §3.2.1.3)"},
    RangeText{"10.0.0.0/8", "private-use (RFC 1918)"},
    RangeText{"100.64.0.0/10", "shared address space, CGNAT (RFC 6598)"},
    RangeText{"127.0.0.0/8", "loopback (RFC 1122 §3.2.1.3)"},
    RangeText{"169.254.0.0/16", "link-local (RFC 3927)"},  // 169.254.169.254: cloud metadata
    RangeText{"172.16.0.0/12", "private-use (RFC 1918)"},
    RangeText{"192.0.0.0/24", "IETF protocol assignments (RFC 6890 §2.2.2)"},
    RangeText{"192.0.2.0/24", "documentation TEST-NET-1 (RFC 5737)"},
    RangeText{"192.88.99.0/24", "6to4 relay anycast (RFC 3068, deprecated by RFC 7526)"},
    RangeText{"192.168.0.0/16", "private-use (RFC 1918)"},
    RangeText{"198.18.0.0/15", "benchmarking (RFC 2544)"},
    RangeText{"198.51.100.0/24", "documentation TEST-NET-2 (RFC 5737)"},
    RangeText{"203.0.113.0/24", "documentation TEST-NET-3 (RFC 5737)"},
    RangeText{"224.0.0.0/4", "multicast (RFC 5771)"},
    RangeText{"255.255.255.255/32", "limited broadcast (RFC 919, RFC 8190)"},  // before 240/4
    RangeText{"240.0.0.0/4", "reserved (RFC 1112 §4)"},

    // IPv6 (IANA IPv6 Special-Purpose Address Registry). :: and ::1 are named for the
    // reason; IPv4-compatible ::a.b.c.d never gets here, PeerPolicy::normalize turns it into IPv4.
    RangeText{"::/128", "unspecified (RFC 4291 §2.5.2)"},
    RangeText{"::1/128", "loopback (RFC 4291 §2.5.3)"},
    // Only reachable if normalisation was skipped: normalize turns these into IPv4.
    RangeText{"::ffff:0.0.0.0/96", "IPv4-mapped (RFC 4291 §2.5.5.2)"},
    // RFC 2765 §2.1 SIIT form ::ffff:0:a.b.c.d, which a stateless translator maps to IPv4.
    RangeText{"::ffff:0:0:0/96", "IPv4-translated (RFC 2765 §2.1)"},
    // NAT64 embeds an IPv4 address: 64:ff9b::a00:1 is 10.0.0.1 behind a translator.
    RangeText{"64:ff9b::/96", "NAT64 well-known prefix (RFC 6052)"},
    RangeText{"64:ff9b:1::/48", "NAT64 local-use prefix (RFC 8215)"},
    RangeText{"100::/64", "discard-only (RFC 6666)"},
    RangeText{"2001::/32", "Teredo (RFC 4380)"},  // embeds an IPv4 server and client address
    RangeText{"2001:2::/48", "benchmarking (RFC 5180)"},
    RangeText{"2001:10::/28", "ORCHID, deprecated (RFC 4843)"},
    RangeText{"2001:20::/28", "ORCHIDv2 (RFC 7343)"},
    RangeText{"2001:db8::/32", "documentation (RFC 3849)"},
    // 6to4 embeds an IPv4 address: 2002:a00:1:: reaches 10.0.0.1 through a 6to4 gateway.
    RangeText{"2002::/16", "6to4 (RFC 3056, deprecated by RFC 7526)"},
    RangeText{"3fff::/20", "documentation (RFC 9637)"},
    RangeText{"5f00::/16", "SRv6 segment identifiers (RFC 9602)"},
    RangeText{"fc00::/7", "unique local (RFC 4193)"},
    RangeText{"fe80::/10", "link-local (RFC 4291 §2.5.6)"},
    RangeText{"fec0::/10", "site-local, deprecated (RFC 3879)"},
    RangeText{"ff00::/8", "multicast (RFC 4291 §2.7)"},
    // Fail closed: IANA allocates global unicast only from 2000::/3 (RFC 3587 §3, IANA IPv6
    // Address Space registry), so everything outside it is special-purpose or unassigned. These
    // three ranges are its complement; they also catch blocks reserved after this table.
    RangeText{"::/3", "outside global unicast 2000::/3 (RFC 3587 §3)"},
    RangeText{"4000::/2", "outside global unicast 2000::/3 (RFC 3587 §3)"},
    RangeText{"8000::/1", "outside global unicast 2000::/3 (RFC 3587 §3)"},
};

using DefaultDenyList = std::array<ReservedRange, kDefaultDenyText.size()>;

DefaultDenyList parseDefaultDenyList() noexcept {
  DefaultDenyList out{};
  for (std::size_t i = 0; i < kDefaultDenyText.size(); ++i) {
    const auto range = Cidr::parse(kDefaultDenyText[i].cidr);
    // A typo in the table above would silently open a range, so fail closed and loudly at
    // start-up (PeerPolicy's constructor parses it); the unit tests read the table back.
    if (!range || range->describe() != kDefaultDenyText[i].cidr) std::abort();
    out[i] = ReservedRange{*range, kDefaultDenyText[i].reason};
  }
  return out;
}

bool isV4Mapped(const std::uint8_t* b) noexcept {
  // RFC 4291 §2.5.5.2: 80 zero bits, 16 one bits, then the IPv4 address.
  return std::all_of(b, b + 10, [](std::uint8_t x) { return x == 0; }) && b[10] == 0xFF &&
         b[11] == 0xFF;
}

bool isV4Compatible(const std::uint8_t* b) noexcept {
  // RFC 4291 §2.5.5.1: 96 zero bits, then the IPv4 address; :: and ::1 are not such addresses.
  if (!std::all_of(b, b + 12, [](std::uint8_t x) { return x == 0; })) return false;
  return b[12] != 0 || b[13] != 0 || b[14] != 0 || b[15] > 1;
}

wire::IpAddress embeddedV4(const std::uint8_t* b) noexcept {
  return wire::IpAddress::v4(std::array<std::uint8_t, 4>{b[12], b[13], b[14], b[15]});
}

}  // namespace

std::string_view describe(PeerVerdict verdict) noexcept {
  switch (verdict) {
    case PeerVerdict::kAllowed:
      return "allowed";
    case PeerVerdict::kDeniedByDefault:
      return "denied: private or reserved address";
    case PeerVerdict::kDeniedByOperator:
      return "denied: blocked by server policy";
    case PeerVerdict::kOwnAddress:
      return "denied: relay's own address, not a relayed address";
    case PeerVerdict::kUnspecified:
      return "denied: unspecified address";
  }
  return "denied: unknown reason";
}

PeerPolicy::PeerPolicy(PeerPolicyOptions options) : options_(std::move(options)) {
  for (auto& e : options_.external_ips) {
    e.public_ip = normalize(e.public_ip);
    if (e.private_ip) e.private_ip = normalize(*e.private_ip);
  }
  for (auto& range : options_.allow) range = normalize(range);
  for (auto& range : options_.deny) range = normalize(range);
  auto& own = options_.own_addresses;
  // The relay IPs and the addresses that stand for them are always own addresses.
  if (options_.live_relays) own.insert(own.end(), options_.live_relays->relayIps().begin(), options_.live_relays->relayIps().end());
  for (const auto& e : options_.external_ips) own.push_back(e.public_ip);
  for (auto& ip : own) ip = normalize(ip);
  // A wildcard listen address is no peer (and is always kUnspecified anyway).
  std::erase_if(own, [](const wire::IpAddress& ip) { return ip.isUnspecified(); });
  std::sort(own.begin(), own.end());
  own.erase(std::unique(own.begin(), own.end()), own.end());
  // Parse the built-in table now, at start-up, rather than on the first packet.
  (void)defaultDenyList();
}

wire::IpAddress PeerPolicy::normalize(const wire::IpAddress& ip) noexcept {
  if (!ip.isV6()) return ip;
  const std::uint8_t* b = ip.data();
  if (isV4Mapped(b) || isV4Compatible(b)) return embeddedV4(b);
  return ip;
}

Cidr PeerPolicy::normalize(const Cidr& range) noexcept {
  if (!range.network.isV6() || range.prefix < 96) return range;
  const std::uint8_t* b = range.network.data();
  const auto v4_prefix = static_cast<std::uint8_t>(range.prefix - 96);
  if (isV4Mapped(b)) return Cidr{embeddedV4(b), v4_prefix};
  // Compatible ranges convert only if they hold neither :: nor ::1, which stay IPv6.
  const bool all_zero_head = std::all_of(b, b + 12, [](std::uint8_t x) { return x == 0; });
  if (all_zero_head && !range.contains(wire::IpAddress::v6({})) &&
      !range.contains(wire::IpAddress::v6({0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}))) {
    return Cidr{embeddedV4(b), v4_prefix};
  }
  return range;
}

bool PeerPolicy::anyContains(const std::vector<Cidr>& ranges, const wire::IpAddress& ip) noexcept {
  return std::any_of(ranges.begin(), ranges.end(), [&](const Cidr& r) { return r.contains(ip); });
}

std::span<const ReservedRange> PeerPolicy::defaultDenyList() noexcept {
  static const DefaultDenyList list = parseDefaultDenyList();
  return list;
}

const ReservedRange* PeerPolicy::findDefaultDeny(const wire::IpAddress& normalised_ip) noexcept {
  for (const ReservedRange& entry : defaultDenyList()) {
    if (entry.range.contains(normalised_ip)) return &entry;
  }
  return nullptr;
}

bool PeerPolicy::isOwnAddress(const wire::IpAddress& ip) const noexcept { return isOwnNormalised(normalize(ip)); }

bool PeerPolicy::standsForRelay(const wire::IpAddress& ip) const noexcept {
  if (options_.live_relays == nullptr) return false;
  const auto& relays = options_.live_relays->relayIps();
  if (std::find(relays.begin(), relays.end(), ip) != relays.end()) return true;
  return std::any_of(options_.external_ips.begin(), options_.external_ips.end(),
                     [&](const ExternalIp& e) { return e.public_ip == ip; });
}

bool PeerPolicy::isLiveRelay(const wire::SocketAddress& peer, RelayProtocol protocol) const noexcept {
  const LiveRelayPorts* live = options_.live_relays.get();
  if (live == nullptr) return false;
  if (live->isOpen(protocol, peer.ip, peer.port)) return true;
  // An advertised public address (--external-ip) stands for its private relay IP, or for every
  // relay IP of its family: the relay socket behind it is what must be open.
  for (const ExternalIp& e : options_.external_ips) {
    if (e.public_ip != peer.ip) continue;
    if (e.private_ip) {
      if (live->isOpen(protocol, *e.private_ip, peer.port)) return true;
      continue;
    }
    for (const auto& relay_ip : live->relayIps()) {
      if (relay_ip.family() == peer.ip.family() && live->isOpen(protocol, relay_ip, peer.port)) return true;
    }
  }
  return false;
}

bool PeerPolicy::isOwnNormalised(const wire::IpAddress& ip) const noexcept {
  return std::binary_search(options_.own_addresses.begin(), options_.own_addresses.end(), ip);
}

PeerVerdict PeerPolicy::checkNormalisedIp(const wire::IpAddress& ip, bool own) const noexcept {
  // CVE-2020-26262: the kernel delivers 0.0.0.0 and :: to the local host. No allow range opens
  // them, not even 0.0.0.0/0.
  if (ip.isUnspecified()) return PeerVerdict::kUnspecified;
  if (anyContains(options_.deny, ip)) return PeerVerdict::kDeniedByOperator;
  if (!anyContains(options_.allow, ip) && findDefaultDeny(ip) != nullptr) return PeerVerdict::kDeniedByDefault;
  // Being one of the host's own addresses only narrows what the lists above allow: a host's
  // traffic to itself passes no firewall, so only relay IPs (relay to relay on one server, the
  // common WebRTC case; checkPeer limits the ports) are peers there.
  if (own && !options_.allow_own_address_peers && !standsForRelay(ip)) return PeerVerdict::kOwnAddress;
  return PeerVerdict::kAllowed;
}

PeerVerdict PeerPolicy::checkPeerIp(const wire::IpAddress& raw_ip) const noexcept {
  const wire::IpAddress ip = normalize(raw_ip);
  return checkNormalisedIp(ip, isOwnNormalised(ip));
}

PeerVerdict PeerPolicy::checkPeer(const wire::SocketAddress& raw_peer, RelayProtocol protocol) const noexcept {
  const wire::SocketAddress peer{normalize(raw_peer.ip), raw_peer.port};
  const bool own = isOwnNormalised(peer.ip);
  const PeerVerdict verdict = checkNormalisedIp(peer.ip, own);
  if (verdict != PeerVerdict::kAllowed || !own) return verdict;
  if (options_.allow_own_address_peers) {
    const auto& ports = options_.listener_ports;
    return std::find(ports.begin(), ports.end(), peer.port) == ports.end() ? PeerVerdict::kAllowed
                                                                           : PeerVerdict::kOwnAddress;
  }
  // On the relay's own addresses only relayed transport addresses that tern holds open are
  // peers: never the server's listeners or admin ports, nor another program's port inside the
  // relay range, the service-side half of CVE-2020-26262.
  return isLiveRelay(peer, protocol) ? PeerVerdict::kAllowed : PeerVerdict::kOwnAddress;
}

}  // namespace tern::core
