// RFC 6062 connection bookkeeping; see tcp_connections.hpp.
#include "relay/core/tcp_connections.hpp"

#include <algorithm>

namespace tern::core {

TcpConnectionTable::TcpConnectionTable(std::uint8_t owner, std::uint64_t seed) noexcept
    : owner_(owner), state_(seed | 1) {}

ConnectionId TcpConnectionTable::nextId() noexcept {
  // xorshift64* for the low 24 bits: ids are not guessable in sequence, though a ConnectionBind
  // must also carry the allocation's credentials, so guessing one would gain nothing.
  while (true) {
    state_ ^= state_ >> 12;
    state_ ^= state_ << 25;
    state_ ^= state_ >> 27;
    const auto low = static_cast<ConnectionId>((state_ * 2685821657736338717ull) >> 40) & 0xFFFFFFu;
    const ConnectionId id = (static_cast<ConnectionId>(owner_) << 24) | low;
    if (low != 0 && !by_id_.contains(id)) return id;
  }
}

TcpConnection& TcpConnectionTable::add(const FiveTuple& control, const SocketAddress& peer,
                                       TcpConnection::State state, TimePoint now) {
  const ConnectionId id = nextId();
  // The timer first: if the entry cannot be made, a timer that finds no connection is
  // skipped, and the table is as it was (the caller refuses the request).
  due_.push_back({now + kTimeout, id});
  TcpConnection& c = by_id_[id];
  c.id = id;
  c.control = control;
  c.peer = peer;
  c.state = state;
  c.deadline = now + kTimeout;
  return c;
}

TcpConnection* TcpConnectionTable::find(ConnectionId id) noexcept {
  auto it = by_id_.find(id);
  return it == by_id_.end() ? nullptr : &it->second;
}

void TcpConnectionTable::restartTimer(TcpConnection& connection, TimePoint now) {
  connection.deadline = now + kTimeout;
  due_.push_back({connection.deadline, connection.id});
}

bool TcpConnectionTable::restore(const TcpConnection& connection) {
  if (connection.id == 0 || by_id_.contains(connection.id)) return false;
  if (connection.state != TcpConnection::State::kBound) {
    // expire() walks the queue from the front: a deadline must sit in order among the rest.
    const auto at = std::upper_bound(due_.begin(), due_.end(), connection.deadline,
                                     [](TimePoint when, const Due& d) { return when < d.when; });
    const auto inserted = due_.insert(at, Due{connection.deadline, connection.id});
    try {
      by_id_.emplace(connection.id, connection);
    } catch (...) {
      due_.erase(inserted);
      throw;
    }
    return true;
  }
  by_id_.emplace(connection.id, connection);
  return true;
}

}  // namespace tern::core
