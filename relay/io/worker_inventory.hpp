// Everything one worker owns, listed from the one place that holds it (the worker's loop,
// worker.cpp): its listening sockets, relay sockets, client and peer connections and
// allocations, each socket with its descriptor. Handing a running node to a new process, the
// kernel fast path's maps and an operator's view read this; none of them keeps a second copy.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "relay/core/allocation.hpp"
#include "relay/io/client_listeners.hpp"

namespace tern::io {

struct WorkerInventory {
  struct Listener {
    ClientListeners::Kind kind;
    wire::SocketAddress local;
    int fd;
  };
  struct Relay {
    core::RelayId id;
    core::RelayProtocol protocol;
    wire::SocketAddress local;  // before any --external-ip mapping
    int fd;
  };
  // A TCP or TLS client connection; with a CONNECTION-ID once it is an RFC 6062 data connection.
  struct ClientConnection {
    core::FiveTuple tuple;
    int fd;
    std::optional<core::ConnectionId> piped_to;
  };
  // RFC 6062: tuple.client is the peer, tuple.server the relayed address.
  struct PeerConnection {
    core::ConnectionId id;
    core::FiveTuple tuple;
    int fd;
    bool piped;
  };
  struct Allocation {
    core::FiveTuple tuple;
    std::string username;
    std::vector<core::RelayEndpoint> relays;
    std::chrono::milliseconds remaining;
    std::size_t permissions;
    std::size_t channels;
    std::vector<core::ConnectionId> connections;
    std::chrono::seconds age{0};
    // As of the last tick with the kernel fast path (it credits its counts once a second).
    core::AllocationUsage usage;
  };

  unsigned worker = 0;
  std::vector<Listener> listeners;
  std::vector<Relay> relays;
  std::vector<ClientConnection> client_connections;
  std::vector<PeerConnection> peer_connections;
  std::vector<Allocation> allocations;
};

}  // namespace tern::io
