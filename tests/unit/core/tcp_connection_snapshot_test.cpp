// The upgrade hand-over's record of an RFC 6062 connection (core::TcpConnectionSnapshot):
// a round trip through its byte encoding, and refusals of truncated and malformed records.
#include <doctest/doctest.h>

#include "relay/core/allocation_snapshot.hpp"
#include "relay/wire/bytes.hpp"

using namespace tern;
using core::TcpConnectionSnapshot;

namespace {

wire::SocketAddress addr(std::string_view text) { return *wire::SocketAddress::parse(text); }

TcpConnectionSnapshot waiting() {
  TcpConnectionSnapshot c;
  c.id = 0x01ABCDEF;
  c.control = {core::Transport::kTcp, addr("192.0.2.7:40000"), addr("198.51.100.1:3478")};
  c.peer = addr("[2001:db8::99]:6000");
  c.bound = false;
  c.deadline_in_ns = 12'345'000'000;
  return c;
}

std::vector<std::uint8_t> encoded(const TcpConnectionSnapshot& c) {
  std::vector<std::uint8_t> out;
  core::encodeTcpConnection(c, out);
  return out;
}

std::string decodeError(const std::vector<std::uint8_t>& bytes) {
  wire::Bytes in(bytes);
  const auto decoded = core::decodeTcpConnection(in);
  REQUIRE_FALSE(decoded.has_value());
  CHECK(in.size() == bytes.size());  // a refused record consumes nothing
  return decoded.error();
}

}  // namespace

TEST_CASE(
    "An RFC 6062 connection's record round-trips, waiting or bound, and leaves what follows it") {
  TcpConnectionSnapshot bound = waiting();
  bound.bound = true;
  bound.deadline_in_ns = 0;
  bound.peer = addr("203.0.113.5:443");
  std::vector<std::uint8_t> bytes = encoded(waiting());
  core::encodeTcpConnection(bound, bytes);
  bytes.push_back(0x55);
  wire::Bytes in(bytes);
  const auto first = core::decodeTcpConnection(in);
  REQUIRE(first.has_value());
  CHECK(*first == waiting());
  const auto second = core::decodeTcpConnection(in);
  REQUIRE(second.has_value());
  CHECK(*second == bound);
  REQUIRE(in.size() == 1);
  CHECK(in[0] == 0x55);
}

TEST_CASE("Every truncation of an RFC 6062 connection's record is refused") {
  const std::vector<std::uint8_t> bytes = encoded(waiting());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<std::uint8_t> cut(bytes.begin(),
                                        bytes.begin() + static_cast<std::ptrdiff_t>(n));
    CAPTURE(n);
    CHECK(decodeError(cut).find("truncated") != std::string::npos);
  }
  // The body cut short with its length field adjusted: refused inside the body (as truncated,
  // or as the malformed value the missing bytes read as).
  for (std::size_t n = 5; n < bytes.size(); ++n) {
    std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    wire::storeU32(&cut[1], static_cast<std::uint32_t>(n - 5));
    CAPTURE(n);
    CHECK_FALSE(decodeError(cut).empty());
  }
}

TEST_CASE(
    "An RFC 6062 connection's record with a TLS control connection, id 0 or a bad flag is "
    "refused") {
  TcpConnectionSnapshot c = waiting();
  c.control.transport = core::Transport::kTls;  // RFC 6062 over TLS never moves
  CHECK(decodeError(encoded(c)).find("plain TCP") != std::string::npos);
  c = waiting();
  c.id = 0;
  CHECK(decodeError(encoded(c)).find("id 0") != std::string::npos);
  std::vector<std::uint8_t> bytes = encoded(waiting());
  bytes[bytes.size() - 9] = 2;  // the bound flag, before the 8-byte deadline
  CHECK(decodeError(bytes).find("flag") != std::string::npos);
  bytes = encoded(waiting());
  bytes.push_back(0);
  wire::storeU32(&bytes[1], wire::loadU32(&bytes[1]) + 1);
  CHECK(decodeError(bytes).find("trailing") != std::string::npos);
  bytes = encoded(waiting());
  bytes[0] = 2;
  CHECK(decodeError(bytes).find("unknown version") != std::string::npos);
}
