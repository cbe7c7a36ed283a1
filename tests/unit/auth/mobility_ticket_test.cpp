// RFC 8016 §3.1 MOBILITY-TICKET as tern seals it: what goes in comes out, and anything
// altered, truncated or sealed with another process's key is refused.
#include <doctest/doctest.h>

#include <array>
#include <cstdint>

#include "auth/mobility_ticket.hpp"

namespace {

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
  const auto opened = codec.open(sealed);
  REQUIRE(opened.has_value());
  CHECK(*opened == ticket);
}

TEST_CASE("an altered mobility ticket is refused, whichever byte changed") {
  const MobilityTicketCodec codec(secret(7));
  const auto sealed = codec.seal({1, 42, 99});
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    auto altered = sealed;
    altered[i] ^= 0x01;
    CHECK_FALSE(codec.open(altered).has_value());
  }
}

TEST_CASE("a mobility ticket of another key, or of the wrong size, is refused") {
  const MobilityTicketCodec codec(secret(7));
  const MobilityTicketCodec other(secret(8));
  const auto sealed = other.seal({0, 1, 2});
  CHECK_FALSE(codec.open(sealed).has_value());
  const auto mine = codec.seal({0, 1, 2});
  CHECK_FALSE(codec.open(std::span(mine).first(31)).has_value());
  CHECK_FALSE(codec.open({}).has_value());
}
