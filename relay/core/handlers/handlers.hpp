// One handler per STUN/TURN method (RFC 8489, RFC 8656 §7-§12). Handlers see the server only
// through ServerContext; each fills exactly one response (or, for indications, none).
#pragma once

#include <string_view>
#include <vector>

#include "metrics/worker_counters.hpp"
#include "relay/core/allocation_table.hpp"
#include "relay/core/five_tuple.hpp"
#include "relay/core/response_writer.hpp"
#include "relay/core/server_options.hpp"
#include "relay/core/server_output.hpp"
#include "relay/core/tcp_connections.hpp"
#include "relay/wire/message.hpp"

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

  // Closes the allocation's TCP connections and relay sockets, returns its quota, counts and
  // reports its end; the caller removes it from the table (or never had it there).
  void releaseAllocation(Allocation& allocation, metrics::AllocationEnd why, TimePoint now) noexcept;
  // Ends an allocation: closes its TCP connections and relay socket, returns its quota,
  // counts and reports it.
  void endAllocation(Allocation& allocation, metrics::AllocationEnd why, TimePoint now) noexcept;
  // Forgets a TCP connection and closes its sockets (unless the I/O layer reported it closed).
  void endConnection(ConnectionId id, bool close_sockets) noexcept;
  // Counts relayed application bytes for the metrics and for the allocation's usage record.
  void countRelayed(Allocation& allocation, metrics::Direction direction, std::size_t bytes) noexcept;
  // The bandwidth limits (--max-bps, --max-bps-per-user) on one datagram or stream frame of
  // `bytes` application bytes: true, with the buckets of that direction charged, if it may be
  // relayed; false, with the drop counted, if one of them is empty. Media is loss-tolerant,
  // and a dropped datagram costs the relay nothing further.
  bool admitBandwidth(Allocation& allocation, metrics::Direction direction, std::size_t bytes, TimePoint now) noexcept;
  // RFC 6062: a TCP pipe's bytes cannot be dropped, so they are charged after the fact, and
  // the connection that read them stops reading for the time returned (zero: read on).
  std::chrono::nanoseconds chargeStream(Allocation& allocation, metrics::Direction direction, std::size_t bytes,
                                        TimePoint now) noexcept;
  // How long until both buckets of `direction` hold tokens again.
  std::chrono::nanoseconds bandwidthWait(const Allocation& allocation, metrics::Direction direction,
                                         TimePoint now) const noexcept;
};

inline metrics::Family counterFamily(const IpAddress& ip) noexcept {
  return ip.isV4() ? metrics::Family::kIPv4 : metrics::Family::kIPv6;
}

inline metrics::ClientTransport counterTransport(Transport t) noexcept {
  switch (t) {
    case Transport::kUdp: return metrics::ClientTransport::kUdp;
    case Transport::kTcp: return metrics::ClientTransport::kTcp;
    case Transport::kTls: return metrics::ClientTransport::kTls;
    case Transport::kDtls: return metrics::ClientTransport::kDtls;
  }
  return metrics::ClientTransport::kUdp;
}

namespace handlers {

struct RequestContext {
  const FiveTuple& tuple;
  const wire::MessageView& request;
  TimePoint now;
  // Set for authenticated requests (every TURN request; not Binding).
  std::string_view username;
  wire::Bytes key;
  std::int64_t now_unix = 0;  // wall clock, for a TURN REST username's expiry
  wire::AttributeType integrity = wire::AttributeType::kMessageIntegrity;
  // RFC 7635: the Unix second the request's ACCESS-TOKEN expires, when one authenticated it.
  std::optional<std::int64_t> token_expiry_unix;
};

// RFC 8489 §3: Binding reports the request's source as XOR-MAPPED-ADDRESS.
void binding(const RequestContext& ctx, ResponseWriter& response) noexcept;
// RFC 8656 §7.2.
void allocate(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;
// RFC 8656 §8.
void refresh(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;
// RFC 8656 §10.2.
void createPermission(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;
// RFC 8656 §12.2.
void channelBind(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;
// RFC 6062 §5.2: answered later, when the connection to the peer completes or fails.
void connect(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;
// RFC 6062 §5.4.
void connectionBind(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;
// RFC 8656 §11.2: a Send indication; never answered.
void sendIndication(ServerContext& server, const FiveTuple& tuple, const wire::MessageView& indication,
                    TimePoint now) noexcept;

// RFC 8016 §3.1: may this request ask for a MOBILITY-TICKET? Answers 405 and returns false
// when mobility is off or the client uses TCP/TLS.
bool admitMobility(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;
// A new random handle for the allocation's tickets: earlier tickets stop working. Every move
// renews it (a spent ticket cannot move the allocation again); ordinary refreshes do not, so
// the answer to a retransmission carries the same ticket as the first answer.
void renewMobilityHandle(Allocation& allocation) noexcept;
// Adds the MOBILITY-TICKET of `allocation` (if it has mobility) to a success response.
void addMobilityTicket(ServerContext& server, const Allocation& allocation, wire::MessageBuilder& b) noexcept;
// RFC 8016 §3.2: a Refresh from a 5-tuple without an allocation, carrying a MOBILITY-TICKET.
// Returns the allocation, moved to ctx.tuple, or null after answering an error or deferring
// the answer (a move across workers: the worker that ends up with the allocation answers).
Allocation* claimByTicket(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;

// The allocation of an authenticated request's 5-tuple, or null after answering 437 / 441.
Allocation* allocationFor(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept;

}  // namespace handlers
}  // namespace tern::core
