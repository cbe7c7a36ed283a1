// Cidr: "ADDRESS/PREFIX" parsing (RFC 4632 §3.1, RFC 4291 §2.3), host-bit clearing and prefix
// matching, the building block of the peer policy's ranges.
#include "relay/wire/cidr.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>

#include "support/addresses.hpp"

namespace {

using tern::wire::Cidr;
using tern::wire::IpAddress;

using tern::test::cidr;
using tern::test::ip;

// The canonical text of a parsed range, or "rejected".
std::string parsed(std::string_view text) {
  auto c = Cidr::parse(text);
  return c ? c->describe() : std::string("rejected");
}

TEST_SUITE_BEGIN("core/cidr");

TEST_CASE("CIDR parses an IPv4 range (RFC 4632 §3.1)") {
  const Cidr c = cidr("10.0.0.0/8");
  CHECK(c.network == ip("10.0.0.0"));
  CHECK(c.prefix == 8);
  CHECK(c.describe() == "10.0.0.0/8");
  CHECK(parsed("100.64.0.0/10") == "100.64.0.0/10");
  CHECK(parsed("255.255.255.255/32") == "255.255.255.255/32");
}

TEST_CASE("CIDR parses an IPv6 range in RFC 5952 form (RFC 4291 §2.3)") {
  const Cidr c = cidr("2001:db8::/32");
  CHECK(c.network == ip("2001:db8::"));
  CHECK(c.prefix == 32);
  CHECK(c.describe() == "2001:db8::/32");
  CHECK(parsed("2001:0DB8:0000::/32") == "2001:db8::/32");
  CHECK(parsed("::ffff:10.0.0.0/104") == "::ffff:10.0.0.0/104");
  CHECK(parsed("64:ff9b::/96") == "64:ff9b::/96");
}

TEST_CASE("CIDR reads a bare address as a single host, /32 or /128") {
  CHECK(cidr("192.0.2.1") == Cidr{ip("192.0.2.1"), 32});
  CHECK(cidr("2001:db8::1") == Cidr{ip("2001:db8::1"), 128});
  CHECK(parsed("::") == "::/128");
  CHECK(parsed("0.0.0.0") == "0.0.0.0/32");
}

TEST_CASE("CIDR accepts /0 as the whole family, never the other family") {
  const Cidr all4 = cidr("0.0.0.0/0");
  CHECK(all4.prefix == 0);
  CHECK(all4.contains(ip("0.0.0.0")));
  CHECK(all4.contains(ip("255.255.255.255")));
  CHECK(all4.contains(ip("8.8.8.8")));
  CHECK_FALSE(all4.contains(ip("::ffff:8.8.8.8")));
  CHECK_FALSE(all4.contains(ip("::")));

  const Cidr all6 = cidr("::/0");
  CHECK(all6.contains(ip("::")));
  CHECK(all6.contains(ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  CHECK(all6.contains(ip("::ffff:8.8.8.8")));
  CHECK_FALSE(all6.contains(ip("8.8.8.8")));
  CHECK_FALSE(all6.contains(ip("0.0.0.0")));

  // Host bits of a /0 are all bits.
  CHECK(parsed("8.8.8.8/0") == "0.0.0.0/0");
  CHECK(parsed("2606:4700::1111/0") == "::/0");
}

TEST_CASE("CIDR /32 and /128 match exactly one address") {
  const Cidr host4 = cidr("192.0.2.1/32");
  CHECK(host4.contains(ip("192.0.2.1")));
  CHECK_FALSE(host4.contains(ip("192.0.2.0")));
  CHECK_FALSE(host4.contains(ip("192.0.2.2")));
  CHECK_FALSE(host4.contains(ip("::ffff:192.0.2.1")));

  const Cidr host6 = cidr("2001:db8::1/128");
  CHECK(host6.contains(ip("2001:db8::1")));
  CHECK_FALSE(host6.contains(ip("2001:db8::")));
  CHECK_FALSE(host6.contains(ip("2001:db8::2")));
  CHECK_FALSE(host6.contains(ip("2001:db8::1:1")));
}

TEST_CASE("CIDR rejects a prefix longer than the address: /33 and /129") {
  CHECK(parsed("10.0.0.0/33") == "rejected");
  CHECK(parsed("10.0.0.0/128") == "rejected");
  CHECK(parsed("10.0.0.0/256") == "rejected");  // would wrap to /0 in a uint8_t
  CHECK(parsed("10.0.0.0/288") == "rejected");  // would wrap to /32
  CHECK(parsed("::/129") == "rejected");
  CHECK(parsed("::/256") == "rejected");
  CHECK(parsed("::/384") == "rejected");  // would wrap to /128
  CHECK(parsed("::/1000") == "rejected");
  CHECK(parsed("::/128") == "::/128");
  CHECK(parsed("10.0.0.0/32") == "10.0.0.0/32");
}

TEST_CASE("CIDR clears host bits instead of rejecting them") {
  CHECK(parsed("10.1.2.3/8") == "10.0.0.0/8");
  CHECK(parsed("192.168.1.255/23") == "192.168.0.0/23");
  CHECK(parsed("172.31.255.255/12") == "172.16.0.0/12");
  CHECK(parsed("169.254.169.254/16") == "169.254.0.0/16");
  CHECK(parsed("255.255.255.255/1") == "128.0.0.0/1");
  CHECK(parsed("2001:db8::1/32") == "2001:db8::/32");
  CHECK(parsed("fe80::1234:5678/10") == "fe80::/10");
  CHECK(parsed("febf:ffff::/10") == "fe80::/10");
  CHECK(parsed("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/127") ==
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127");
  CHECK(parsed("2001:db8::ffff/121") == "2001:db8::ff80/121");
  // The cleared range is the one used for matching.
  const Cidr c = cidr("10.1.2.3/8");
  CHECK(c.network == ip("10.0.0.0"));
  CHECK(c.contains(ip("10.200.0.1")));
}

TEST_CASE("CIDR rejects malformed text") {
  for (std::string_view bad : {
           "",
           "/",
           "/8",                  // no address
           "10.0.0.0/",           // no prefix
           "10.0.0.0/08",         // leading zero, like "010" in a dotted quad
           "10.0.0.0/008",        //
           "::/0128",             //
           "10.0.0.0/-1",         // sign
           "10.0.0.0/+8",         //
           "10.0.0.0/ 8",         // spaces
           " 10.0.0.0/8",         //
           "10.0.0.0/8 ",         //
           "10.0.0.0 /8",         //
           "10.0.0.0/8/8",        // two prefixes
           "10.0.0.0//8",         //
           "10.0.0.0/0x8",        // not decimal
           "10.0.0.0/8a",         //
           "10/8",                // abbreviated IPv4 is not an address here
           "10.0.0/24",           //
           "010.0.0.0/8",         // octal-looking octet
           "[2001:db8::]/32",     // IPv6 brackets belong to host:port, not to ranges
           "[2001:db8::/32]",     //
           "[::1]",               //
           "2001:db8::/32%eth0",  // no zone indices
           "fe80::1%eth0/64",     //
           "2001:db8:::/32",      // bad IPv6
           "example.com/8",       // names are not resolved
       }) {
    CHECK_MESSAGE(!Cidr::parse(bad).has_value(), bad);
  }
}

TEST_CASE("CIDR accepts /0 written as a lone zero") {
  CHECK(parsed("10.0.0.0/0") == "0.0.0.0/0");
  CHECK(parsed("::/0") == "::/0");
}

TEST_CASE("CIDR matches the first and last address and nothing outside (RFC 4632 §3.1)") {
  const Cidr cgnat = cidr("100.64.0.0/10");
  CHECK(cgnat.contains(ip("100.64.0.0")));
  CHECK(cgnat.contains(ip("100.127.255.255")));
  CHECK_FALSE(cgnat.contains(ip("100.63.255.255")));
  CHECK_FALSE(cgnat.contains(ip("100.128.0.0")));

  const Cidr ula = cidr("fc00::/7");
  CHECK(ula.contains(ip("fc00::")));
  CHECK(ula.contains(ip("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  CHECK_FALSE(ula.contains(ip("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
  CHECK_FALSE(ula.contains(ip("fe00::")));

  const Cidr orchid = cidr("2001:10::/28");
  CHECK(orchid.contains(ip("2001:10::")));
  CHECK(orchid.contains(ip("2001:1f:ffff:ffff:ffff:ffff:ffff:ffff")));
  CHECK_FALSE(orchid.contains(ip("2001:f:ffff:ffff:ffff:ffff:ffff:ffff")));
  CHECK_FALSE(orchid.contains(ip("2001:20::")));
}

TEST_CASE("CIDR of() builds a range from an address and clears host bits") {
  auto c = Cidr::of(ip("192.168.77.1"), 16);
  REQUIRE(c.has_value());
  CHECK(c->describe() == "192.168.0.0/16");
  CHECK(Cidr::of(ip("192.168.77.1"), 32)->describe() == "192.168.77.1/32");
  CHECK_FALSE(Cidr::of(ip("192.168.77.1"), 33).has_value());
  CHECK(Cidr::of(ip("2001:db8::1"), 128)->describe() == "2001:db8::1/128");
  CHECK_FALSE(Cidr::of(ip("2001:db8::1"), 129).has_value());
}

TEST_SUITE_END();

}  // namespace
