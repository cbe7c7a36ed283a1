// --external-ip mapping of relayed addresses (RFC 8656 §7.2 XOR-RELAYED-ADDRESS behind 1:1 NAT).
#include "relay/core/server_options.hpp"

#include "auth/rest_credentials.hpp"

namespace tern::core {

std::string_view quotaKey(std::string_view username) noexcept {
  if (auto rest = auth::parseRestUsername(username)) return rest->user;
  return username;
}

SocketAddress advertisedAddress(const std::vector<ExternalIp>& external, const SocketAddress& local) noexcept {
  // An exact PRIVATE match wins over a family-wide mapping.
  for (const auto& e : external) {
    if (e.private_ip && *e.private_ip == local.ip) return {e.public_ip, local.port};
  }
  for (const auto& e : external) {
    if (!e.private_ip && e.public_ip.family() == local.ip.family()) return {e.public_ip, local.port};
  }
  return local;
}

}  // namespace tern::core
