// What a worker is made of and given: its sockets, its settings and the services it shares
// with the other workers (see worker.hpp).
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "relay/core/allocation.hpp"
#include "relay/core/allocation_snapshot.hpp"
#include "relay/core/live_relay_ports.hpp"
#include "relay/core/server_options.hpp"
#include "relay/io/connection_limits.hpp"
#include "relay/io/dtls_forwarding.hpp"
#include "relay/io/port_pool.hpp"
#include "relay/io/reservations.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/io/tls.hpp"
#include "relay/wire/cidr.hpp"

namespace tern::io {

class Worker;
class FastPath;
struct DetachedConnection;

// RFC 8016: an allocation on its way to the worker that serves its client's new 5-tuple,
// with its relay sockets, still open, in relay order (see core::AllocationHandOver).
struct MovedAllocation {
  core::AllocationHandOver hand_over;
  std::vector<FileDescriptor> relay_sockets;
};

// Every worker of the process, for the messages workers send each other: an RFC 6062 data
// connection, or an RFC 8016 Refresh from a client's new 5-tuple, that the kernel gave to a
// worker other than the one owning its peer connection or allocation.
// Filled before any worker starts; read-only afterwards.
struct WorkerDirectory {
  std::vector<Worker*> workers;
};

// An upgrade (docs/upgrade.md): an allocation of the old process, with its relay sockets in
// the snapshot's relay order.
struct RestoredAllocation {
  core::AllocationSnapshot snapshot;
  std::vector<FileDescriptor> relay_sockets;
};

// An upgrade: a plain TCP client connection of the old process, with its socket.
struct RestoredConnection {
  core::ConnectionSnapshot snapshot;
  FileDescriptor fd;
};

// An upgrade's pre-copy: an allocation sent early that ended in the old process before it
// froze, named by the old worker and its first relay there.
struct RemovedAllocation {
  std::uint8_t worker = 0;
  core::RelayId relay = 0;
};

// An upgrade: an RFC 6062 connection of a TCP allocation of the old process, with its peer
// socket and, once bound, the client data connection piped to it.
struct RestoredPeerConnection {
  core::TcpConnectionSnapshot snapshot;
  FileDescriptor peer_fd;
  std::optional<core::ConnectionSnapshot> data;
  FileDescriptor data_fd;
};

// An upgrade: DTLS sessions that stay with one old worker (dtls_forward_channel.hpp); their
// datagrams go back to it over `channel`. `socket`: the listener's place in WorkerSockets::dtls.
struct DtlsForward {
  struct Session {
    std::uint32_t socket = 0;
    DtlsSessionRef session;
  };
  FileDescriptor channel;
  std::vector<Session> sessions;
};

struct WorkerSockets {
  std::vector<FileDescriptor> udp;
  std::vector<FileDescriptor> tcp;
  std::vector<FileDescriptor> tls;   // --tls-listen: TCP, TLS required
  std::vector<FileDescriptor> dtls;  // --dtls-listen: UDP, DTLS (RFC 7350)
  // Allocations and TCP client connections an upgrade handed over, restored before the
  // worker reads any socket.
  std::vector<RestoredAllocation> restored;
  std::vector<RestoredConnection> connections;
  // The end of a pre-copied upgrade: newer state of allocations restored earlier (same
  // sockets), and those that ended meanwhile.
  std::vector<core::AllocationSnapshot> updated;
  std::vector<RemovedAllocation> removed;
  std::vector<HandedReservation> reservations;  // EVEN-PORT reservations an upgrade handed over
  std::vector<RestoredPeerConnection> peer_connections;  // after their allocations
  std::vector<DtlsForward> dtls_forward;
};

// What a worker needs beyond its sockets: the core's settings and shared services, and where
// it may open relay sockets.
struct WorkerSetup {
  core::ServerOptions options;
  core::ServerServices services;
  std::vector<wire::IpAddress> relay_ips;
  std::uint16_t relay_port_first = 0;  // this worker's share of --relay-ports
  std::uint16_t relay_port_last = 0;
  // The whole --relay-ports range, shared by all workers: a worker whose share is used up
  // borrows from it. Null: a range of the worker's share alone.
  std::shared_ptr<RelayPortRange> relay_ports;
  // Relayed addresses open now, recorded for the peer policy (may be null in tests).
  std::shared_ptr<core::LiveRelayPorts> live_relays;
  // EVEN-PORT reservations, shared by all workers (the paired Allocate may land elsewhere).
  std::shared_ptr<ReservationRegistry> reservations = std::make_shared<ReservationRegistry>();
  // With a certificate: TLS on --tls-listen ports, and on --listen TCP ports by first byte.
  std::shared_ptr<const TlsContext> tls;
  std::shared_ptr<const TlsContext> dtls;
  std::shared_ptr<const WorkerDirectory> directory = std::make_shared<WorkerDirectory>();
  // TCP and TLS client connections per source and in all, shared by all workers.
  std::shared_ptr<ConnectionLimits> connection_limits = std::make_shared<ConnectionLimits>(0, 0);
  DtlsLimits dtls_limits;  // shared by all workers too
  // Issue 21: the kernel fast path's program and maps, shared by all workers; null: off.
  std::shared_ptr<const FastPath> fast_path;
  // --proxy-protocol-from: TCP and TLS client connections from these ranges start with a
  // PROXY protocol header naming the client (client_connections_proxy.cpp).
  std::vector<wire::Cidr> proxy_protocol_from;
};

// What a configuration reload changes in a running worker; allocations keep their state.
struct WorkerReload {
  core::ServerOptions options;
  core::ServerServices services;
  std::shared_ptr<const TlsContext> tls;
  std::shared_ptr<const TlsContext> dtls;
  unsigned tcp_idle_timeout = 300;
};

}  // namespace tern::io
