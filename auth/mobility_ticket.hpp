// RFC 8016 §3.1 MOBILITY-TICKET: the opaque value a server gives a client so that a Refresh
// from a new 5-tuple can claim the client's allocation. Ours names the worker that owns the
// allocation, the allocation's relay socket there and a random handle, and is MACed with a
// per-process key: a client cannot forge one or point it at another allocation. On the wire
// it is base64 text: coturn's client (turnutils_uclient -M) keeps tickets as C strings, so a
// binary ticket would reach it cut at its first zero byte, and it drops tickets longer than
// 32 characters.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>
#include <string>

namespace tern::auth {

struct MobilityTicket {
  std::uint8_t worker = 0;   // the worker that owns the allocation
  std::uint32_t relay = 0;   // its RelayId there (first relayed address)
  std::uint64_t handle = 0;  // random per allocation: a recycled relay id never matches
  friend bool operator==(const MobilityTicket&, const MobilityTicket&) noexcept = default;
};

class MobilityTicketCodec {
 public:
  // version(1) worker(1) relay(4) handle(8) tag(10), then base64: 32 characters. An 80-bit
  // tag is plenty: each guess costs an authenticated request.
  static constexpr std::size_t kRawSize = 24;
  static constexpr std::size_t kSize = 32;

  // `secret` is the node's per-process key; the ticket key is derived from it, so a MAC of
  // one purpose is never valid for another (nonces use the same secret).
  explicit MobilityTicketCodec(std::span<const std::uint8_t> secret);

  // Control path; throws only if OpenSSL fails.
  std::string seal(const MobilityTicket& ticket) const;
  // Nothing for a ticket of the wrong size, version or tag (forged, altered, or from
  // another process: a restart invalidates tickets along with the allocations they name).
  std::optional<MobilityTicket> open(std::span<const std::uint8_t> sealed) const noexcept;

 private:
  std::array<std::uint8_t, 32> key_{};
};

}  // namespace tern::auth
