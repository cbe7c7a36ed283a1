// Ports reserved by EVEN-PORT with the R bit (RFC 8656 §7.2), shared by every worker: the
// Allocate that presents the RESERVATION-TOKEN may arrive on another worker (its 5-tuple
// hashes elsewhere). A mutex guards it; it is touched only by Allocate and by the ticks.
#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "relay/wire/address.hpp"

namespace tern::io {

// An upgrade (docs/upgrade.md): one unclaimed reservation on its way to the new process,
// which honours its token for what is left of its hold.
struct HandedReservation {
  std::uint64_t token = 0;
  wire::SocketAddress address;
  std::chrono::milliseconds remaining{0};
};

class ReservationRegistry {
 public:
  using SteadyTime = std::chrono::steady_clock::time_point;
  // RFC 8656 §7.2: the reservation is held for about 30 seconds.
  static constexpr std::chrono::seconds kHold{30};

  // Records `port` on `ip` as reserved by worker `owner`; returns the token.
  std::uint64_t reserve(const wire::IpAddress& ip, std::uint16_t port, unsigned owner, SteadyTime now);
  // Takes the reservation away from the registry: the caller now owns the port.
  std::optional<wire::SocketAddress> claim(std::uint64_t token, SteadyTime now);
  // Expired reservations of `owner`: their ports go back to the owner's pool.
  std::vector<std::uint16_t> expire(unsigned owner, SteadyTime now);

  // An upgrade. Takes `owner`'s unexpired reservations out (a token presented meanwhile is
  // unknown here, as it will be once the new process holds them); their ports stay taken.
  std::vector<HandedReservation> takeForUpgrade(unsigned owner, SteadyTime now);
  // Records reservations for `owner`: taken back (the upgrade failed), or handed over by the
  // old process. False for a token already known.
  bool put(const HandedReservation& r, unsigned owner, SteadyTime now);

 private:
  struct Reserved {
    wire::SocketAddress address;
    unsigned owner;
    SteadyTime expires;
  };
  std::mutex mutex_;
  std::unordered_map<std::uint64_t, Reserved> reserved_;
};

}  // namespace tern::io
