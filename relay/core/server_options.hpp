// The TURN server's settings and the shared services it consults: the parts of the operator's
// configuration that the sans-I/O core needs, in the core's own types.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "relay/core/bandwidth.hpp"
#include "relay/core/five_tuple.hpp"

namespace tern::auth {
class Authenticator;
class MobilityTicketCodec;
}

namespace tern::core {

class PeerPolicy;
class AllocationQuota;
class Revocations;

// --external-ip PUBLIC[=PRIVATE]: a node behind 1:1 NAT advertises PUBLIC for relay sockets
// bound to PRIVATE (or to any relay IP of PUBLIC's family when PRIVATE is not given).
struct ExternalIp {
  IpAddress public_ip;
  std::optional<IpAddress> private_ip;
};

// How many answers to requests that prove nothing one source may get (see
// SourceRateLimiter): `per_second` on average, `burst` at once. per_second 0: no limit.
struct UnauthenticatedLimits {
  static constexpr std::uint32_t kMaxBurst = 1'000'000;
  std::uint32_t per_second = 100;
  std::uint32_t burst = 1000;  // at most kMaxBurst
};

struct ServerOptions {
  // RFC 8489 §14.14: SOFTWARE in responses; empty leaves it out.
  std::string software = "tern";
  // RFC 8656 §7.2: 600 s unless the client asks for more, up to the maximum.
  std::chrono::seconds default_lifetime{600};
  std::chrono::seconds max_lifetime{3600};
  // RFC 8656 §9 and §12: permissions last 300 s, channel bindings 600 s.
  std::chrono::seconds permission_lifetime{300};
  std::chrono::seconds channel_lifetime{600};
  std::size_t max_permissions_per_allocation = 64;
  std::size_t max_channels_per_allocation = 64;
  // RFC 6062: TCP connections (pending or bound) per TCP allocation.
  std::size_t max_connections_per_allocation = 64;
  // Which worker runs this core: the top byte of its CONNECTION-IDs (RFC 6062 §6.2.1).
  std::uint8_t worker_index = 0;
  // How many workers the process runs; 0 when unknown (tests of one worker). After an upgrade
  // hand-over a MOBILITY-TICKET may name a worker index of the old process, which the new one
  // serves at (index mod worker_count) (issue 20).
  std::uint16_t worker_count = 0;
  std::vector<ExternalIp> external_ips;
  // Where a draining relay sends new allocations (RFC 8489 §10, 300 Try Alternate): the
  // first of the client's address family.
  std::vector<SocketAddress> alternate_servers;
  // RFC 8489 §14.16: the name TLS and DTLS clients verify an alternate server's certificate
  // against; sent with ALTERNATE-SERVER over those transports. Empty: left out.
  std::string alternate_domain;
  // A TURN REST username's expiry also bounds the allocation: lifetimes end at it, and
  // Refresh, CreatePermission and ChannelBind fail once it passes. Without it only new
  // Allocates check the expiry, so a call outlives its short-lived credential.
  bool strict_expiry = false;
  // RFC 8016: clients that ask for it get a MOBILITY-TICKET and may move their UDP or DTLS
  // allocation to a new 5-tuple; off, such requests get 405 (Mobility Forbidden).
  bool mobility = true;
  // Relayed application bytes per second, each direction on its own bucket: per allocation
  // (--max-bps) and shared by all allocations of one user across workers (--max-bps-per-user).
  // Read on every relayed packet, so a reload applies to existing allocations at once.
  BandwidthLimit allocation_bandwidth;
  BandwidthLimit user_bandwidth;
  // Answers to unauthenticated requests (401, Binding responses, 400 to malformed requests)
  // per source address; over the limit they are dropped and counted (DESIGN.md §4).
  UnauthenticatedLimits unauthenticated;
  // Authenticated requests on one allocation (not ChannelData or Send: that is the data path,
  // under allocation_bandwidth); over it they are dropped and counted, unanswered. Read on
  // every request, so a reload applies at once.
  RequestRateLimit allocation_requests{20, 200};
  // How many sources the limit's table holds (memory: 32 bytes each); fixed at start.
  std::size_t unauthenticated_sources = 16384;
};

// Shared by every worker; each is immutable or thread-safe.
struct ServerServices {
  std::shared_ptr<const auth::Authenticator> authenticator;
  std::shared_ptr<const PeerPolicy> peer_policy;
  std::shared_ptr<AllocationQuota> quota;
  // RFC 8016 tickets, sealed with a per-process key so every worker opens every worker's
  // tickets. Without it, mobility is off.
  std::shared_ptr<const auth::MobilityTicketCodec> tickets;
  // Operators' revocations; none without it.
  std::shared_ptr<const Revocations> revocations;
};

// Whose allocations a quota counts: for a TURN REST username `<expiry>:<user>` the user, so
// fresh credentials do not reset the count; otherwise the username itself.
std::string_view quotaKey(std::string_view username) noexcept;

// The address advertised for a relay socket bound to `local` (RFC 8656 §7.2 XOR-RELAYED-ADDRESS).
SocketAddress advertisedAddress(const std::vector<ExternalIp>& external, const SocketAddress& local) noexcept;

}  // namespace tern::core
