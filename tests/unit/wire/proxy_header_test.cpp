// PROXY protocol v1 and v2 header parsing (HAProxy's doc/proxy-protocol.txt): the spec's
// examples, every byte count on the way to a whole header, and the headers to refuse.
#include "relay/wire/proxy_header.hpp"

#include <doctest/doctest.h>

#include <string>
#include <string_view>
#include <vector>

#include "support/addresses.hpp"

namespace {

using tern::wire::kMaxProxyHeader;
using tern::wire::parseProxyHeader;
using tern::wire::ProxyHeaderError;
using tern::wire::ProxyParse;
using tern::wire::SocketAddress;
using Status = ProxyParse::Status;

std::vector<std::uint8_t> bytes(std::string_view text) { return {text.begin(), text.end()}; }

ProxyParse parse(const std::vector<std::uint8_t>& data) { return parseProxyHeader(data); }

SocketAddress addr(std::string_view text) { return *SocketAddress::parse(text); }

// Every strict prefix of a valid header needs more bytes; the whole of it is done.
void checkIncremental(const std::vector<std::uint8_t>& header) {
  for (std::size_t n = 0; n < header.size(); ++n) {
    const std::vector<std::uint8_t> part(header.begin(), header.begin() + static_cast<long>(n));
    INFO("prefix of " << n << " bytes");
    CHECK(parse(part).status == Status::kNeedMore);
  }
  CHECK(parse(header).status == Status::kDone);
}

const std::vector<std::uint8_t> kSignature = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                              0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

// A v2 header: signature, version 2 and `command`, `family_protocol`, then `body`.
std::vector<std::uint8_t> v2(std::uint8_t command, std::uint8_t family_protocol,
                             const std::vector<std::uint8_t>& body) {
  std::vector<std::uint8_t> h = kSignature;
  h.push_back(static_cast<std::uint8_t>(0x20 | command));
  h.push_back(family_protocol);
  h.push_back(static_cast<std::uint8_t>(body.size() >> 8));
  h.push_back(static_cast<std::uint8_t>(body.size() & 0xFF));
  h.insert(h.end(), body.begin(), body.end());
  return h;
}

// 192.0.2.10:50000 -> 198.51.100.1:3478 as a v2 AF_INET body.
const std::vector<std::uint8_t> kInetBody = {192, 0, 2,    10,   198,  51,
                                             100, 1, 0xC3, 0x50, 0x0D, 0x96};

TEST_SUITE_BEGIN("wire/proxy_header");

TEST_CASE(
    "PROXY v1 TCP4 from the spec's example gives the client's address (proxy-protocol §2.1)") {
  const auto header = bytes("PROXY TCP4 192.168.0.1 192.168.0.11 56324 443\r\n");
  auto data = header;
  data.push_back(0x00);  // a STUN message follows: not part of the header
  const auto r = parse(data);
  REQUIRE(r.status == Status::kDone);
  CHECK(r.header.version == 1);
  CHECK(r.header.length == header.size());
  CHECK(r.header.source == addr("192.168.0.1:56324"));
  CHECK(r.header.destination == addr("192.168.0.11:443"));
  checkIncremental(header);
}

TEST_CASE("PROXY v1 TCP6 and the 107-byte worst case UNKNOWN line parse (proxy-protocol §2.1)") {
  const auto r = parse(bytes("PROXY TCP6 2001:db8::1 2001:db8::2 3478 5349\r\n"));
  REQUIRE(r.status == Status::kDone);
  CHECK(r.header.source == addr("[2001:db8::1]:3478"));
  const std::string worst = "PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n";
  CHECK(parse(bytes("PROXY UNKNOWN\r\n")).status == Status::kDone);
  const auto unknown = parse(bytes(worst));
  REQUIRE(unknown.status == Status::kDone);
  CHECK_FALSE(unknown.header.source);  // the connection's own address stands
  std::string longest = "PROXY UNKNOWN " + std::string(107 - 16, 'f') + "\r\n";
  CHECK(longest.size() == 107);
  CHECK(parse(bytes(longest)).status == Status::kDone);
}

TEST_CASE(
    "PROXY v1 refuses a line past 107 bytes, bad fields and mixed families (proxy-protocol §2.1)") {
  const auto too_long = parse(bytes("PROXY UNKNOWN " + std::string(200, 'f')));
  CHECK(too_long.status == Status::kInvalid);
  CHECK(too_long.error == ProxyHeaderError::kTooLong);
  for (const char* bad : {"PROXY TCP4 192.168.0.1 192.168.0.11 56324\r\n",
                          "PROXY TCP4 192.168.0.1 2001:db8::2 56324 443\r\n",
                          "PROXY TCP6 192.168.0.1 192.168.0.11 56324 443\r\n",
                          "PROXY TCP4 192.168.0.1 192.168.0.11 65536 443\r\n",
                          "PROXY TCP4 192.168.0.1 192.168.0.11 0443 443\r\n",
                          "PROXY TCP4 192.168.0.1  192.168.0.11 1 443\r\n",
                          "PROXY UDP4 192.168.0.1 192.168.0.11 1 443\r\n",
                          "PROXY TCP4 192.168.0.1 192.168.0.11 1 443\rX"}) {
    INFO(bad);
    const auto r = parse(bytes(bad));
    CHECK(r.status == Status::kInvalid);
    CHECK(r.error == ProxyHeaderError::kMalformed);
  }
}

TEST_CASE("Bytes that start like neither signature are no PROXY header (proxy-protocol §2)") {
  // A STUN Binding request, a TLS ClientHello, and HTTP.
  for (const auto& data :
       {std::vector<std::uint8_t>{0x00, 0x01, 0x00, 0x00},
        std::vector<std::uint8_t>{0x16, 0x03, 0x01}, bytes("PROXZ"), bytes("GET / HTTP/1.1\r\n")}) {
    const auto r = parse(data);
    CHECK(r.status == Status::kInvalid);
    CHECK(r.error == ProxyHeaderError::kMissing);
  }
  auto bad_signature = kSignature;
  bad_signature[11] = 0x0B;
  CHECK(parse(bad_signature).error == ProxyHeaderError::kMissing);
  CHECK(parse({}).status == Status::kNeedMore);
}

TEST_CASE("PROXY v2 TCP over IPv4 gives the client's address (proxy-protocol §2.2)") {
  const auto header = v2(0x1, 0x11, kInetBody);
  CHECK(header.size() == 28);
  const auto r = parse(header);
  REQUIRE(r.status == Status::kDone);
  CHECK(r.header.version == 2);
  CHECK(r.header.length == 28);
  CHECK(r.header.source == addr("192.0.2.10:50000"));
  CHECK(r.header.destination == addr("198.51.100.1:3478"));
  checkIncremental(header);
}

TEST_CASE("PROXY v2 TCP over IPv6 gives the client's address (proxy-protocol §2.2)") {
  std::vector<std::uint8_t> body(36, 0);
  body[0] = 0x20, body[1] = 0x01, body[2] = 0x0d, body[3] = 0xb8, body[15] = 0x07;
  body[16] = 0x20, body[17] = 0x01, body[18] = 0x0d, body[19] = 0xb8, body[31] = 0x01;
  body[32] = 0x12, body[33] = 0x34, body[34] = 0x0D, body[35] = 0x96;
  const auto r = parse(v2(0x1, 0x21, body));
  REQUIRE(r.status == Status::kDone);
  CHECK(r.header.source == addr("[2001:db8::7]:4660"));
  CHECK(r.header.destination == addr("[2001:db8::1]:3478"));
}

TEST_CASE("PROXY v2 skips TLVs and refuses TLVs that overrun the header (proxy-protocol §2.2.7)") {
  auto body = kInetBody;
  // PP2_TYPE_ALPN "h2", then PP2_TYPE_NOOP with 3 bytes of padding.
  body.insert(body.end(), {0x01, 0x00, 0x02, 'h', '2', 0x04, 0x00, 0x03, 0x00, 0x00, 0x00});
  const auto header = v2(0x1, 0x11, body);
  const auto r = parse(header);
  REQUIRE(r.status == Status::kDone);
  CHECK(r.header.length == header.size());
  CHECK(r.header.source == addr("192.0.2.10:50000"));
  checkIncremental(header);
  auto overrun = kInetBody;
  overrun.insert(overrun.end(), {0x01, 0x00, 0x09, 'h', '2'});
  CHECK(parse(v2(0x1, 0x11, overrun)).error == ProxyHeaderError::kMalformed);
  auto stub = kInetBody;
  stub.push_back(0x01);
  CHECK(parse(v2(0x1, 0x11, stub)).error == ProxyHeaderError::kMalformed);
}

TEST_CASE("PROXY v2 LOCAL and UNSPEC keep the connection's own address (proxy-protocol §2.2)") {
  const auto local = parse(v2(0x0, 0x00, {}));
  REQUIRE(local.status == Status::kDone);
  CHECK(local.header.length == 16);
  CHECK_FALSE(local.header.source);
  // LOCAL with addresses: they are discarded.
  const auto local_inet = parse(v2(0x0, 0x11, kInetBody));
  REQUIRE(local_inet.status == Status::kDone);
  CHECK_FALSE(local_inet.header.source);
  const auto unspec = parse(v2(0x1, 0x00, {}));
  REQUIRE(unspec.status == Status::kDone);
  CHECK_FALSE(unspec.header.source);
  const auto unix_family = parse(v2(0x1, 0x31, std::vector<std::uint8_t>(216, 'x')));
  REQUIRE(unix_family.status == Status::kDone);
  CHECK_FALSE(unix_family.header.source);
}

TEST_CASE("PROXY v2 refuses short address blocks, bad versions and commands, and long headers") {
  // AF_INET needs 12 address bytes, AF_INET6 36 (proxy-protocol §2.2).
  CHECK(parse(v2(0x1, 0x11, std::vector<std::uint8_t>(11, 1))).error ==
        ProxyHeaderError::kMalformed);
  CHECK(parse(v2(0x1, 0x21, std::vector<std::uint8_t>(12, 1))).error ==
        ProxyHeaderError::kMalformed);
  CHECK(parse(v2(0x1, 0x41, kInetBody)).error == ProxyHeaderError::kMalformed);    // family 4
  CHECK(parse(v2(0x1, 0x12, kInetBody)).error == ProxyHeaderError::kMalformed);    // DGRAM
  CHECK(parse(v2(0x2, 0x11, kInetBody)).error == ProxyHeaderError::kUnsupported);  // command 2
  auto version1 = v2(0x1, 0x11, kInetBody);
  version1[12] = 0x11;
  CHECK(parse(version1).error == ProxyHeaderError::kUnsupported);
  // The length says more than tern buffers: refused at once, without waiting for the bytes.
  auto huge = v2(0x1, 0x11, kInetBody);
  huge[14] = 0x02, huge[15] = 0x09;  // 16 + 521 = 537 bytes
  huge.resize(16);
  CHECK(parse(huge).error == ProxyHeaderError::kTooLong);
  auto largest = kInetBody;
  largest.resize(kMaxProxyHeader - 16, 0);  // a NOOP TLV pads it to exactly the bound
  largest[12] = 0x04, largest[13] = static_cast<std::uint8_t>((kMaxProxyHeader - 16 - 15) >> 8);
  largest[14] = static_cast<std::uint8_t>((kMaxProxyHeader - 16 - 15) & 0xFF);
  CHECK(parse(v2(0x1, 0x11, largest)).status == Status::kDone);
}

TEST_SUITE_END();

}  // namespace
