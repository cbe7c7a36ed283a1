// DTLS sessions that stay with the old process of an upgrade (docs/upgrade.md): OpenSSL
// cannot export a DTLS session, and every DTLS client shares one UDP listener, so the new
// process, which reads that listener now, passes each datagram from a session it does not
// hold to the old process over a socket pair, and the old process answers with sendto() on
// its own copy of the listener. This file is the sans-I/O part: the frame on that socket
// pair and the new process's table of addresses to pass on.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "relay/wire/address.hpp"
#include "relay/wire/bytes.hpp"

namespace tern::io {

// One live DTLS session of the old process: the client's address and which of the old
// worker's DTLS listeners (its position among them) the session is on.
struct DtlsSessionRef {
  std::uint8_t listener = 0;
  wire::SocketAddress client;
  friend bool operator==(const DtlsSessionRef&, const DtlsSessionRef&) noexcept = default;
};

// What a frame says. kDatagram (new -> old): a datagram the client sent, as the payload.
// kForget (old -> new): that session ended; its address is the new process's from now on.
enum class ForwardKind : std::uint8_t { kDatagram = 1, kForget = 2 };

//  0        1          2        3-4    5..       then
// +------+----------+--------+------+----------+----------------------------+
// | kind | listener | family | port | IP 4|16  | payload (kDatagram only)   |
// +------+----------+--------+------+----------+----------------------------+
// family 4 or 6, port and IP in network order. One frame per SOCK_SEQPACKET message.
struct ForwardHeader {
  ForwardKind kind = ForwardKind::kDatagram;
  DtlsSessionRef session;
};
inline constexpr std::size_t kMaxForwardHeader = 21;

// Writes the header (no payload) into `out`; its length.
std::size_t encodeForwardHeader(const ForwardHeader& header,
                                std::array<std::uint8_t, kMaxForwardHeader>& out) noexcept;
// A frame's header and payload; nullopt for a frame that is not one (dropped by the caller).
struct ForwardFrame {
  ForwardHeader header;
  wire::Bytes payload;
};
std::optional<ForwardFrame> decodeForwardFrame(wire::Bytes frame) noexcept;

// The address part (family, port, IP) alone, for the upgrade bundle's DTLS section.
void putForwardAddress(const wire::SocketAddress& address, std::vector<std::uint8_t>& out);
bool takeForwardAddress(wire::Bytes& in, wire::SocketAddress& address) noexcept;

// The new process's table: which (listener socket, client address) belongs to a session of
// the old process, and over which socket pair (channel) its datagrams go. Filled once when
// the worker starts, then only shrinks; find() is a binary search that allocates nothing.
class ForwardTable {
 public:
  struct Entry {
    std::uint32_t socket;  // the new worker's DTLS listener (UdpListener::id())
    wire::SocketAddress client;
    std::uint8_t listener;  // the same listener as the old worker numbers it
    std::uint16_t channel;  // which socket pair
  };

  void add(const Entry& entry);
  void seal();  // after the last add(): sorts for find()
  const Entry* find(std::uint32_t socket, const wire::SocketAddress& client) const noexcept;
  // The old process says the session ended; true if it was in the table.
  bool forget(std::uint16_t channel, const DtlsSessionRef& session) noexcept;
  // The socket pair closed: every session it carried is the new process's now.
  std::size_t forgetChannel(std::uint16_t channel) noexcept;
  std::size_t size() const noexcept { return entries_.size(); }

 private:
  std::vector<Entry> entries_;
};

}  // namespace tern::io
