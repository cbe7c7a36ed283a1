// Text forms of IP addresses: parsing (RFC 4291 §2.2) and canonical output (RFC 5952 §4).
#include "relay/wire/address.hpp"

#include <algorithm>
#include <charconv>

namespace tern::wire {

IpAddress IpAddress::v4(std::array<std::uint8_t, 4> b) noexcept {
  IpAddress a;
  a.family_ = AddressFamily::kIPv4;
  for (std::size_t i = 0; i < 4; ++i) a.bytes_[i] = b[i];
  return a;
}

IpAddress IpAddress::v4(std::uint32_t host_order) noexcept {
  return v4({static_cast<std::uint8_t>(host_order >> 24), static_cast<std::uint8_t>(host_order >> 16),
             static_cast<std::uint8_t>(host_order >> 8), static_cast<std::uint8_t>(host_order)});
}

IpAddress IpAddress::v6(const std::array<std::uint8_t, 16>& b) noexcept {
  IpAddress a;
  a.family_ = AddressFamily::kIPv6;
  a.bytes_ = b;
  return a;
}

bool IpAddress::isUnspecified() const noexcept {
  for (std::size_t i = 0; i < size(); ++i) {
    if (bytes_[i] != 0) return false;
  }
  return true;
}

namespace {

std::optional<std::array<std::uint8_t, 4>> parseV4(std::string_view s) noexcept {
  std::array<std::uint8_t, 4> out{};
  for (std::size_t i = 0; i < 4; ++i) {
    if (i > 0) {
      if (s.empty() || s.front() != '.') return std::nullopt;
      s.remove_prefix(1);
    }
    // No leading zeros beyond a lone "0": "010" is octal to some parsers, ambiguous to humans.
    if (s.empty() || (s.size() > 1 && s[0] == '0' && s[1] >= '0' && s[1] <= '9')) return std::nullopt;
    unsigned v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + std::min<std::size_t>(s.size(), 3), v);
    if (ec != std::errc{} || v > 255) return std::nullopt;
    out[i] = static_cast<std::uint8_t>(v);
    s.remove_prefix(static_cast<std::size_t>(p - s.data()));
  }
  if (!s.empty()) return std::nullopt;
  return out;
}

std::optional<std::array<std::uint8_t, 16>> parseV6(std::string_view s) noexcept {
  std::array<std::uint8_t, 16> out{};
  std::array<std::uint16_t, 8> head{}, tail{};
  std::size_t n_head = 0, n_tail = 0;
  bool compressed = false;
  if (s.starts_with("::")) {
    compressed = true;
    s.remove_prefix(2);
  } else if (s.starts_with(":")) {
    return std::nullopt;
  }
  std::optional<std::array<std::uint8_t, 4>> v4_tail;
  while (!s.empty()) {
    auto colon = s.find(':');
    std::string_view group = s.substr(0, colon);
    if (group.find('.') != std::string_view::npos) {
      // Embedded IPv4 (RFC 4291 §2.2 form 3) must be the last 32 bits.
      if (colon != std::string_view::npos) return std::nullopt;
      v4_tail = parseV4(group);
      if (!v4_tail) return std::nullopt;
      s = {};
      break;
    }
    if (group.empty() || group.size() > 4) return std::nullopt;
    unsigned v = 0;
    auto [p, ec] = std::from_chars(group.data(), group.data() + group.size(), v, 16);
    if (ec != std::errc{} || p != group.data() + group.size()) return std::nullopt;
    auto& dest = compressed ? tail : head;
    auto& n = compressed ? n_tail : n_head;
    if (n >= 8) return std::nullopt;
    dest[n++] = static_cast<std::uint16_t>(v);
    if (colon == std::string_view::npos) {
      s = {};
      break;
    }
    s.remove_prefix(colon + 1);
    if (s.starts_with(":")) {
      if (compressed) return std::nullopt;  // at most one "::"
      compressed = true;
      s.remove_prefix(1);
    } else if (s.empty()) {
      return std::nullopt;  // trailing single colon
    }
  }
  std::size_t groups = n_head + n_tail + (v4_tail ? 2 : 0);
  if (compressed ? groups > 7 : groups != 8) return std::nullopt;
  for (std::size_t i = 0; i < n_head; ++i) {
    out[2 * i] = static_cast<std::uint8_t>(head[i] >> 8);
    out[2 * i + 1] = static_cast<std::uint8_t>(head[i]);
  }
  std::size_t end = v4_tail ? 12 : 16;
  std::size_t start = end - 2 * n_tail;
  for (std::size_t i = 0; i < n_tail; ++i) {
    out[start + 2 * i] = static_cast<std::uint8_t>(tail[i] >> 8);
    out[start + 2 * i + 1] = static_cast<std::uint8_t>(tail[i]);
  }
  if (v4_tail) {
    for (std::size_t i = 0; i < 4; ++i) out[12 + i] = (*v4_tail)[i];
  }
  return out;
}

}  // namespace

