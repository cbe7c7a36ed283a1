// Parsing the ICMP errors Linux queues with IP_RECVERR / IPV6_RECVERR (ip(7), ipv6(7)) into
// what RFC 8656 §11.5 passes on, from hand-made recvmsg(MSG_ERRQUEUE) results: no socket.
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
// linux/errqueue.h uses struct timespec without declaring it.
// clang-format off
#include <ctime>
#include <linux/errqueue.h>
// clang-format on

#include <array>
#include <cerrno>
#include <cstring>
#include <optional>

#include "relay/io/icmp_error.hpp"
#include "relay/io/socket_util.hpp"

using namespace tern;

namespace {

wire::SocketAddress address(std::string_view text) { return *wire::SocketAddress::parse(text); }

// One message as recvmsg(MSG_ERRQUEUE) fills it: msg_name, and one error control message of
// `level`/`type` holding `error` and then the offender's sockaddr.
class ErrorMessage {
 public:
  ErrorMessage(int level, int type, const sock_extended_err& error,
               std::optional<wire::SocketAddress> peer,
               std::optional<wire::SocketAddress> offender) {
    if (peer) message_.msg_namelen = io::toSockaddr(*peer, name_);
    message_.msg_name = &name_;
    sockaddr_storage offender_address{};
    socklen_t offender_length = sizeof(sockaddr_in6);  // AF_UNSPEC (all zero) when unknown
    if (offender) offender_length = io::toSockaddr(*offender, offender_address);
    message_.msg_control = control_.data();
    message_.msg_controllen = CMSG_SPACE(sizeof error + offender_length);
    REQUIRE(message_.msg_controllen <= control_.size());
    cmsghdr* c = CMSG_FIRSTHDR(&message_);
    c->cmsg_level = level;
    c->cmsg_type = type;
    c->cmsg_len = CMSG_LEN(sizeof error + offender_length);
    std::memcpy(CMSG_DATA(c), &error, sizeof error);
    std::memcpy(CMSG_DATA(c) + sizeof error, &offender_address, offender_length);
  }
  msghdr& get() noexcept { return message_; }

 private:
  sockaddr_storage name_{};
  alignas(cmsghdr) std::array<std::uint8_t, io::kIcmpControlSize> control_{};
  msghdr message_{};
};

sock_extended_err icmpError(std::uint8_t origin, std::uint8_t type, std::uint8_t code,
                            std::uint32_t info = 0) {
  sock_extended_err e{};
  e.ee_errno = ECONNREFUSED;
  e.ee_origin = origin;
  e.ee_type = type;
  e.ee_code = code;
  e.ee_info = info;
  return e;
}

}  // namespace

TEST_CASE("an ICMPv4 port unreachable names the peer the datagram went to (ip(7) IP_RECVERR)") {
  ErrorMessage m(SOL_IP, IP_RECVERR, icmpError(SO_EE_ORIGIN_ICMP, 3, 3), address("192.0.2.9:5000"),
                 address("192.0.2.9:0"));
  const auto e = io::parseIcmpError(m.get());
  REQUIRE(e.has_value());
  CHECK(e->v4);
  CHECK(e->peer == address("192.0.2.9:5000"));
  CHECK(e->type == 3);
  CHECK(e->code == 3);
  CHECK(e->info == 0);
  REQUIRE(e->reporter.has_value());
  CHECK(*e->reporter == address("192.0.2.9:0").ip);
}

TEST_CASE("an ICMPv4 fragmentation needed carries the next-hop MTU in ee_info (RFC 1191 §4)") {
  ErrorMessage m(SOL_IP, IP_RECVERR, icmpError(SO_EE_ORIGIN_ICMP, 3, 4, 1400),
                 address("192.0.2.9:5000"), address("198.51.100.1:0"));
  const auto e = io::parseIcmpError(m.get());
  REQUIRE(e.has_value());
  CHECK(e->code == 4);
  CHECK(e->info == 1400);
  // A router on the way reported it, not the peer.
  CHECK(*e->reporter == address("198.51.100.1:0").ip);
}

TEST_CASE(
    "an ICMPv6 packet too big names the IPv6 peer and the MTU (ipv6(7) IPV6_RECVERR, RFC 4443 "
    "§3.2)") {
  ErrorMessage m(SOL_IPV6, IPV6_RECVERR, icmpError(SO_EE_ORIGIN_ICMP6, 2, 0, 1280),
                 address("[2001:db8::9]:6000"), address("[2001:db8::1]:0"));
  const auto e = io::parseIcmpError(m.get());
  REQUIRE(e.has_value());
  CHECK_FALSE(e->v4);
  CHECK(e->peer == address("[2001:db8::9]:6000"));
  CHECK(e->type == 2);
  CHECK(e->info == 1280);
  CHECK(*e->reporter == address("[2001:db8::1]:0").ip);
}

