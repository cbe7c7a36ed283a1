// Which peers a client may reach through the relay (RFC 8656 §21, DESIGN.md §4): one policy for
// CreatePermission, ChannelBind, Send, ChannelData and RFC 6062 Connect. Closes the coturn
// CVE-2020-26262 family: 0.0.0.0, [::], [::1], ::ffff:127.0.0.1, ::127.0.0.1 and friends.
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include <memory>

#include "relay/core/live_relay_ports.hpp"
#include "relay/core/server_options.hpp"
#include "relay/wire/address.hpp"
#include "relay/wire/cidr.hpp"

namespace tern::core {

using wire::Cidr;

struct PeerPolicyOptions {
  std::vector<Cidr> allow;                     // --allow-peer: overrides the default deny list
  std::vector<Cidr> deny;                      // --deny-peer: always wins, even over allow
  // Every address of the host (a host's traffic to itself passes no firewall), the relay IPs,
  // the --external-ip addresses and the listen IPs.
  std::vector<wire::IpAddress> own_addresses;
  // The relayed addresses open right now (the relay IPs and their ports); on an own address,
  // only these are peers. Null: no own address is a peer.
  std::shared_ptr<const LiveRelayPorts> live_relays;
  // --external-ip: a public address stands for its private relay IP (or every relay IP of its
  // family), so a client may reach another allocation's advertised relayed address.
  std::vector<ExternalIp> external_ips;
  // --allow-own-address-peers: on the own addresses, every port is a peer except these (the
  // STUN/TURN, TLS, DTLS and metrics listeners), instead of only live relayed addresses. For a
  // relay and its peers on one host (a lab, a test on [::1], which has no second address).
  bool allow_own_address_peers = false;
  std::vector<std::uint16_t> listener_ports;
};

enum class PeerVerdict : std::uint8_t {
  kAllowed,
  kDeniedByDefault,   // inside the default deny list (private, loopback, reserved, ...)
  kDeniedByOperator,  // inside a --deny-peer range
  kOwnAddress,        // one of the relay's own addresses, but not a relayed address tern holds
                      // open (with allow_own_address_peers: one of tern's listening ports)
  kUnspecified,       // 0.0.0.0 or ::, which the kernel takes for "this host"
};

// A short reason, fit for a 403 reason phrase and a log line: "denied: private or reserved
// address". It names the rule, never the address.
std::string_view describe(PeerVerdict verdict) noexcept;

// One entry of the built-in deny list: an IANA special-purpose or otherwise non-public range.
struct ReservedRange {
  Cidr range;
  std::string_view reason;  // "private-use (RFC 1918)"
};

class PeerPolicy {
 public:
  // Normalises every range and address (see normalize) and drops unspecified own addresses
  // (a wildcard listener is no peer; the io layer must list the concrete interface addresses).
  explicit PeerPolicy(PeerPolicyOptions options);

  // IPv4-mapped (::ffff:a.b.c.d, RFC 4291 §2.5.5.2) and IPv4-compatible (::a.b.c.d,
  // RFC 4291 §2.5.5.1, but not :: and ::1) IPv6 become IPv4: a dual-stack socket sends them
  // over IPv4, so they must meet the IPv4 rules. Everything else is returned unchanged.
  static wire::IpAddress normalize(const wire::IpAddress& ip) noexcept;
  // The same for a range written in either embedded form with a prefix of at least 96:
  // "::ffff:10.0.0.0/104" becomes 10.0.0.0/8, so an operator's --deny-peer in that form still
  // matches normalised peers. Ranges that include :: or ::1 stay IPv6.
  static Cidr normalize(const Cidr& range) noexcept;

  // For CreatePermission (RFC 8656 §9: permissions are per IP address): checks the normalised
  // IP. In order: unspecified -> kUnspecified (always, even inside an allow range); --deny-peer
  // -> kDeniedByOperator; default deny list and not --allow-peer -> kDeniedByDefault; own
  // address -> kAllowed only if it is a relay IP or stands for one (two clients of one relay
  // talk relay to relay, the common WebRTC case; checkPeer limits the ports), else
  // kOwnAddress; anything else -> kAllowed. Being an own address only ever narrows.
  PeerVerdict checkPeerIp(const wire::IpAddress& ip) const noexcept;

  // For ChannelBind, Send, ChannelData and Connect destinations: checkPeerIp, and on one of
  // the relay's own addresses only relayed addresses of `protocol` that this process holds
  // open right now (kOwnAddress otherwise), so a client never reaches the relay's listeners,
  // admin ports or another program's port inside the relay range. Allocation-free.
  PeerVerdict checkPeer(const wire::SocketAddress& peer,
                        RelayProtocol protocol = RelayProtocol::kUdp) const noexcept;

  // True if `ip` (normalised here again, so either form works) is one of own_addresses.
  bool isOwnAddress(const wire::IpAddress& normalised_ip) const noexcept;

  // The options after normalisation, for --print-config and logs.
  const PeerPolicyOptions& options() const noexcept { return options_; }

  // The built-in deny list, parsed once per process from a constexpr table of text.
  static std::span<const ReservedRange> defaultDenyList() noexcept;
  // The first default range holding `normalised_ip`, or nullptr; for debug logs ("why 403?").
  static const ReservedRange* findDefaultDeny(const wire::IpAddress& normalised_ip) noexcept;

 private:
  static bool anyContains(const std::vector<Cidr>& ranges, const wire::IpAddress& ip) noexcept;
  // The checks of checkPeerIp on a normalised IP whose own-address lookup is done (checkPeer
  // needs that lookup too: one binary search per packet instead of two).
  PeerVerdict checkNormalisedIp(const wire::IpAddress& ip, bool own) const noexcept;
  bool isOwnNormalised(const wire::IpAddress& ip) const noexcept;
  // For a normalised own address: whether it is a relay IP or an --external-ip standing for one.
  bool standsForRelay(const wire::IpAddress& ip) const noexcept;
  // Whether `peer` (normalised, an own address) is a relayed address open right now.
  bool isLiveRelay(const wire::SocketAddress& peer, RelayProtocol protocol) const noexcept;

  PeerPolicyOptions options_;
};

}  // namespace tern::core
