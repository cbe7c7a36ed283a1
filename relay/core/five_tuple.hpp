// The 5-tuple that identifies a client's flow to the server (RFC 8656 §2): the client
// transport plus the client's and the server's transport addresses.
#pragma once

#include <chrono>
#include <cstdint>

#include "relay/wire/address.hpp"

namespace tern::core {

using wire::IpAddress;
using wire::SocketAddress;

// Time enters the core only as an argument; the core never reads a clock.
using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;

enum class Transport : std::uint8_t { kUdp, kTcp, kTls, kDtls };

constexpr bool isStream(Transport t) noexcept { return t == Transport::kTcp || t == Transport::kTls; }

struct FiveTuple {
  Transport transport = Transport::kUdp;
  SocketAddress client;
  SocketAddress server;

  friend bool operator==(const FiveTuple&, const FiveTuple&) noexcept = default;
};

}  // namespace tern::core
