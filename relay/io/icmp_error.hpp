// ICMP errors Linux queues on a UDP socket with IP_RECVERR / IPV6_RECVERR (ip(7), ipv6(7)):
// the destination unreachable, time exceeded and packet too big messages about datagrams a
// relay socket sent, which RFC 8656 §11.5 passes on to the client. Parsing is kept apart from
// the recvmsg(MSG_ERRQUEUE) call so unit tests feed it hand-made messages of both families.
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <optional>

#include "relay/wire/address.hpp"

namespace tern::io {

struct IcmpError {
  // Where the datagram that caused the error was going (the peer): the kernel takes address
  // and port from the IP and UDP headers quoted in the ICMP message. ICMPv4 errors always
  // come with an IPv4 address, ICMPv6 errors with an IPv6 one.
  wire::SocketAddress peer;
  // Who sent the ICMP message (SO_EE_OFFENDER): the peer itself or a router on the way.
  std::optional<wire::IpAddress> reporter;
  bool v4 = true;  // ICMPv4 (SO_EE_ORIGIN_ICMP) or ICMPv6 (SO_EE_ORIGIN_ICMP6)
  std::uint8_t type = 0;
  std::uint8_t code = 0;
  // ee_info: the next-hop MTU of "fragmentation needed" and "packet too big", else whatever
  // the kernel put there (the pointer of a parameter problem, mostly 0).
  std::uint32_t info = 0;
};

// The ICMP error one message read with recvmsg(MSG_ERRQUEUE) carries, or nothing when it
// carries none: errors of other origins (a local EMSGSIZE on send, timestamps, zero-copy
// completions) or a control message that does not parse.
std::optional<IcmpError> parseIcmpError(const msghdr& message) noexcept;

// Space for the control messages of one error: sock_extended_err and the offender address.
inline constexpr std::size_t kIcmpControlSize = 128;

// errno values a pending ICMP error turns the next recv or send on the socket into (Linux
// reports it once, then clears it). They say nothing about that call's own datagram.
bool isIcmpReportedErrno(int error) noexcept;

}  // namespace tern::io
