// See reservations.hpp.
#include "relay/io/reservations.hpp"

#include <algorithm>
#include <array>
#include <cstring>

#include "auth/crypto.hpp"

namespace tern::io {

std::uint64_t ReservationRegistry::reserve(const wire::IpAddress& ip, std::uint16_t port, unsigned owner,
                                           SteadyTime now) {
  // Tokens are unguessable, so one client cannot claim the port another reserved.
  std::uint64_t token = 0;
  std::lock_guard lock(mutex_);
  do {
    std::array<std::uint8_t, 8> random{};
    auth::randomBytes(random);
    std::memcpy(&token, random.data(), random.size());
  } while (token == 0 || reserved_.count(token) != 0);
  reserved_[token] = {{ip, port}, owner, now + kHold};
  return token;
}

std::optional<wire::SocketAddress> ReservationRegistry::claim(std::uint64_t token, SteadyTime now) {
  std::lock_guard lock(mutex_);
  auto it = reserved_.find(token);
  if (it == reserved_.end() || it->second.expires <= now) return std::nullopt;
  const auto address = it->second.address;
  reserved_.erase(it);
  return address;
}

std::vector<std::uint16_t> ReservationRegistry::expire(unsigned owner, SteadyTime now) {
  std::vector<std::uint16_t> ports;
  std::lock_guard lock(mutex_);
  for (auto it = reserved_.begin(); it != reserved_.end();) {
    if (it->second.owner == owner && it->second.expires <= now) {
      ports.push_back(it->second.address.port);
      it = reserved_.erase(it);
    } else {
      ++it;
    }
  }
  return ports;
}

std::vector<HandedReservation> ReservationRegistry::takeForUpgrade(unsigned owner, SteadyTime now) {
  std::vector<HandedReservation> taken;
  std::lock_guard lock(mutex_);
  for (auto it = reserved_.begin(); it != reserved_.end();) {
    if (it->second.owner == owner && it->second.expires > now) {
      const auto left = std::chrono::ceil<std::chrono::milliseconds>(it->second.expires - now);
      taken.push_back({it->first, it->second.address, left});
      it = reserved_.erase(it);
    } else {
      ++it;
    }
  }
  return taken;
}

bool ReservationRegistry::put(const HandedReservation& r, unsigned owner, SteadyTime now) {
  std::lock_guard lock(mutex_);
  // The hold never grows in transit: RFC 8656 §7.2's "about 30 seconds" bounds it.
  const auto left = std::min<std::chrono::milliseconds>(r.remaining, kHold);
  return reserved_.try_emplace(r.token, Reserved{r.address, owner, now + left}).second;
}

}  // namespace tern::io
