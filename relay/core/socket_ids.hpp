// The names the core and the I/O layer share for a worker's sockets: small integers the core
// stores in its tables, so it never holds a socket.
#pragma once

#include <cstdint>

namespace tern::core {

// Names one relay socket of this worker (an allocation's relayed transport address).
using RelayId = std::uint32_t;
// A relay socket lost in a hand-over between workers (RFC 8016); names no socket.
inline constexpr RelayId kLostRelay = 0xFFFFFFFF;
// RFC 6062 §6.2.1 CONNECTION-ID: names one TCP connection to a peer of a TCP allocation. The
// top byte is the index of the worker that owns it (a ConnectionBind may arrive on another).
using ConnectionId = std::uint32_t;

}  // namespace tern::core
