// The TCP connections of a worker's TCP allocations (RFC 6062): each peer connection with its
// CONNECTION-ID, its allocation (by control 5-tuple), its peer and where it stands. The bytes
// themselves never pass through the core: once a client data connection is bound, the I/O
// layer pipes them. Every deadline is 30 s from its start (RFC 6062 §5.2, §5.3), so deadlines
// come due in the order they were set and a FIFO queue serves as the timer.
#pragma once

#include <cstdint>
#include <deque>
#include <unordered_map>

#include "relay/core/five_tuple.hpp"
#include "relay/core/socket_ids.hpp"
#include "relay/wire/message.hpp"

namespace tern::core {

struct TcpConnection {
  enum class State : std::uint8_t {
    kConnecting,    // Connect sent to the peer; the Connect request waits for the outcome
    kAwaitingBind,  // connected; waits for the client's ConnectionBind
    kBound,         // piped to a client data connection
  };
  ConnectionId id = 0;
  FiveTuple control;  // the allocation's control connection
  SocketAddress peer;
  State state = State::kConnecting;
  TimePoint deadline;
  // The Connect request to answer when the connection completes (kConnecting only).
  wire::TransactionId connect_transaction{};
  bool connect_fingerprint = false;
};

class TcpConnectionTable {
 public:
  // RFC 6062 §5.2 and §5.3: a Connect that has not completed, and a connection not bound by
  // a ConnectionBind, are given up after 30 s.
  static constexpr std::chrono::seconds kTimeout{30};

  // `owner` goes into the top byte of every id; `seed` makes the rest unpredictable.
  TcpConnectionTable(std::uint8_t owner, std::uint64_t seed) noexcept;

  static std::uint8_t ownerOf(ConnectionId id) noexcept { return static_cast<std::uint8_t>(id >> 24); }
  std::uint8_t owner() const noexcept { return owner_; }

  // A new connection with a fresh id, due at now + kTimeout.
  TcpConnection& add(const FiveTuple& control, const SocketAddress& peer, TcpConnection::State state,
                     TimePoint now);
  TcpConnection* find(ConnectionId id) noexcept;
  const TcpConnection* find(ConnectionId id) const noexcept {
    auto it = by_id_.find(id);
    return it == by_id_.end() ? nullptr : &it->second;
  }
  // An upgrade hand-over: installs a connection the old process had, under its id and with
  // its deadline (which may come before those of connections added since). False if the id
  // is taken. May throw std::bad_alloc (the table is then as it was).
  bool restore(const TcpConnection& connection);
  void erase(ConnectionId id) noexcept { by_id_.erase(id); }
  // Restarts the 30 s timer (Connect completed: now the ConnectionBind is awaited).
  void restartTimer(TcpConnection& connection, TimePoint now);
  std::size_t size() const noexcept { return by_id_.size(); }

  // Calls `due(TcpConnection&)` for every connection not yet bound whose deadline has passed;
  // the callback erases it.
  template <class F>
  void expire(TimePoint now, F&& due);

 private:
  ConnectionId nextId() noexcept;

  struct Due {
    TimePoint when;
    ConnectionId id;
  };
  std::uint8_t owner_;
  std::uint64_t state_;
  std::unordered_map<ConnectionId, TcpConnection> by_id_;
  std::deque<Due> due_;
};

template <class F>
void TcpConnectionTable::expire(TimePoint now, F&& due) {
  while (!due_.empty() && due_.front().when <= now) {
    const Due d = due_.front();
    due_.pop_front();
    TcpConnection* c = find(d.id);
    // Gone, bound, or its timer restarted since (a later entry covers it).
    if (c == nullptr || c->state == TcpConnection::State::kBound || c->deadline > now) continue;
    due(*c);
  }
}

}  // namespace tern::core
