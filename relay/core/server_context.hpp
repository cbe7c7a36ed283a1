// The part of a worker's server state that the method handlers and the relay steps share:
// settings, services, the I/O layer's interfaces, counters, and the allocation and connection
// tables. TurnServer owns it; handlers see the server only through it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <unordered_map>
#include <utility>
#include <vector>

#include "metrics/worker_counters.hpp"
#include "relay/core/allocation_table.hpp"
#include "relay/core/five_tuple.hpp"
#include "relay/core/server_options.hpp"
#include "relay/core/server_output.hpp"
#include "relay/core/tcp_connections.hpp"
#include "relay/wire/bytes.hpp"

namespace tern::core {

struct ServerContext {
  const ServerOptions& options;
  const ServerServices& services;
  ServerOutput output;
  metrics::WorkerCounters& counters;
  AllocationTable& allocations;
  TcpConnectionTable& connections;
  // Set by a successful ConnectionBind: the connection to join once the response is sent.
  std::optional<ConnectionId> pending_join;
  // Draining: new allocations are refused or redirected (ServerOptions::alternate_servers),
  // existing ones carry on.
  bool draining = false;
  // RFC 8016: set while this worker processes a Refresh another worker passed on to it (the
  // worker that received it, where the allocation is to go).
  std::optional<std::uint8_t> forwarded_from;
  // RFC 8016: handles of allocations this worker handed over a moment ago. A retransmitted
  // Refresh the new owner received before it adopted the allocation comes here again; it is
  // dropped rather than refused, and the new owner answers the next retransmission.
  std::vector<std::pair<std::uint64_t, TimePoint>> handed_over;
  // Issue 20, upgrade hand-over: a MOBILITY-TICKET the old process sealed names its (worker,
  // relay id); the relay socket has another id here. (old worker << 32 | old relay) -> relay
  // id here, with the reverse index so an entry goes when its relay does.
  std::unordered_map<std::uint64_t, RelayId> renamed_relays;
  std::unordered_map<RelayId, std::uint64_t> renamed_from;
  // Issue 21: the kernel fast path's view of this worker's channels; null without one.
  ChannelCache* channel_cache = nullptr;

  static constexpr std::uint64_t renameKey(std::uint8_t worker, RelayId relay) noexcept {
    return (std::uint64_t{worker} << 32) | relay;
  }
  // The worker of this process that serves a ticket naming `worker` (of this process or of
  // the one before an upgrade): worker mod worker_count.
  std::uint8_t ownerOf(std::uint8_t worker) const noexcept {
    return options.worker_count == 0 ? worker
                                     : static_cast<std::uint8_t>(worker % options.worker_count);
  }
  // Issue 21: tells the channel cache of `allocation`'s state if it changed since the cache
  // last saw it (always with `force`: a reload may have changed what is eligible).
  void cacheAllocation(Allocation& allocation, TimePoint now, bool force = false) noexcept;
  // Takes the allocation's entries out of the channel cache and credits what they relayed to
  // its usage, before it ends or leaves.
  void uncacheAllocation(Allocation& allocation) noexcept;
  // Drops the rename entry that leads to `relay`, if any (its socket closes or leaves).
  void forgetRename(RelayId relay) noexcept;

  // Closes the allocation's TCP connections and relay sockets, returns its quota, counts and
  // reports its end; the caller removes it from the table (or never had it there).
  void releaseAllocation(Allocation& allocation, metrics::AllocationEnd why,
                         TimePoint now) noexcept;
  // Ends an allocation: closes its TCP connections and relay socket, returns its quota,
  // counts and reports it.
  void endAllocation(Allocation& allocation, metrics::AllocationEnd why, TimePoint now) noexcept;
  // Forgets a TCP connection and closes its sockets (unless the I/O layer reported it closed).
  void endConnection(ConnectionId id, bool close_sockets) noexcept;
  // Counts relayed application bytes for the metrics and for the allocation's usage record.
  void countRelayed(Allocation& allocation, metrics::Direction direction,
                    std::size_t bytes) noexcept;
  // The bandwidth limits (--max-bps, --max-bps-per-user) on one datagram or stream frame of
  // `bytes` application bytes: true, with the buckets of that direction charged, if it may be
  // relayed; false, with the drop counted, if one of them is empty. Media is loss-tolerant,
  // and a dropped datagram costs the relay nothing further.
  bool admitBandwidth(Allocation& allocation, metrics::Direction direction, std::size_t bytes,
                      TimePoint now) noexcept;
  // admitBandwidth without the count: nothing when admitted (the buckets charged), else the
  // limit that refused it.
  std::optional<metrics::DropReason> bandwidthRefusal(Allocation& allocation,
                                                      metrics::Direction direction,
                                                      std::size_t bytes, TimePoint now) noexcept;
  // RFC 6062: a TCP pipe's bytes cannot be dropped, so they are charged after the fact, and
  // the connection that read them stops reading for the time returned (zero: read on).
  std::chrono::nanoseconds chargeStream(Allocation& allocation, metrics::Direction direction,
                                        std::size_t bytes, TimePoint now) noexcept;
  // How long until both buckets of `direction` hold tokens again.
  std::chrono::nanoseconds bandwidthWait(const Allocation& allocation, metrics::Direction direction,
                                         TimePoint now) const noexcept;

  // The live allocation on `tuple`, or null with the drop counted (kNoAllocation): the first
  // check of ChannelData and Send indications (RFC 8656 §11.2, §12.5).
  Allocation* liveAllocation(const FiveTuple& tuple, TimePoint now) noexcept;
  // The relay-to-peer step shared by Send indications (RFC 8656 §11.2) and ChannelData
  // (§12.5), once the peer is known: permission for the peer's IP (§9), the peer policy when
  // `check_policy` (a Send names any peer; a channel's peer was checked at bind time unless it
  // is one of this relay's own addresses), the bandwidth limits, the send from the relay
  // socket of the peer's family, and the count. Returns nothing when relayed, else the drop
  // reason, already counted. No allocation and no exception: it runs for every packet.
  std::optional<metrics::DropReason> relayToPeer(Allocation& allocation, const SocketAddress& peer,
                                                 wire::Bytes payload, bool check_policy,
                                                 TimePoint now) noexcept;
};

inline metrics::Family counterFamily(const IpAddress& ip) noexcept {
  return ip.isV4() ? metrics::Family::kIPv4 : metrics::Family::kIPv6;
}

inline metrics::ClientTransport counterTransport(Transport t) noexcept {
  switch (t) {
    case Transport::kUdp:
      return metrics::ClientTransport::kUdp;
    case Transport::kTcp:
      return metrics::ClientTransport::kTcp;
    case Transport::kTls:
      return metrics::ClientTransport::kTls;
    case Transport::kDtls:
      return metrics::ClientTransport::kDtls;
  }
  return metrics::ClientTransport::kUdp;
}

}  // namespace tern::core
