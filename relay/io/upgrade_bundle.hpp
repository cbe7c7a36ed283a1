// What one worker hands to the process that upgrades it (docs/upgrade.md): its listening
// sockets and the allocations that move, each with its relay sockets. The old process sends
// descriptors it still owns (HandOverChannel duplicates them into the new process); the new
// one receives descriptors it owns. Encoded apart from any socket so the format is plain to
// test: the payload lists kinds and snapshots, the descriptors follow in the same order.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "relay/core/allocation_snapshot.hpp"
#include "relay/io/client_listeners.hpp"
#include "relay/io/reservations.hpp"
#include "relay/io/dtls_forwarding.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/wire/expected.hpp"

namespace tern::io {

// In the old process: descriptors it keeps until the new process confirms.
struct OutgoingBundle {
  struct Listener {
    ClientListeners::Kind kind;
    int fd;
  };
  unsigned worker = 0;
  std::vector<Listener> listeners;
  std::vector<core::AllocationSnapshot> allocations;
  std::vector<std::vector<int>> relay_fds;  // per allocation, in relay order
  std::vector<core::ConnectionSnapshot> connections;  // plain TCP clients
  std::vector<int> connection_fds;
  // The end of a pre-copy (docs/upgrade.md): allocations sent before whose state changed
  // since (no descriptors: the new process has their sockets), and the first relay ids of
  // those that ended since.
  std::vector<core::AllocationSnapshot> updated;
  std::vector<core::RelayId> removed;
  // Duplicates of the descriptors above, made while the worker serves on (it may close its
  // own meanwhile); they close with the bundle.
  std::vector<FileDescriptor> owned;
  std::vector<HandedReservation> reservations;  // unclaimed EVEN-PORT reservations, no descriptor
  // RFC 6062 connections of the TCP allocations that move: each peer socket and, once
  // bound, its client data connection (a pipe holds no bytes: `data->unread` is empty).
  struct PeerConnection {
    core::TcpConnectionSnapshot snapshot;
    int peer_fd = -1;
    std::optional<core::ConnectionSnapshot> data;
    int data_fd = -1;
  };
  std::vector<PeerConnection> peer_connections;
  // DTLS sessions that stay (dtls_forwarding.hpp) and the socket pair end that carries their
  // datagrams back to this worker; -1 without any.
  std::vector<DtlsSessionRef> dtls_sessions;
  int dtls_channel = -1;
};

// In the new process: the listeners, allocations (sockets.restored), TCP client
// connections (sockets.connections) and RFC 6062 connections (sockets.peer_connections) of
// one old worker.
struct IncomingBundle {
  unsigned worker = 0;  // the old process's index
  WorkerSockets sockets;
};

// The payload and the descriptors, in the order decodeBundle takes them back.
struct EncodedBundle {
  std::vector<std::uint8_t> payload;
  std::vector<int> fds;
};
EncodedBundle encodeBundle(const OutgoingBundle& bundle);
// Takes ownership of `fds` (closed on error). An error text for a payload that does not
// match itself or its descriptors.
Expected<IncomingBundle, std::string> decodeBundle(wire::Bytes payload, std::vector<FileDescriptor> fds);

// Old worker i's bundle goes to new worker (i mod count): whole bundles, so a client's
// 5-tuple still reaches, through the same listening socket, the worker holding its allocation.
inline unsigned newWorkerOf(unsigned old_worker, unsigned count) noexcept { return old_worker % count; }

}  // namespace tern::io
