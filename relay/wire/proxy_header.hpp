// The PROXY protocol header a load balancer (HAProxy, cloud TCP load balancers) puts ahead of
// a proxied connection's bytes, versions 1 (text) and 2 (binary), as HAProxy's
// doc/proxy-protocol.txt defines them. Sans-I/O and incremental: call parse() with every byte
// read so far until it says done or invalid. Nothing is allocated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "relay/wire/address.hpp"

namespace tern::wire {

// The largest header tern reads. A v1 header is at most 107 bytes (spec §2.1); a v2 header
// with IPv6 addresses is 52, and the spec sizes a receiver's buffer at 536 bytes (the IPv4
// minimum TCP MSS) so TLVs fit: a longer header is refused rather than buffered.
inline constexpr std::size_t kMaxProxyHeader = 536;

enum class ProxyHeaderError : std::uint8_t {
  kMissing,      // the bytes do not start with either version's signature
  kMalformed,    // a signature, then something the spec does not allow
  kTooLong,      // longer than kMaxProxyHeader (or a v1 line without CRLF in 107 bytes)
  kUnsupported,  // a v2 version other than 2 or a command other than LOCAL and PROXY
};

// A short, stable name for a metric label and a log line.
const char* nameOf(ProxyHeaderError error) noexcept;

struct ProxyHeader {
  std::size_t length = 0;    // bytes the header takes; the connection's own bytes follow
  std::uint8_t version = 0;  // 1 or 2
  // The original client's and destination's addresses; none for a v2 LOCAL command (a
  // health check from the proxy itself), a v1 UNKNOWN or a v2 UNSPEC or UNIX family: then the
  // connection's own addresses stand (spec §2.1 and §2.2).
  std::optional<SocketAddress> source;
  std::optional<SocketAddress> destination;
};

struct ProxyParse {
  enum class Status : std::uint8_t { kNeedMore, kDone, kInvalid };
  Status status = Status::kNeedMore;
  ProxyHeader header;                                   // when kDone
  ProxyHeaderError error = ProxyHeaderError::kMissing;  // when kInvalid
};

// Parses the header at the start of `data` (every byte read so far). kNeedMore: read more,
// then call again with all of it; it never asks for more than kMaxProxyHeader bytes.
ProxyParse parseProxyHeader(std::span<const std::uint8_t> data) noexcept;

}  // namespace tern::wire
