// Which allocations an operator means (the admin API, `tern admin`): by user, by client
// address and by relayed address, every given criterion at once. Matching reads only what the
// inventory also lists, so a listing and an end with the same criteria name the same calls.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "relay/core/allocation.hpp"
#include "relay/core/five_tuple.hpp"

namespace tern::core {

struct AllocationMatch {
  // The username, or for TURN REST usernames (`<expiry>:<user>`) the user part: revoking
  // "alice" ends the calls of every credential minted for alice.
  std::optional<std::string> user;
  // The client's IP, with its port when one is given (port 0: any port).
  std::optional<SocketAddress> client;
  // One of the allocation's relayed transport addresses (as advertised, port 0: any).
  std::optional<SocketAddress> relayed;

  bool any() const noexcept { return user || client || relayed; }
  bool matches(std::string_view username, const SocketAddress& client_address,
               std::span<const RelayEndpoint> relays) const noexcept;
  bool matches(const Allocation& a) const noexcept { return matches(a.username(), a.tuple().client, a.relays()); }
};

}  // namespace tern::core
