// The lifetime rule of RFC 8656 §7.2 and §8.2, shared by Allocate and Refresh.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>

#include "relay/core/server_options.hpp"

namespace tern::core {

// "the minimum of the client's requested lifetime and the server's maximum allowed lifetime.
// If this computed value is greater than the default lifetime, then the server uses the
// computed lifetime [...]. Otherwise, the server uses the default lifetime."
inline std::chrono::seconds grantedLifetime(const ServerOptions& options,
                                            std::optional<std::uint32_t> requested) noexcept {
  if (!requested) return options.default_lifetime;
  const auto wanted = std::min(std::chrono::seconds(*requested), options.max_lifetime);
  return wanted > options.default_lifetime ? wanted : options.default_lifetime;
}

}  // namespace tern::core
