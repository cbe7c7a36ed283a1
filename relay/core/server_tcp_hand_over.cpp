// Issue 20: RFC 6062 connections in an upgrade hand-over. A TCP allocation moves with the
// connections that are waiting for their ConnectionBind (RFC 6062 §5.3) or bound (§5.4); the
// I/O layer carries their sockets. The encoding is allocation_snapshot.cpp.
#include "relay/core/turn_server.hpp"
#include "relay/wire/checks.hpp"

namespace tern::core {

std::optional<TcpConnectionSnapshot> TurnServer::snapshotConnection(ConnectionId id,
                                                                    TimePoint now) const {
  const TcpConnection* c = connections_.find(id);
  // A Connect in progress has a dialling socket and a request to answer on the control
  // connection: too transient to cross (docs/upgrade.md).
  if (c == nullptr || c->state == TcpConnection::State::kConnecting) return std::nullopt;
  TcpConnectionSnapshot s;
  s.id = c->id;
  s.control = c->control;
  s.peer = c->peer;
  s.bound = c->state == TcpConnection::State::kBound;
  s.deadline_in_ns =
      s.bound ? 0 : std::chrono::duration_cast<std::chrono::nanoseconds>(c->deadline - now).count();
  return s;
}

bool TurnServer::restoreConnection(const TcpConnectionSnapshot& s, TimePoint now) noexcept {
  Allocation* a = allocations_.find(s.control);
  if (a == nullptr || !a->tcp()) return false;
  // The kernel spreads data connections over the workers, and a ConnectionBind is routed to
  // the worker its id names (admitConnectionBind): with another worker count that is not this
  // one. A bound connection needs no routing any more.
  if (!s.bound && TcpConnectionTable::ownerOf(s.id) != connections_.owner()) return false;
  TcpConnection c;
  c.id = s.id;
  c.control = s.control;
  c.peer = s.peer;
  c.state = s.bound ? TcpConnection::State::kBound : TcpConnection::State::kAwaitingBind;
  c.deadline = now + std::chrono::nanoseconds(std::max<std::int64_t>(s.deadline_in_ns, 0));
  try {
    // A call that was running is never refused: no --max-connections-per-allocation check.
    a->reserveConnection();
    if (!connections_.restore(c)) return false;
  } catch (const std::bad_alloc&) {
    checks::outOfMemory("restored RFC 6062 connection");
    return false;
  }
  a->addConnection(c.id);
  return true;
}

}  // namespace tern::core