std::optional<IpAddress> IpAddress::parse(std::string_view text) noexcept {
  if (text.find(':') != std::string_view::npos) {
    if (auto b = parseV6(text)) return v6(*b);
    return std::nullopt;
  }
  if (auto b = parseV4(text)) return v4(*b);
  return std::nullopt;
}

std::string IpAddress::toString() const {
  std::string out;
  if (isV4()) {
    for (std::size_t i = 0; i < 4; ++i) {
      if (i) out += '.';
      out += std::to_string(bytes_[i]);
    }
    return out;
  }
  // RFC 5952 §5: an IPv4-mapped address keeps its dotted-quad tail, "::ffff:192.0.2.1".
  static constexpr std::array<std::uint8_t, 12> kMappedPrefix = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
  if (std::equal(kMappedPrefix.begin(), kMappedPrefix.end(), bytes_.begin())) {
    out = "::ffff:";
    out += v4({bytes_[12], bytes_[13], bytes_[14], bytes_[15]}).toString();
    return out;
  }
  std::array<std::uint16_t, 8> g{};
  for (std::size_t i = 0; i < 8; ++i) {
    g[i] = static_cast<std::uint16_t>((bytes_[2 * i] << 8) | bytes_[2 * i + 1]);
  }
  // RFC 5952 §4.2: compress the longest run of two or more zero groups, the first if tied.
  std::size_t best = 8, best_len = 0;
  for (std::size_t i = 0; i < 8;) {
    if (g[i] != 0) {
      ++i;
      continue;
    }
    std::size_t j = i;
    while (j < 8 && g[j] == 0) ++j;
    if (j - i > best_len && j - i >= 2) {
      best = i;
      best_len = j - i;
    }
    i = j;
  }
  static constexpr char kHex[] = "0123456789abcdef";
  for (std::size_t i = 0; i < 8; ++i) {
    if (i == best) {
      out += "::";
      i += best_len - 1;
      continue;
    }
    if (i > 0 && i != best + best_len) out += ':';
    // RFC 5952 §4.1: no leading zeros, lower case.
    bool started = false;
    for (int shift = 12; shift >= 0; shift -= 4) {
      unsigned nibble = (g[i] >> shift) & 0xF;
      if (nibble || started || shift == 0) {
        out += kHex[nibble];
        started = true;
      }
    }
  }
  return out;
}

std::size_t hashOf(const SocketAddress& a) noexcept {
  std::size_t h = 1469598103934665603ull;
  for (std::size_t i = 0; i < a.ip.size(); ++i) h = (h ^ a.ip.data()[i]) * 1099511628211ull;
  return (h ^ a.port) * 1099511628211ull;
}

std::optional<SocketAddress> SocketAddress::parse(std::string_view text) noexcept {
  std::string_view host, port;
  if (text.starts_with("[")) {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') {
      return std::nullopt;
    }
    host = text.substr(1, close - 1);
    port = text.substr(close + 2);
    if (host.find(':') == std::string_view::npos) return std::nullopt;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.find(':') != std::string_view::npos) return std::nullopt;  // IPv6 needs brackets
  }
  unsigned p = 0;
  auto [end, ec] = std::from_chars(port.data(), port.data() + port.size(), p);
  if (port.empty() || ec != std::errc{} || end != port.data() + port.size() || p > 65535) {
    return std::nullopt;
  }
  auto ip = IpAddress::parse(host);
  if (!ip) return std::nullopt;
  return SocketAddress{*ip, static_cast<std::uint16_t>(p)};
}

std::string SocketAddress::toString() const {
  // Appends rather than operator+ chains: GCC 12 at -O3 raises a false -Wrestrict on those.
  std::string out;
  if (ip.isV6()) out += '[';
  out += ip.toString();
  if (ip.isV6()) out += ']';
  out += ':';
  out += std::to_string(port);
  return out;
}

}  // namespace tern::wire
