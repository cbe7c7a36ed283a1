// RFC 8016 §3.1 MOBILITY-TICKET as tern seals it: what goes in comes out, and anything
// altered, truncated or sealed with another process's key is refused.
#include <doctest/doctest.h>

#include <array>
#include <cstdint>

#include "auth/base64.hpp"
#include "auth/mobility_ticket.hpp"

namespace {

std::span<const std::uint8_t> bytesOf(const std::string& s) {
  return {reinterpret_cast<const std::uint8_t*>(s.data()), s.size()};
}

using tern::auth::MobilityTicket;
using tern::auth::MobilityTicketCodec;

std::array<std::uint8_t, 32> secret(std::uint8_t fill) {
  std::array<std::uint8_t, 32> s{};
  s.fill(fill);
  return s;
}

}  // namespace

TEST_CASE("a sealed mobility ticket opens to what was sealed (RFC 8016 §3.1)") {
  const MobilityTicketCodec codec(secret(7));
  const MobilityTicket ticket{3, 0x01020304, 0xA1B2C3D4E5F60718};
  const auto sealed = codec.seal(ticket);
  CHECK(sealed.size() == MobilityTicketCodec::kSize);
  // Text without zero bytes: clients that keep tickets as C strings get all of it.
  CHECK(sealed.find('\0') == std::string::npos);
  const auto opened = codec.open(bytesOf(sealed));
  REQUIRE(opened.has_value());
  CHECK(*opened == ticket);
}

TEST_CASE("an altered mobility ticket is refused, whichever byte changed") {
  const MobilityTicketCodec codec(secret(7));
  const auto raw = *tern::auth::base64Decode(codec.seal({1, 42, 99}));
  for (std::size_t i = 0; i < raw.size(); ++i) {
    auto altered = raw;
    altered[i] ^= 0x01;
    CHECK_FALSE(codec.open(bytesOf(tern::auth::base64Encode(altered))).has_value());
  }
}

TEST_CASE("a mobility ticket of another key, or of the wrong size, is refused") {
  const MobilityTicketCodec codec(secret(7));
  const MobilityTicketCodec other(secret(8));
  const auto sealed = other.seal({0, 1, 2});
  CHECK_FALSE(codec.open(bytesOf(sealed)).has_value());
  const auto mine = codec.seal({0, 1, 2});
  CHECK_FALSE(codec.open(bytesOf(mine).first(31)).has_value());
  CHECK_FALSE(codec.open(bytesOf(std::string(32, '!'))).has_value());
  CHECK_FALSE(codec.open({}).has_value());
}
