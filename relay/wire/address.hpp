// IP and transport addresses as plain values, with text forms (RFC 5952 for IPv6), so the
// codec, core and config share one address type without any socket headers.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace tern::wire {

enum class AddressFamily : std::uint8_t { kIPv4 = 0x01, kIPv6 = 0x02 };  // STUN family codes

class IpAddress {
 public:
  IpAddress() noexcept = default;  // 0.0.0.0
  static IpAddress v4(std::array<std::uint8_t, 4> b) noexcept;
  static IpAddress v6(const std::array<std::uint8_t, 16>& b) noexcept;
  static IpAddress v4(std::uint32_t host_order) noexcept;
  // Accepts dotted quads and RFC 4291 text (including "::" and an embedded IPv4 tail).
  static std::optional<IpAddress> parse(std::string_view text) noexcept;

  AddressFamily family() const noexcept { return family_; }
  bool isV4() const noexcept { return family_ == AddressFamily::kIPv4; }
  bool isV6() const noexcept { return family_ == AddressFamily::kIPv6; }
  // 4 bytes for IPv4, 16 for IPv6, network order.
  const std::uint8_t* data() const noexcept { return bytes_.data(); }
  std::size_t size() const noexcept { return isV4() ? 4 : 16; }
  bool isUnspecified() const noexcept;
  std::string toString() const;

  friend bool operator==(const IpAddress&, const IpAddress&) noexcept = default;
  friend auto operator<=>(const IpAddress&, const IpAddress&) noexcept = default;

 private:
  AddressFamily family_ = AddressFamily::kIPv4;
  std::array<std::uint8_t, 16> bytes_{};  // unused tail is zero so == works
};

struct SocketAddress {
  IpAddress ip;
  std::uint16_t port = 0;

  // "192.0.2.1:3478" or "[2001:db8::1]:3478".
  static std::optional<SocketAddress> parse(std::string_view text) noexcept;
  std::string toString() const;

  friend bool operator==(const SocketAddress&, const SocketAddress&) noexcept = default;
  friend auto operator<=>(const SocketAddress&, const SocketAddress&) noexcept = default;
};

// FNV-1a over the address bytes and port, for the hash tables keyed by client addresses.
// Keys are bounded by what passed authentication or a TCP accept, not chosen in bulk.
std::size_t hashOf(const SocketAddress& a) noexcept;

}  // namespace tern::wire
