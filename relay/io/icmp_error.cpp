// Reading sock_extended_err control messages; see icmp_error.hpp.
#include "relay/io/icmp_error.hpp"

#include <netinet/in.h>
// linux/errqueue.h uses struct timespec without declaring it.
// clang-format off
#include <ctime>
#include <linux/errqueue.h>
// clang-format on

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>

#include "relay/io/socket_util.hpp"

namespace tern::io {

namespace {

// An IPv4 address as an IPv6 socket reports it (::ffff:a.b.c.d, RFC 4291 §2.5.5.2) becomes
// plain IPv4 again, so the core can tell an ICMPv4 error by its peer's family.
wire::IpAddress unmapped(const wire::IpAddress& ip) noexcept {
  if (ip.isV4()) return ip;
  const std::uint8_t* b = ip.data();
  static constexpr std::array<std::uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0,    0,
                                                                 0, 0, 0, 0, 0xff, 0xff};
  if (std::memcmp(b, kMappedPrefix.data(), kMappedPrefix.size()) != 0) return ip;
  return wire::IpAddress::v4({b[12], b[13], b[14], b[15]});
}

// The address in a sockaddr of `length` bytes, if it is a complete IPv4 or IPv6 one.
std::optional<wire::SocketAddress> addressIn(const void* data, std::size_t length) noexcept {
  sockaddr_storage ss{};
  if (length < sizeof(sa_family_t)) return std::nullopt;
  std::memcpy(&ss, data, std::min(length, sizeof ss));
  if (ss.ss_family == AF_INET && length >= sizeof(sockaddr_in)) {
    return fromSockaddr(reinterpret_cast<const sockaddr*>(&ss));
  }
  if (ss.ss_family == AF_INET6 && length >= sizeof(sockaddr_in6)) {
    return fromSockaddr(reinterpret_cast<const sockaddr*>(&ss));
  }
  return std::nullopt;
}

bool isErrorControl(const cmsghdr& c) noexcept {
  return (c.cmsg_level == SOL_IP && c.cmsg_type == IP_RECVERR) ||
         (c.cmsg_level == SOL_IPV6 && c.cmsg_type == IPV6_RECVERR);
}

}  // namespace

std::optional<IcmpError> parseIcmpError(const msghdr& message) noexcept {
  // The peer comes from msg_name: the destination of the datagram the ICMP message quotes.
  const auto peer =
      addressIn(message.msg_name, message.msg_name != nullptr ? message.msg_namelen : 0);
  if (!peer) return std::nullopt;
  // CMSG_NXTHDR takes a mutable msghdr; it only reads it.
  auto& m = const_cast<msghdr&>(message);
  for (cmsghdr* c = CMSG_FIRSTHDR(&m); c != nullptr; c = CMSG_NXTHDR(&m, c)) {
    if (!isErrorControl(*c) || c->cmsg_len < CMSG_LEN(sizeof(sock_extended_err))) continue;
    // Copied out: CMSG_DATA promises no alignment for the struct.
    sock_extended_err ee{};
    std::memcpy(&ee, CMSG_DATA(c), sizeof ee);
    if (ee.ee_origin != SO_EE_ORIGIN_ICMP && ee.ee_origin != SO_EE_ORIGIN_ICMP6)
      return std::nullopt;
    IcmpError out;
    out.v4 = ee.ee_origin == SO_EE_ORIGIN_ICMP;
    out.peer = {out.v4 ? unmapped(peer->ip) : peer->ip, peer->port};
    // An ICMPv4 error that still names an IPv6 peer is not one we can have caused.
    if (out.v4 != out.peer.ip.isV4()) return std::nullopt;
    out.type = ee.ee_type;
    out.code = ee.ee_code;
    out.info = ee.ee_info;
    // SO_EE_OFFENDER: the sockaddr right after the struct, AF_UNSPEC when unknown.
    const std::size_t data_length = c->cmsg_len - CMSG_LEN(0);
    if (auto reporter = addressIn(CMSG_DATA(c) + sizeof ee, data_length - sizeof ee)) {
      out.reporter = unmapped(reporter->ip);
    }
    return out;
  }
  return std::nullopt;
}

bool isIcmpReportedErrno(int error) noexcept {
  // icmp_err_convert[] and icmpv6_err_convert() in Linux: what each ICMP error becomes.
  switch (error) {
    case ECONNREFUSED:  // port unreachable
    case EHOSTUNREACH:  // host unreachable, time exceeded, administratively prohibited
    case ENETUNREACH:
    case EHOSTDOWN:
    case ENONET:
    case ENOPROTOOPT:  // protocol unreachable
    case EPROTO:       // parameter problem
    case EACCES:       // ICMPv6 administratively prohibited
    case EMSGSIZE:     // fragmentation needed, packet too big
      return true;
    default:
      return false;
  }
}

}  // namespace tern::io
