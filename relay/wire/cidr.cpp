// CIDR ranges: parsing "ADDRESS/PREFIX" text and prefix matching over network-order bytes.
#include "relay/wire/cidr.hpp"

#include <array>
#include <charconv>
#include <cstddef>

namespace tern::wire {

namespace {

// The mask of the `bits` (0-8) leading bits of one byte.
constexpr std::uint8_t leadingMask(unsigned bits) noexcept {
  return static_cast<std::uint8_t>(0xFF00u >> bits);
}

std::uint8_t maxPrefix(const IpAddress& ip) noexcept { return ip.isV4() ? 32 : 128; }

}  // namespace

std::optional<Cidr> Cidr::of(const IpAddress& ip, std::uint8_t prefix) noexcept {
  if (prefix > maxPrefix(ip)) return std::nullopt;
  std::array<std::uint8_t, 16> bytes{};
  const unsigned bits = prefix;
  for (unsigned i = 0; i < ip.size(); ++i) {
    const unsigned first_bit = i * 8;
    if (first_bit + 8 <= bits) {
      bytes[i] = ip.data()[i];
    } else if (first_bit < bits) {
      bytes[i] = static_cast<std::uint8_t>(ip.data()[i] & leadingMask(bits - first_bit));
    }  // else: a host byte, left zero
  }
  const IpAddress network =
      ip.isV4()
          ? IpAddress::v4(std::array<std::uint8_t, 4>{bytes[0], bytes[1], bytes[2], bytes[3]})
          : IpAddress::v6(bytes);
  return Cidr{network, prefix};
}

std::optional<Cidr> Cidr::parse(std::string_view text) noexcept {
  const std::size_t slash = text.find('/');
  const auto ip = IpAddress::parse(text.substr(0, slash));
  if (!ip) return std::nullopt;
  if (slash == std::string_view::npos) return Cidr{*ip, maxPrefix(*ip)};

  const std::string_view digits = text.substr(slash + 1);
  // Decimal digits only: no sign, no spaces, no leading zero ("0" alone is /0), at most 3.
  if (digits.empty() || digits.size() > 3 || (digits.size() > 1 && digits.front() == '0')) {
    return std::nullopt;
  }
  unsigned prefix = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), prefix);
  if (ec != std::errc{} || end != digits.data() + digits.size() || prefix > maxPrefix(*ip)) {
    return std::nullopt;
  }
  return of(*ip, static_cast<std::uint8_t>(prefix));
}

bool Cidr::contains(const IpAddress& ip) const noexcept {
  if (ip.family() != network.family()) return false;
  const std::size_t whole = prefix / 8u;
  const unsigned rest = prefix % 8u;
  for (std::size_t i = 0; i < whole; ++i) {
    if (ip.data()[i] != network.data()[i]) return false;
  }
  if (rest == 0) return true;
  return (ip.data()[whole] & leadingMask(rest)) == network.data()[whole];
}

std::string Cidr::describe() const {
  std::string out = network.toString();
  out += '/';
  out += std::to_string(prefix);
  return out;
}

}  // namespace tern::wire
