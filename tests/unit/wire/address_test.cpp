// IpAddress and SocketAddress text forms: parsing of RFC 4291 §2.2 and dotted-quad text, and
// the canonical IPv6 output of RFC 5952 §4.
#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <string>

#include "relay/wire/address.hpp"

namespace {

using tern::wire::AddressFamily;
using tern::wire::IpAddress;
using tern::wire::SocketAddress;

std::string canonical(std::string_view text) {
  auto a = IpAddress::parse(text);
  REQUIRE_MESSAGE(a.has_value(), text);
  return a->toString();
}

TEST_CASE("parses dotted-quad IPv4 addresses") {
  auto a = IpAddress::parse("192.0.2.1");
  REQUIRE(a.has_value());
  CHECK(a->isV4());
  CHECK(a->family() == AddressFamily::kIPv4);
  CHECK(a->size() == 4);
  CHECK(a->data()[0] == 192);
  CHECK(a->data()[3] == 1);
  CHECK(*a == IpAddress::v4(0xC0000201));
  CHECK(*a == IpAddress::v4({192, 0, 2, 1}));
  CHECK(a->toString() == "192.0.2.1");
  CHECK(canonical("0.0.0.0") == "0.0.0.0");
  CHECK(canonical("255.255.255.255") == "255.255.255.255");
  CHECK(IpAddress::parse("0.0.0.0")->isUnspecified());
  CHECK_FALSE(IpAddress::parse("0.0.0.1")->isUnspecified());
  CHECK(IpAddress{} == *IpAddress::parse("0.0.0.0"));
}

TEST_CASE("rejects malformed IPv4 text, including leading zeros") {
  for (auto text : {"", "1.2.3", "1.2.3.4.5", "256.1.1.1", "1.2.3.256", "01.2.3.4", "1.2.3.04",
                    "1.2.3.4 ", " 1.2.3.4", "1..2.3", "1.2.3.", ".1.2.3", "1.2.3.-4", "+1.2.3.4",
                    "1234.1.1.1", "a.b.c.d", "1.2.3.4/24", "0x1.2.3.4"}) {
    CAPTURE(text);
    CHECK_FALSE(IpAddress::parse(text).has_value());
  }
}

TEST_CASE("prints IPv6 in RFC 5952 canonical form (RFC 5952 §4)") {
  // §4.2.1: the longest run of zero groups is "::".
  CHECK(canonical("2001:db8:0:0:0:0:0:1") == "2001:db8::1");
  CHECK(canonical("2001:0db8:0000:0000:0000:0000:0000:0001") == "2001:db8::1");
  CHECK(canonical("2001:0:0:1:0:0:0:1") == "2001:0:0:1::1");
  // §4.2.3: of equal runs, the first is compressed.
  CHECK(canonical("2001:db8:0:0:1:0:0:1") == "2001:db8::1:0:0:1");
  CHECK(canonical("1:0:0:2:0:0:3:4") == "1::2:0:0:3:4");
  // §4.2.2: a single zero group is not compressed.
  CHECK(canonical("2001:db8:0:1:1:1:1:1") == "2001:db8:0:1:1:1:1:1");
  CHECK(canonical("0:1:2:3:4:5:6:7") == "0:1:2:3:4:5:6:7");
  // §4.1: no leading zeros; §4.3: lower case.
  CHECK(canonical("2001:DB8::ABCD:00EF") == "2001:db8::abcd:ef");
  // Runs at either end.
  CHECK(canonical("::") == "::");
  CHECK(canonical("0:0:0:0:0:0:0:0") == "::");
  CHECK(canonical("::1") == "::1");
  CHECK(canonical("1::") == "1::");
  CHECK(canonical("0:0:1::") == "0:0:1::");
  CHECK(canonical("1:2:3:4:5:6:7:8") == "1:2:3:4:5:6:7:8");
  CHECK(canonical("fe80::1:0:0:0") == "fe80::1:0:0:0");
}

TEST_CASE("parses the RFC 4291 §2.2 forms, including an embedded IPv4 tail") {
  auto mapped = IpAddress::parse("::ffff:1.2.3.4");
  REQUIRE(mapped.has_value());
  CHECK(mapped->isV6());
  const std::array<std::uint8_t, 16> expected{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 1, 2, 3, 4};
  CHECK(*mapped == IpAddress::v6(expected));
  // RFC 5952 §5: IPv4-mapped addresses keep the dotted-quad tail.
  CHECK(mapped->toString() == "::ffff:1.2.3.4");
  CHECK(IpAddress::parse(mapped->toString()) == mapped);
  CHECK(IpAddress::parse("1:2:3:4:5:6:1.2.3.4").has_value());
  CHECK(IpAddress::parse("::1.2.3.4").has_value());
  CHECK(canonical("1:2:3:4:5:6:7::") == "1:2:3:4:5:6:7:0");
  CHECK(canonical("::2:3:4:5:6:7:8") == "0:2:3:4:5:6:7:8");
  CHECK(IpAddress::parse("::")->isUnspecified());
  CHECK(IpAddress::parse("::") != IpAddress::parse("0.0.0.0"));  // families differ
}

TEST_CASE("rejects malformed IPv6 text") {
  for (auto text : {":::", "1::2::3", "::1::", ":1::", "1::2:", "1:2:3:4:5:6:7", "1:2:3:4:5:6:7:8:9",
                    "1:2:3:4:5:6:7:8::", "::1:2:3:4:5:6:7:8", "12345::", "g::", "1:2:3:4:5:6:7:1.2.3.4",
                    "1.2.3.4::", "::1.2.3", "::256.1.1.1", "[::1]", "::1%eth0", "1:", ":", "0x1::",
                    "1:2:3:4:5:6:1.2.3.4:7"}) {
    CAPTURE(text);
    CHECK_FALSE(IpAddress::parse(text).has_value());
  }
}

TEST_CASE("IPv6 text round-trips through parse and toString") {
  for (auto text : {"::", "::1", "1::", "2001:db8::1", "2001:db8:0:1:1:1:1:1", "fe80::1:0:0:0",
                    "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db8:1234:5678:11:2233:4455:6677"}) {
    CAPTURE(text);
    CHECK(canonical(text) == text);
  }
}

TEST_CASE("parses socket addresses with brackets around IPv6") {
  auto v4 = SocketAddress::parse("192.0.2.1:3478");
  REQUIRE(v4.has_value());
  CHECK(v4->ip == *IpAddress::parse("192.0.2.1"));
  CHECK(v4->port == 3478);
  CHECK(v4->toString() == "192.0.2.1:3478");

  auto v6 = SocketAddress::parse("[2001:DB8:0::1]:443");
  REQUIRE(v6.has_value());
  CHECK(v6->ip == *IpAddress::parse("2001:db8::1"));
  CHECK(v6->port == 443);
  CHECK(v6->toString() == "[2001:db8::1]:443");

  CHECK(SocketAddress::parse("0.0.0.0:0")->port == 0);
  CHECK(SocketAddress::parse("[::]:65535")->port == 65535);
  CHECK(SocketAddress::parse("[::]:65535")->toString() == "[::]:65535");
}

TEST_CASE("rejects malformed socket addresses") {
  for (auto text : {"", "192.0.2.1", "192.0.2.1:", ":80", "192.0.2.1:65536", "192.0.2.1:99999999999",
                    "192.0.2.1:-1", "192.0.2.1:+80", "192.0.2.1:80a", "192.0.2.1: 80", "[::1]",
                    "[::1]:", "[::1]80", "::1:80", "2001:db8::1:80", "[1.2.3.4]:80", "[::1:80",
                    "::1]:80", "256.0.0.1:80", "host.example:80"}) {
    CAPTURE(text);
    CHECK_FALSE(SocketAddress::parse(text).has_value());
  }
}

TEST_CASE("addresses order by family, then bytes, then port") {
  const auto a = *SocketAddress::parse("10.0.0.1:5");
  const auto b = *SocketAddress::parse("10.0.0.1:6");
  const auto c = *SocketAddress::parse("10.0.0.2:1");
  const auto d = *SocketAddress::parse("[::1]:1");
  CHECK(a < b);
  CHECK(b < c);
  CHECK(c < d);
  CHECK(a == *SocketAddress::parse("10.0.0.1:5"));
}

}  // namespace