TEST_CASE("an ICMPv6 port unreachable on loopback") {
  ErrorMessage m(SOL_IPV6, IPV6_RECVERR, icmpError(SO_EE_ORIGIN_ICMP6, 1, 4),
                 address("[::1]:61234"), address("[::1]:0"));
  const auto e = io::parseIcmpError(m.get());
  REQUIRE(e.has_value());
  CHECK(e->peer == address("[::1]:61234"));
  CHECK(e->type == 1);
  CHECK(e->code == 4);
}

TEST_CASE(
    "an ICMPv4 error on an IPv6 socket names an IPv4 peer, not a mapped one (RFC 4291 §2.5.5.2)") {
  ErrorMessage m(SOL_IPV6, IPV6_RECVERR, icmpError(SO_EE_ORIGIN_ICMP, 3, 1),
                 address("[::ffff:192.0.2.9]:5000"), address("[::ffff:198.51.100.1]:0"));
  const auto e = io::parseIcmpError(m.get());
  REQUIRE(e.has_value());
  CHECK(e->v4);
  CHECK(e->peer == address("192.0.2.9:5000"));
  CHECK(*e->reporter == address("198.51.100.1:0").ip);
}

TEST_CASE("an unknown offender leaves the reporter empty") {
  ErrorMessage m(SOL_IP, IP_RECVERR, icmpError(SO_EE_ORIGIN_ICMP, 11, 0), address("192.0.2.9:5000"),
                 std::nullopt);
  const auto e = io::parseIcmpError(m.get());
  REQUIRE(e.has_value());
  CHECK(e->type == 11);
  CHECK_FALSE(e->reporter.has_value());
}

TEST_CASE("errors that are not ICMP are not reported") {
  SUBCASE("a local EMSGSIZE on send (SO_EE_ORIGIN_LOCAL)") {
    auto local = icmpError(SO_EE_ORIGIN_LOCAL, 0, 0, 1500);
    local.ee_errno = EMSGSIZE;
    ErrorMessage m(SOL_IP, IP_RECVERR, local, address("192.0.2.9:5000"), std::nullopt);
    CHECK_FALSE(io::parseIcmpError(m.get()).has_value());
  }
  SUBCASE("another control message") {
    ErrorMessage m(SOL_IP, IP_TTL, icmpError(SO_EE_ORIGIN_ICMP, 3, 3), address("192.0.2.9:5000"),
                   std::nullopt);
    CHECK_FALSE(io::parseIcmpError(m.get()).has_value());
  }
  SUBCASE("no peer address") {
    ErrorMessage m(SOL_IP, IP_RECVERR, icmpError(SO_EE_ORIGIN_ICMP, 3, 3), std::nullopt,
                   std::nullopt);
    CHECK_FALSE(io::parseIcmpError(m.get()).has_value());
  }
  SUBCASE("an ICMPv4 error naming an IPv6 peer") {
    ErrorMessage m(SOL_IPV6, IPV6_RECVERR, icmpError(SO_EE_ORIGIN_ICMP, 3, 3),
                   address("[2001:db8::9]:5000"), std::nullopt);
    CHECK_FALSE(io::parseIcmpError(m.get()).has_value());
  }
  SUBCASE("a control message too short for sock_extended_err") {
    ErrorMessage m(SOL_IP, IP_RECVERR, icmpError(SO_EE_ORIGIN_ICMP, 3, 3),
                   address("192.0.2.9:5000"), std::nullopt);
    CMSG_FIRSTHDR(&m.get())->cmsg_len = CMSG_LEN(sizeof(sock_extended_err) - 1);
    CHECK_FALSE(io::parseIcmpError(m.get()).has_value());
  }
  SUBCASE("no control message") {
    ErrorMessage m(SOL_IP, IP_RECVERR, icmpError(SO_EE_ORIGIN_ICMP, 3, 3),
                   address("192.0.2.9:5000"), std::nullopt);
    m.get().msg_controllen = 0;
    CHECK_FALSE(io::parseIcmpError(m.get()).has_value());
  }
}

TEST_CASE("the errno values a pending ICMP error turns a send or receive into") {
  for (int e : {ECONNREFUSED, EHOSTUNREACH, ENETUNREACH, EHOSTDOWN, EMSGSIZE, EPROTO, EACCES}) {
    CHECK(io::isIcmpReportedErrno(e));
  }
  for (int e : {0, EAGAIN, EWOULDBLOCK, EINTR, EBADF, ENOBUFS, EINVAL})
    CHECK_FALSE(io::isIcmpReportedErrno(e));
}
