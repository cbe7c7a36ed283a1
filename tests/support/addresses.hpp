// Addresses and ranges from text for tests, failing the test (not crashing) on a typo.
#pragma once

#include <doctest/doctest.h>

#include <string_view>

#include "relay/wire/address.hpp"
#include "relay/wire/cidr.hpp"

namespace tern::test {

inline wire::IpAddress ip(std::string_view text) {
  auto a = wire::IpAddress::parse(text);
  REQUIRE_MESSAGE(a.has_value(), text);
  return *a;
}

inline wire::Cidr cidr(std::string_view text) {
  auto c = wire::Cidr::parse(text);
  REQUIRE_MESSAGE(c.has_value(), text);
  return *c;
}

}  // namespace tern::test
