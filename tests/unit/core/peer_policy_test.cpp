// PeerPolicy: which peers a TURN client may reach (RFC 8656 §21, DESIGN.md §4). Covers every
// known bypass of coturn's CVE-2020-26262 fix, every default range at its edges, operator
// --allow-peer / --deny-peer and the relay's own addresses.
#include "relay/core/peer_policy.hpp"

#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "relay/wire/cidr.hpp"
#include "support/addresses.hpp"

namespace {

using tern::wire::Cidr;
using tern::core::PeerPolicy;
using tern::core::PeerPolicyOptions;
using tern::core::PeerVerdict;
using tern::core::ReservedRange;
using tern::wire::IpAddress;
using tern::wire::SocketAddress;

using tern::test::cidr;
using tern::test::ip;

SocketAddress at(std::string_view host, std::uint16_t port) {
  return SocketAddress{ip(host), port};
}

// Verdicts print as their describe() text in doctest failure messages.
std::string verdict(const PeerPolicy& policy, std::string_view address) {
  return std::string(describe(policy.checkPeerIp(ip(address))));
}
std::string verdict(const PeerPolicy& policy, std::string_view host, std::uint16_t port) {
  return std::string(describe(policy.checkPeer(at(host, port))));
}

const std::string kAllowed{describe(PeerVerdict::kAllowed)};
const std::string kDeniedByDefault{describe(PeerVerdict::kDeniedByDefault)};
const std::string kDeniedByOperator{describe(PeerVerdict::kDeniedByOperator)};
const std::string kOwnAddress{describe(PeerVerdict::kOwnAddress)};
const std::string kUnspecified{describe(PeerVerdict::kUnspecified)};

const PeerPolicy& defaults() {
  static const PeerPolicy policy{PeerPolicyOptions{}};
  return policy;
}

PeerPolicy policyWith(std::vector<std::string_view> allow, std::vector<std::string_view> deny,
                      std::vector<std::string_view> own = {}) {
  PeerPolicyOptions options;
  for (auto text : allow) options.allow.push_back(cidr(text));
  for (auto text : deny) options.deny.push_back(cidr(text));
  for (auto text : own) options.own_addresses.push_back(ip(text));
  return PeerPolicy{std::move(options)};
}

TEST_SUITE_BEGIN("core/peer_policy");

// --- The CVE-2020-26262 family -------------------------------------------------------------

TEST_CASE("0.0.0.0 is never a peer (CVE-2020-26262)") {
  CHECK(verdict(defaults(), "0.0.0.0") == kUnspecified);
  CHECK(verdict(defaults(), "0.0.0.0", 3478) == kUnspecified);
  CHECK(defaults().checkPeerIp(ip("0.0.0.0")) == PeerVerdict::kUnspecified);
}

TEST_CASE("[::] is never a peer (CVE-2020-26262)") {
  CHECK(verdict(defaults(), "::") == kUnspecified);
  CHECK(verdict(defaults(), "::", 3478) == kUnspecified);
}

TEST_CASE("::ffff:0.0.0.0 is the unspecified peer once normalised (CVE-2020-26262 bypass)") {
  CHECK(verdict(defaults(), "::ffff:0.0.0.0") == kUnspecified);
  CHECK(verdict(defaults(), "::ffff:0.0.0.0", 3478) == kUnspecified);
}

TEST_CASE("0.0.0.1 and the rest of 0.0.0.0/8 are denied peers (RFC 1122 §3.2.1.3)") {
  CHECK(verdict(defaults(), "0.0.0.1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "0.1.2.3") == kDeniedByDefault);
  CHECK(verdict(defaults(), "0.255.255.255") == kDeniedByDefault);
  CHECK(verdict(defaults(), "::ffff:0.0.0.1") == kDeniedByDefault);
}

TEST_CASE("[::1] is a loopback peer, denied by default (RFC 4291 §2.5.3)") {
  CHECK(verdict(defaults(), "::1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "::1", 3478) == kDeniedByDefault);
  CHECK(verdict(defaults(), "0:0:0:0:0:0:0:1") == kDeniedByDefault);
}

TEST_CASE("IPv4-mapped peer ::ffff:127.0.0.1 meets the IPv4 loopback rule (RFC 4291 §2.5.5.2)") {
  CHECK(verdict(defaults(), "::ffff:127.0.0.1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "::ffff:7f00:1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "::ffff:127.0.0.1", 3478) == kDeniedByDefault);
  CHECK(verdict(defaults(), "::ffff:127.255.255.255") == kDeniedByDefault);
}

TEST_CASE("IPv4-mapped peer ::ffff:10.0.0.1 meets the RFC 1918 rule (RFC 4291 §2.5.5.2)") {
  CHECK(verdict(defaults(), "::ffff:10.0.0.1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "::ffff:172.16.0.1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "::ffff:192.168.1.1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "::ffff:100.64.0.1") == kDeniedByDefault);
}

TEST_CASE("IPv4-compatible peer ::127.0.0.1 is normalised to loopback (RFC 4291 §2.5.5.1)") {
  CHECK(verdict(defaults(), "::127.0.0.1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "::7f00:1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "::10.0.0.1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "::169.254.169.254") == kDeniedByDefault);
  CHECK(verdict(defaults(), "::0.0.0.2") == kDeniedByDefault);  // 0.0.0.2, this network
}

TEST_CASE("cloud metadata peer 169.254.169.254 is denied in every form (RFC 3927)") {
  CHECK(verdict(defaults(), "169.254.169.254") == kDeniedByDefault);
  CHECK(verdict(defaults(), "169.254.169.254", 80) == kDeniedByDefault);
  CHECK(verdict(defaults(), "::ffff:169.254.169.254") == kDeniedByDefault);
  CHECK(verdict(defaults(), "::ffff:a9fe:a9fe") == kDeniedByDefault);
  CHECK(verdict(defaults(), "::169.254.169.254") == kDeniedByDefault);
  // AWS also serves it on fd00:ec2::254 (a unique local address).
  CHECK(verdict(defaults(), "fd00:ec2::254") == kDeniedByDefault);
}

TEST_CASE("link-local fe80::1 and unique local fc00::1 peers are denied (RFC 4291, RFC 4193)") {
  CHECK(verdict(defaults(), "fe80::1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "fc00::1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "fd12:3456:789a::1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "fec0::1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "ff02::1") == kDeniedByDefault);
}

TEST_CASE("NAT64 peer 64:ff9b::a00:1, i.e. 10.0.0.1 behind a translator, is denied (RFC 6052)") {
  CHECK(verdict(defaults(), "64:ff9b::a00:1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "64:ff9b::10.0.0.1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "64:ff9b::127.0.0.1") == kDeniedByDefault);
  // Even a public IPv4 address behind NAT64 is denied by default: the operator opts in.
  CHECK(verdict(defaults(), "64:ff9b::8.8.8.8") == kDeniedByDefault);
  CHECK(verdict(defaults(), "64:ff9b:1::a00:1") == kDeniedByDefault);  // RFC 8215
}

TEST_CASE("6to4 peer 2002:0a00:0001::, i.e. 10.0.0.1, is denied (RFC 3056)") {
  CHECK(verdict(defaults(), "2002:0a00:0001::") == kDeniedByDefault);
  CHECK(verdict(defaults(), "2002:7f00:1::1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "2002:808:808::1") == kDeniedByDefault);
}

TEST_CASE("Teredo peer 2001:0:: is denied (RFC 4380)") {
  CHECK(verdict(defaults(), "2001:0::") == kDeniedByDefault);
  CHECK(verdict(defaults(), "2001:0:4136:e378:8000:63bf:3fff:fdd2") == kDeniedByDefault);
}

TEST_CASE("IPv4-translated peer ::ffff:0:10.0.0.1 is denied (RFC 2765 §2.1)") {
  CHECK(verdict(defaults(), "::ffff:0:10.0.0.1") == kDeniedByDefault);
  CHECK(verdict(defaults(), "::ffff:0:8.8.8.8") == kDeniedByDefault);
}

// --- Normalisation ----------------------------------------------------------------------

TEST_CASE(
    "peer normalisation turns IPv4-mapped and IPv4-compatible IPv6 into IPv4 (RFC 4291 §2.5.5)") {
  CHECK(PeerPolicy::normalize(ip("::ffff:127.0.0.1")) == ip("127.0.0.1"));
  CHECK(PeerPolicy::normalize(ip("::ffff:8.8.8.8")) == ip("8.8.8.8"));
  CHECK(PeerPolicy::normalize(ip("::ffff:0.0.0.0")) == ip("0.0.0.0"));
  CHECK(PeerPolicy::normalize(ip("::127.0.0.1")) == ip("127.0.0.1"));
  CHECK(PeerPolicy::normalize(ip("::0.0.0.2")) == ip("0.0.0.2"));
  CHECK(PeerPolicy::normalize(ip("::255.255.255.255")) == ip("255.255.255.255"));
  // :: and ::1 are not IPv4-compatible addresses; they stay IPv6.
  CHECK(PeerPolicy::normalize(ip("::")) == ip("::"));
  CHECK(PeerPolicy::normalize(ip("::1")) == ip("::1"));
  CHECK(PeerPolicy::normalize(ip("::")).isV6());
  // Everything else is unchanged, including other IPv4-embedding forms.
  for (std::string_view unchanged : {"8.8.8.8", "0.0.0.0", "2606:4700::1111", "64:ff9b::a00:1",
                                     "2002:a00:1::", "::ffff:0:10.0.0.1", "::1:0:0:1",
                                     "0:0:0:0:0:fffe:a00:1", "1::ffff:10.0.0.1"}) {
    CHECK_MESSAGE(PeerPolicy::normalize(ip(unchanged)) == ip(unchanged), unchanged);
  }
}

TEST_CASE("peer normalisation converts IPv4-mapped and -compatible ranges of /96 and longer") {
  CHECK(PeerPolicy::normalize(cidr("::ffff:10.0.0.0/104")) == cidr("10.0.0.0/8"));
  CHECK(PeerPolicy::normalize(cidr("::ffff:0:0/96")) == cidr("0.0.0.0/0"));
  CHECK(PeerPolicy::normalize(cidr("::ffff:8.8.8.8/128")) == cidr("8.8.8.8/32"));
  CHECK(PeerPolicy::normalize(cidr("::127.0.0.0/104")) == cidr("127.0.0.0/8"));
  // Ranges that hold :: or ::1 stay IPv6, so they still match those two addresses.
  CHECK(PeerPolicy::normalize(cidr("::/96")) == cidr("::/96"));
  CHECK(PeerPolicy::normalize(cidr("::/127")) == cidr("::/127"));
  CHECK(PeerPolicy::normalize(cidr("::1/128")) == cidr("::1/128"));
  // Shorter prefixes, other IPv6 and IPv4 ranges are unchanged.
  CHECK(PeerPolicy::normalize(cidr("::ffff:0:0/95")) == cidr("::ffff:0:0/95"));
  CHECK(PeerPolicy::normalize(cidr("::/0")) == cidr("::/0"));
  CHECK(PeerPolicy::normalize(cidr("2001:db8::/32")) == cidr("2001:db8::/32"));
  CHECK(PeerPolicy::normalize(cidr("10.0.0.0/8")) == cidr("10.0.0.0/8"));
}

// --- The default deny list, edge by edge -------------------------------------------------

struct RangeEdges {
  std::string_view range;
  std::string_view first, last;
  std::vector<std::string_view> public_neighbours;  // just outside; empty if none is public
};

// One row per default range: its first and last address are denied, and the adjacent
// addresses outside it are allowed wherever they are public.
const std::vector<RangeEdges>& defaultRangeEdges() {
  // clang-format off
  static const std::vector<RangeEdges> rows = {
      {"0.0.0.0/8", "0.0.0.0", "0.255.255.255", {"1.0.0.0"}},
      {"10.0.0.0/8", "10.0.0.0", "10.255.255.255", {"9.255.255.255", "11.0.0.0"}},
      {"100.64.0.0/10", "100.64.0.0", "100.127.255.255", {"100.63.255.255", "100.128.0.0"}},
      {"127.0.0.0/8", "127.0.0.0", "127.255.255.255", {"126.255.255.255", "128.0.0.0"}},
      {"169.254.0.0/16", "169.254.0.0", "169.254.255.255", {"169.253.255.255", "169.255.0.0"}},
      {"172.16.0.0/12", "172.16.0.0", "172.31.255.255", {"172.15.255.255", "172.32.0.0"}},
      {"192.0.0.0/24", "192.0.0.0", "192.0.0.255", {"191.255.255.255", "192.0.1.0"}},
      {"192.0.2.0/24", "192.0.2.0", "192.0.2.255", {"192.0.1.255", "192.0.3.0"}},
      {"192.88.99.0/24", "192.88.99.0", "192.88.99.255", {"192.88.98.255", "192.88.100.0"}},
      {"192.168.0.0/16", "192.168.0.0", "192.168.255.255", {"192.167.255.255", "192.169.0.0"}},
      {"198.18.0.0/15", "198.18.0.0", "198.19.255.255", {"198.17.255.255", "198.20.0.0"}},
      {"198.51.100.0/24", "198.51.100.0", "198.51.100.255", {"198.51.99.255", "198.51.101.0"}},
      {"203.0.113.0/24", "203.0.113.0", "203.0.113.255", {"203.0.112.255", "203.0.114.0"}},
      {"224.0.0.0/4", "224.0.0.0", "239.255.255.255", {"223.255.255.255"}},
      {"255.255.255.255/32", "255.255.255.255", "255.255.255.255", {}},
      {"240.0.0.0/4", "240.0.0.0", "255.255.255.254", {}},

      {"::/128", "::", "::", {}},
      {"::1/128", "::1", "::1", {}},
      {"::ffff:0.0.0.0/96", "::ffff:0.0.0.0", "::ffff:255.255.255.255", {}},
      {"::ffff:0:0:0/96", "::ffff:0:0.0.0.0", "::ffff:0:255.255.255.255", {}},
      {"64:ff9b::/96", "64:ff9b::", "64:ff9b::ffff:ffff", {}},
      {"64:ff9b:1::/48", "64:ff9b:1::", "64:ff9b:1:ffff:ffff:ffff:ffff:ffff", {}},
      {"100::/64", "100::", "100::ffff:ffff:ffff:ffff", {}},
      {"2001::/32", "2001::", "2001:0:ffff:ffff:ffff:ffff:ffff:ffff",
       {"2000:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2001:1::"}},
      {"2001:2::/48", "2001:2::", "2001:2:0:ffff:ffff:ffff:ffff:ffff",
       {"2001:1:ffff:ffff:ffff:ffff:ffff:ffff", "2001:2:1::"}},
      {"2001:10::/28", "2001:10::", "2001:1f:ffff:ffff:ffff:ffff:ffff:ffff",
       {"2001:f:ffff:ffff:ffff:ffff:ffff:ffff"}},  // above it is ORCHIDv2
      {"2001:20::/28", "2001:20::", "2001:2f:ffff:ffff:ffff:ffff:ffff:ffff", {"2001:30::"}},
      {"2001:db8::/32", "2001:db8::", "2001:db8:ffff:ffff:ffff:ffff:ffff:ffff",
       {"2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", "2001:db9::"}},
      {"2002::/16", "2002::", "2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
       {"2001:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "2003::"}},
      {"3fff::/20", "3fff::", "3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff",
       {"3ffe:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "3fff:1000::"}},
      {"5f00::/16", "5f00::", "5f00:ffff:ffff:ffff:ffff:ffff:ffff:ffff", {}},
      {"fc00::/7", "fc00::", "fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", {}},
      {"fe80::/10", "fe80::", "febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", {}},
      {"fec0::/10", "fec0::", "feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", {}},
      {"ff00::/8", "ff00::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", {}},
      {"::/3", "::", "1fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", {"2000::"}},
      {"4000::/2", "4000::", "7fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
       {"3fff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"}},
      {"8000::/1", "8000::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", {}},
  };
  // clang-format on
  return rows;
}

TEST_CASE("every default peer range denies its first and last address, not its public neighbours") {
  for (const RangeEdges& row : defaultRangeEdges()) {
    CAPTURE(row.range);
    const Cidr range = cidr(row.range);
    for (std::string_view edge : {row.first, row.last}) {
      CAPTURE(edge);
      CHECK(range.contains(ip(edge)));
      // The unspecified first addresses (0.0.0.0, ::, ::ffff:0.0.0.0) are kUnspecified.
      const PeerVerdict v = defaults().checkPeerIp(ip(edge));
      CHECK((v == PeerVerdict::kDeniedByDefault || v == PeerVerdict::kUnspecified));
      CHECK(defaults().checkPeer(SocketAddress{ip(edge), 50000}) != PeerVerdict::kAllowed);
      CHECK(PeerPolicy::findDefaultDeny(ip(edge)) != nullptr);
    }
    for (std::string_view outside : row.public_neighbours) {
      CAPTURE(outside);
      CHECK_FALSE(range.contains(ip(outside)));
      CHECK(verdict(defaults(), outside) == kAllowed);
      CHECK(PeerPolicy::findDefaultDeny(ip(outside)) == nullptr);
    }
  }
}

TEST_CASE("every default peer range is covered by the edge table, and vice versa") {
  std::set<std::string> listed;
  for (const ReservedRange& entry : PeerPolicy::defaultDenyList()) {
    listed.insert(entry.range.describe());
  }
  std::set<std::string> tested;
  for (const RangeEdges& row : defaultRangeEdges()) tested.insert(std::string(row.range));
  CHECK(listed == tested);
  CHECK(listed.size() == PeerPolicy::defaultDenyList().size());  // no duplicates
}

TEST_CASE("the default peer deny list is parsed, canonical and has a reason with an RFC") {
  REQUIRE(PeerPolicy::defaultDenyList().size() >= 38);
  for (const ReservedRange& entry : PeerPolicy::defaultDenyList()) {
    CAPTURE(entry.range.describe());
    // Host bits are zero: rebuilding the range from its own network changes nothing.
    CHECK(Cidr::of(entry.range.network, entry.range.prefix) == entry.range);
    CHECK(Cidr::parse(entry.range.describe()) == entry.range);
    CHECK(entry.reason.find("RFC ") != std::string_view::npos);
  }
}

TEST_CASE("findDefaultDeny names the narrowest peer rule that denies an address") {
  const ReservedRange* rfc1918 = PeerPolicy::findDefaultDeny(ip("10.1.2.3"));
  REQUIRE(rfc1918 != nullptr);
  CHECK(rfc1918->range == cidr("10.0.0.0/8"));
  CHECK(rfc1918->reason.find("RFC 1918") != std::string_view::npos);

  const ReservedRange* broadcast = PeerPolicy::findDefaultDeny(ip("255.255.255.255"));
  REQUIRE(broadcast != nullptr);
  CHECK(broadcast->range == cidr("255.255.255.255/32"));

  const ReservedRange* loopback6 = PeerPolicy::findDefaultDeny(ip("::1"));
  REQUIRE(loopback6 != nullptr);
  CHECK(loopback6->range == cidr("::1/128"));

  const ReservedRange* ula = PeerPolicy::findDefaultDeny(ip("fd00::1"));
  REQUIRE(ula != nullptr);
  CHECK(ula->range == cidr("fc00::/7"));

  CHECK(PeerPolicy::findDefaultDeny(ip("8.8.8.8")) == nullptr);
  CHECK(PeerPolicy::findDefaultDeny(ip("2606:4700::1111")) == nullptr);
}

TEST_CASE("public peers 8.8.8.8, 1.1.1.1 and 2606:4700::1111 are allowed") {
  for (std::string_view peer : {"8.8.8.8", "1.1.1.1", "2606:4700::1111", "2001:4860:4860::8888",
                                "::ffff:8.8.8.8", "9.9.9.9", "2a00:1450:4001:80e::200e"}) {
    CAPTURE(peer);
    CHECK(verdict(defaults(), peer) == kAllowed);
    CHECK(verdict(defaults(), peer, 3478) == kAllowed);
    CHECK(verdict(defaults(), peer, 1) == kAllowed);
    CHECK(verdict(defaults(), peer, 65535) == kAllowed);
  }
}

// --- Operator ranges -----------------------------------------------------------------------

TEST_CASE("--allow-peer 127.0.0.0/8 opens loopback peers, and nothing else") {
  const PeerPolicy policy = policyWith({"127.0.0.0/8"}, {});
  CHECK(verdict(policy, "127.0.0.1") == kAllowed);
  CHECK(verdict(policy, "127.0.0.1", 8080) == kAllowed);
  CHECK(verdict(policy, "127.255.255.255") == kAllowed);
  CHECK(verdict(policy, "::ffff:127.0.0.1") == kAllowed);  // normalised before matching
  CHECK(verdict(policy, "::127.0.0.1") == kAllowed);
  CHECK(verdict(policy, "::1") == kDeniedByDefault);  // the IPv6 loopback is another range
  CHECK(verdict(policy, "10.0.0.1") == kDeniedByDefault);
  CHECK(verdict(policy, "0.0.0.0") == kUnspecified);
  CHECK(verdict(policy, "8.8.8.8") == kAllowed);
}

TEST_CASE("--deny-peer wins over --allow-peer") {
  const PeerPolicy policy =
      policyWith({"127.0.0.0/8", "10.0.0.0/8"}, {"127.0.0.53/32", "10.9.0.0/16"});
  CHECK(verdict(policy, "127.0.0.1") == kAllowed);
  CHECK(verdict(policy, "127.0.0.53") == kDeniedByOperator);
  CHECK(verdict(policy, "::ffff:127.0.0.53") == kDeniedByOperator);
  CHECK(verdict(policy, "10.8.255.255") == kAllowed);
  CHECK(verdict(policy, "10.9.0.0") == kDeniedByOperator);
  CHECK(verdict(policy, "10.9.255.255", 50000) == kDeniedByOperator);
  CHECK(verdict(policy, "10.10.0.0") == kAllowed);
}

TEST_CASE("--deny-peer also closes public peers") {
  const PeerPolicy policy = policyWith({}, {"8.8.8.0/24", "2606:4700::/32"});
  CHECK(verdict(policy, "8.8.8.8") == kDeniedByOperator);
  CHECK(verdict(policy, "::ffff:8.8.8.8") == kDeniedByOperator);
  CHECK(verdict(policy, "8.8.4.4") == kAllowed);
  CHECK(verdict(policy, "2606:4700::1111") == kDeniedByOperator);
  CHECK(verdict(policy, "2606:4701::1") == kAllowed);
}

TEST_CASE("--deny-peer written as an IPv4-mapped range still denies the IPv4 peers") {
  const PeerPolicy policy = policyWith({}, {"::ffff:8.8.8.0/120"});
  CHECK(verdict(policy, "8.8.8.8") == kDeniedByOperator);
  CHECK(verdict(policy, "::ffff:8.8.8.8") == kDeniedByOperator);
  CHECK(verdict(policy, "8.8.4.4") == kAllowed);
  CHECK(policy.options().deny.front() == cidr("8.8.8.0/24"));
}

TEST_CASE("--allow-peer written as an IPv4-mapped range allows the IPv4 peers") {
  const PeerPolicy policy = policyWith({"::ffff:10.0.0.0/104"}, {});
  CHECK(verdict(policy, "10.1.2.3") == kAllowed);
  CHECK(verdict(policy, "::ffff:10.1.2.3") == kAllowed);
  CHECK(verdict(policy, "172.16.0.1") == kDeniedByDefault);
}

TEST_CASE(
    "unspecified peers stay denied even when 0.0.0.0/0 and ::/0 are allowed (CVE-2020-26262)") {
  const PeerPolicy policy = policyWith({"0.0.0.0/0", "::/0"}, {}, {"0.0.0.0", "::"});
  CHECK(verdict(policy, "0.0.0.0") == kUnspecified);
  CHECK(verdict(policy, "0.0.0.0", 50000) == kUnspecified);
  CHECK(verdict(policy, "::") == kUnspecified);
  CHECK(verdict(policy, "::", 50000) == kUnspecified);
  CHECK(verdict(policy, "::ffff:0.0.0.0") == kUnspecified);
  // Everything else is the operator's call.
  CHECK(verdict(policy, "127.0.0.1") == kAllowed);
  CHECK(verdict(policy, "::1") == kAllowed);
  CHECK(verdict(policy, "0.0.0.1") == kAllowed);
  // A wildcard own address is dropped: it neither exempts nor restricts anything.
  CHECK(policy.options().own_addresses.empty());
  CHECK_FALSE(policy.isOwnAddress(ip("0.0.0.0")));
}

TEST_CASE("an empty peer policy option set denies by default and allows public peers") {
  const PeerPolicy policy = policyWith({}, {});
  CHECK(verdict(policy, "192.168.0.1") == kDeniedByDefault);
  CHECK(verdict(policy, "1.1.1.1") == kAllowed);
}

// --- The relay's own addresses (issue 18: they may only narrow, never widen) -------------

using tern::core::ExternalIp;
using tern::core::LiveRelayPorts;
using tern::core::RelayProtocol;

std::string verdictTcp(const PeerPolicy& policy, std::string_view host, std::uint16_t port) {
  return std::string(describe(policy.checkPeer(at(host, port), RelayProtocol::kTcp)));
}

// Relay IPs 9.9.9.9, 10.0.0.5 and 2001:db8::10 with UDP relay sockets open on port 50000 of
// each and a TCP one on 9.9.9.9:50002.
std::shared_ptr<LiveRelayPorts> liveRelays() {
  auto live = std::make_shared<LiveRelayPorts>(std::vector{ip("9.9.9.9"), ip("10.0.0.5"), ip("2001:db8::10")});
  for (auto host : {"9.9.9.9", "10.0.0.5", "2001:db8::10"}) live->markOpen(RelayProtocol::kUdp, at(host, 50000));
  live->markOpen(RelayProtocol::kTcp, at("9.9.9.9", 50002));
  return live;
}

TEST_CASE("on a public relay IP only relayed addresses open now are peers, of their own protocol") {
  PeerPolicyOptions options;
  auto live = liveRelays();
  options.live_relays = live;
  const PeerPolicy policy{options};
  CHECK(policy.isOwnAddress(ip("9.9.9.9")));  // relay IPs are own addresses without being listed
  // CreatePermission is per IP (RFC 8656 §9): a relay IP is a permitted peer IP...
  CHECK(verdict(policy, "9.9.9.9") == kAllowed);
  // ...but only relayed addresses tern holds open are reachable on it: not another program's
  // port inside the relay range, not a listener, not a port whose allocation has ended.
  CHECK(verdict(policy, "9.9.9.9", 50000) == kAllowed);
  CHECK(verdict(policy, "::ffff:9.9.9.9", 50000) == kAllowed);
  CHECK(verdict(policy, "9.9.9.9", 50077) == kOwnAddress);
  CHECK(verdict(policy, "9.9.9.9", 3478) == kOwnAddress);
  CHECK(verdict(policy, "9.9.9.9", 50002) == kOwnAddress);  // a TCP relay, not a UDP one
  CHECK(verdictTcp(policy, "9.9.9.9", 50002) == kAllowed);
  CHECK(verdictTcp(policy, "9.9.9.9", 50000) == kOwnAddress);  // a UDP relay, not a TCP one
  live->markClosed(RelayProtocol::kUdp, at("9.9.9.9", 50000));
  CHECK(verdict(policy, "9.9.9.9", 50000) == kOwnAddress);
  // A public address that is no own address is any peer.
  CHECK(verdict(policy, "9.9.9.10", 3478) == kAllowed);
}

TEST_CASE("a relay IP in a default-denied range is a peer only where --allow-peer opens it") {
  PeerPolicyOptions options;
  options.live_relays = liveRelays();
  PeerPolicy closed{options};
  // Being an own address no longer widens the policy: 10.0.0.5 is RFC 1918.
  CHECK(verdict(closed, "10.0.0.5") == kDeniedByDefault);
  CHECK(verdict(closed, "10.0.0.5", 50000) == kDeniedByDefault);
  CHECK(verdict(closed, "2001:db8::10", 50000) == kDeniedByDefault);
  options.allow = {cidr("10.0.0.0/8")};
  const PeerPolicy open{options};
  CHECK(verdict(open, "10.0.0.5", 50000) == kAllowed);    // relay to relay
  CHECK(verdict(open, "10.0.0.5", 50001) == kOwnAddress);  // not a relayed address
  CHECK(verdict(open, "10.0.0.5", 3478) == kOwnAddress);
  CHECK(verdict(open, "10.0.0.6", 3478) == kAllowed);  // the operator's range, not ours
}

TEST_CASE("a host address that is no relay IP is never a peer, even inside --allow-peer") {
  PeerPolicyOptions options;
  options.allow = {cidr("127.0.0.0/8"), cidr("198.51.100.0/24"), cidr("::1/128")};
  // A wildcard listener: loopback, a dummy interface's address and ::1 are the host's.
  options.own_addresses = {ip("127.0.0.1"), ip("127.0.0.9"), ip("198.51.100.8"), ip("::1")};
  options.live_relays = liveRelays();
  const PeerPolicy policy{options};
  for (std::string_view own : {"127.0.0.9", "198.51.100.8", "::1", "::ffff:127.0.0.9"}) {
    CAPTURE(own);
    CHECK(verdict(policy, own) == kOwnAddress);
    CHECK(verdict(policy, own, 50000) == kOwnAddress);
    CHECK(verdictTcp(policy, own, 50002) == kOwnAddress);
  }
  CHECK(verdict(policy, "127.0.0.10", 50000) == kAllowed);  // allowed and not the host's
  CHECK(verdict(policy, "198.51.100.9", 50077) == kAllowed);
}

TEST_CASE("an --external-ip stands for its relay IP: relay to relay through the public address") {
  PeerPolicyOptions options;
  options.live_relays = liveRelays();
  options.external_ips = {ExternalIp{ip("8.8.4.4"), ip("10.0.0.5")}, ExternalIp{ip("2001:4860::1"), std::nullopt}};
  const PeerPolicy policy{options};
  CHECK(verdict(policy, "8.8.4.4") == kAllowed);
  CHECK(verdict(policy, "8.8.4.4", 50000) == kAllowed);  // 10.0.0.5:50000 is open
  CHECK(verdict(policy, "8.8.4.4", 50001) == kOwnAddress);
  CHECK(verdict(policy, "8.8.4.4", 3478) == kOwnAddress);
  // Without a private address it stands for every relay IP of its family.
  CHECK(verdict(policy, "2001:4860::1", 50000) == kAllowed);
  CHECK(verdict(policy, "2001:4860::1", 50001) == kOwnAddress);
}

TEST_CASE("without the relays' live ports no own address is a peer") {
  const PeerPolicy policy = policyWith({}, {}, {"9.9.9.9"});
  CHECK(verdict(policy, "9.9.9.9") == kOwnAddress);
  CHECK(verdict(policy, "9.9.9.9", 50000) == kOwnAddress);
}

TEST_CASE("--allow-own-address-peers opens the own addresses but never tern's listening ports") {
  PeerPolicyOptions options;
  options.allow = {cidr("::1/128")};
  options.own_addresses = {ip("::1"), ip("9.9.9.9")};
  options.allow_own_address_peers = true;
  options.listener_ports = {3478, 5349, 9641};
  const PeerPolicy policy{options};
  CHECK(verdict(policy, "::1", 3480) == kAllowed);   // an echo peer beside the relay
  CHECK(verdict(policy, "::1", 60000) == kAllowed);  // a relay port
  CHECK(verdict(policy, "9.9.9.9", 22) == kAllowed);
  for (const std::uint16_t listener : options.listener_ports) {
    CAPTURE(listener);
    CHECK(verdict(policy, "::1", listener) == kOwnAddress);
    CHECK(verdict(policy, "9.9.9.9", listener) == kOwnAddress);
    CHECK(verdict(policy, "::ffff:9.9.9.9", listener) == kOwnAddress);
  }
  // It narrows nothing less than the lists: ::1 needs its --allow-peer, 127.0.0.1 has none.
  options.own_addresses.push_back(ip("127.0.0.1"));
  const PeerPolicy with_loopback{options};
  CHECK(verdict(with_loopback, "127.0.0.1", 3480) == kDeniedByDefault);
  // The unspecified address is never a peer, whatever the options.
  CHECK(verdict(policy, "::", 3480) != kAllowed);
}

TEST_CASE("--deny-peer wins over the relay's own address") {
  PeerPolicyOptions options;
  options.deny = {cidr("9.9.9.0/24")};
  options.live_relays = liveRelays();
  const PeerPolicy policy{options};
  CHECK(verdict(policy, "9.9.9.9") == kDeniedByOperator);
  CHECK(verdict(policy, "9.9.9.9", 50000) == kDeniedByOperator);
}

TEST_CASE("own peer addresses given in IPv4-mapped form are normalised") {
  PeerPolicyOptions options;
  options.own_addresses = {ip("::ffff:10.0.0.5"), ip("10.0.0.5"), ip("::ffff:10.0.0.5")};
  options.allow = {cidr("10.0.0.0/8")};
  const PeerPolicy policy{options};
  REQUIRE(policy.options().own_addresses.size() == 1);
  CHECK(policy.options().own_addresses.front() == ip("10.0.0.5"));
  CHECK(policy.isOwnAddress(ip("10.0.0.5")));
  CHECK(policy.isOwnAddress(ip("::ffff:10.0.0.5")));
  CHECK_FALSE(policy.isOwnAddress(ip("10.0.0.6")));
  CHECK(verdict(policy, "10.0.0.5", 3478) == kOwnAddress);
}

TEST_CASE("live relay ports are kept per relay IP and protocol, and only for relay IPs") {
  LiveRelayPorts live({ip("::ffff:9.9.9.9"), ip("2001:db8::10")});
  live.markOpen(RelayProtocol::kUdp, at("9.9.9.9", 65535));
  live.markOpen(RelayProtocol::kUdp, at("1.2.3.4", 50000));  // not a relay IP: ignored
  CHECK(live.isOpen(RelayProtocol::kUdp, ip("9.9.9.9"), 65535));
  CHECK(live.isOpen(RelayProtocol::kUdp, ip("::ffff:9.9.9.9"), 65535));
  CHECK_FALSE(live.isOpen(RelayProtocol::kTcp, ip("9.9.9.9"), 65535));
  CHECK_FALSE(live.isOpen(RelayProtocol::kUdp, ip("2001:db8::10"), 65535));
  CHECK_FALSE(live.isOpen(RelayProtocol::kUdp, ip("1.2.3.4"), 50000));
  live.markClosed(RelayProtocol::kUdp, at("9.9.9.9", 65535));
  CHECK_FALSE(live.isOpen(RelayProtocol::kUdp, ip("9.9.9.9"), 65535));
}

TEST_CASE("each peer verdict has its own short reason without an address") {
  std::set<std::string_view> seen;
  for (PeerVerdict v :
       {PeerVerdict::kAllowed, PeerVerdict::kDeniedByDefault, PeerVerdict::kDeniedByOperator,
        PeerVerdict::kOwnAddress, PeerVerdict::kUnspecified}) {
    const std::string_view text = describe(v);
    CAPTURE(text);
    CHECK_FALSE(text.empty());
    CHECK(text.size() < 128);  // RFC 8489 §14.8: a reason phrase is under 128 characters
    CHECK(seen.insert(text).second);
    if (v != PeerVerdict::kAllowed) CHECK(text.starts_with("denied"));
  }
}

TEST_SUITE_END();

}  // namespace
