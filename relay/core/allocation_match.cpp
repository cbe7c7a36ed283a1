#include "relay/core/allocation_match.hpp"

#include <algorithm>

#include "relay/core/server_options.hpp"

namespace tern::core {

namespace {

// An address criterion: the same IP, and the same port unless the criterion's is 0.
bool sameAddress(const SocketAddress& wanted, const SocketAddress& actual) noexcept {
  return wanted.ip == actual.ip && (wanted.port == 0 || wanted.port == actual.port);
}

// Whether `username` is `user`'s: the same name, or a TURN REST username of that user.
bool sameUser(std::string_view username, std::string_view user) noexcept {
  return username == user || quotaKey(username) == user;
}

}  // namespace

bool AllocationMatch::matches(std::string_view username, const SocketAddress& client_address,
                              std::span<const RelayEndpoint> relays) const noexcept {
  if (user && !sameUser(username, *user)) return false;
  if (client && !sameAddress(*client, client_address)) return false;
  if (relayed && std::none_of(relays.begin(), relays.end(), [&](const RelayEndpoint& r) {
        return sameAddress(*relayed, r.relayed);
      })) {
    return false;
  }
  return true;
}

}  // namespace tern::core
