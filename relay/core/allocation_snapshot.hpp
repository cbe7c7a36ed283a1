// One allocation as plain values, and its byte encoding: the state that crosses to a new
// process in an upgrade hand-over (issue 20). Versioned, length-prefixed and bounded, so the
// new process refuses what it does not understand instead of guessing (never a raw dump of a
// C++ struct: ../shared/STYLE.md, "State that crosses a process boundary").
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "relay/core/allocation.hpp"
#include "relay/wire/bytes.hpp"
#include "relay/wire/expected.hpp"

namespace tern::core {

// Every time is relative to `now` of the snapshot, in nanoseconds (negative: in the past),
// because the two processes' loop clocks differ.
struct AllocationSnapshot {
  std::uint8_t worker = 0;  // the old process's worker index (mobility tickets name it)
  FiveTuple tuple;
  std::vector<RelayEndpoint> relays;  // ids: the OLD process's RelayIds; the io layer maps them
  std::string username;
  std::vector<std::uint8_t> key;
  wire::AttributeType integrity = wire::AttributeType::kMessageIntegrity;
  std::optional<std::int64_t> token_expiry;
  std::string token_kid;
  std::int64_t created_ago_ns = 0;
  std::int64_t expires_in_ns = 0;
  AllocationUsage usage;
  // Per metrics::Direction: when the TokenBucket is full again, relative to now.
  std::array<std::int64_t, 2> bandwidth_full_in_ns{};
  std::int64_t requests_full_in_ns = 0;
  bool requests_limited = false;
  wire::TransactionId allocate_transaction{};
  std::optional<std::uint64_t> reservation_token;
  std::uint16_t additional_family_error = 0;
  bool tcp = false;
  std::uint64_t mobility_handle = 0;
  std::vector<ConnectionId> connections;
  struct Permission {
    IpAddress peer;
    std::int64_t expires_in_ns = 0;
    friend bool operator==(const Permission&, const Permission&) noexcept = default;
  };
  std::vector<Permission> permissions;
  struct Channel {
    std::uint16_t number = 0;
    SocketAddress peer;
    std::int64_t expires_in_ns = 0;
    bool own_peer = false;
    friend bool operator==(const Channel&, const Channel&) noexcept = default;
  };
  std::vector<Channel> channels;
};

// Bounds the decoder enforces (and the encoder refuses to exceed, so what one process writes
// the next always reads).
inline constexpr std::size_t kMaxSnapshotText = 64 * 1024;  // username, key, token kid
inline constexpr std::size_t kMaxSnapshotEntries = 65536;   // permissions, channels, connections
inline constexpr std::size_t kMaxSnapshotRecord = 8 * 1024 * 1024;  // one record's body
// A relative time beyond a century is malformed: it keeps now + t far from overflow.
inline constexpr std::int64_t kMaxSnapshotNs = std::int64_t{100} * 365 * 24 * 3600 * 1'000'000'000;
inline constexpr std::uint8_t kSnapshotVersion = 1;

// Appends one snapshot to `out`: a version byte, a 32-bit body length, the body. All integers
// are big-endian (network order, like relay/wire). May throw std::bad_alloc, and
// std::length_error for a snapshot over the bounds above (no Allocation can make one).
void encodeSnapshot(const AllocationSnapshot& s, std::vector<std::uint8_t>& out);
// Decodes one snapshot from the front of `in` and advances `in` past it. An error text (never
// a crash, never undefined behaviour) for truncated, oversized, unknown-version or malformed
// input; `in` is then left as it was. May throw std::bad_alloc only.
Expected<AllocationSnapshot, std::string> decodeSnapshot(wire::Bytes& in);

// A plain TCP client connection crossing with its allocation: its 5-tuple and what was read
// from it but did not yet make a whole frame (RFC 8656 §6.2); the socket travels beside it in
// the io layer. A TLS connection never crosses (docs/upgrade.md).
struct ConnectionSnapshot {
  FiveTuple tuple;
  std::vector<std::uint8_t> unread;
};
// Less than one frame: a ChannelData or STUN message is at most 64 KiB and a 4-byte header.
inline constexpr std::size_t kMaxConnectionUnread = 65536 + 4;
// The same record framing and version as encodeSnapshot; same errors and guarantees.
void encodeConnection(const ConnectionSnapshot& c, std::vector<std::uint8_t>& out);
Expected<ConnectionSnapshot, std::string> decodeConnection(wire::Bytes& in);

// An RFC 6062 connection of a TCP allocation that moves (TcpConnectionTable's entry): the id
// the client knows it by, its allocation's control connection, its peer and where it stands.
// Only a connection waiting for its ConnectionBind or already bound crosses; one whose Connect
// is still in progress keeps its allocation in the old process (docs/upgrade.md). Its sockets
// travel beside it in the io layer.
struct TcpConnectionSnapshot {
  ConnectionId id = 0;
  FiveTuple control;
  SocketAddress peer;
  bool bound = false;  // else waiting for its ConnectionBind
  // Waiting: when its 30 s (RFC 6062 §5.3) run out, relative to now.
  std::int64_t deadline_in_ns = 0;
  friend bool operator==(const TcpConnectionSnapshot&,
                         const TcpConnectionSnapshot&) noexcept = default;
};
// The same record framing and version as encodeSnapshot; same errors and guarantees.
void encodeTcpConnection(const TcpConnectionSnapshot& c, std::vector<std::uint8_t>& out);
Expected<TcpConnectionSnapshot, std::string> decodeTcpConnection(wire::Bytes& in);

}  // namespace tern::core
