// The lifetime rule of RFC 8656 §7.2 and §8.2, shared by Allocate and Refresh, and the
// --strict-expiry bound on it.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>

#include "auth/rest_credentials.hpp"
#include "relay/core/handlers/handlers.hpp"
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

// With --strict-expiry, a TURN REST credential's expiry caps the lifetime (even below the
// default: the operator chose that a leaked credential dies on time). At least a second, since
// a lifetime of 0 would mean "deleted"; the authenticator has refused names already expired.
inline std::chrono::seconds credentialBound(const ServerOptions& options, const handlers::RequestContext& ctx,
                                            std::chrono::seconds lifetime) noexcept {
  // RFC 7635 §9.2: an allocation made with an access token ends when the token does, always.
  if (ctx.token_expiry_unix) {
    return std::clamp(std::chrono::seconds(*ctx.token_expiry_unix - ctx.now_unix), std::chrono::seconds(1), lifetime);
  }
  if (!options.strict_expiry) return lifetime;
  const auto rest = auth::parseRestUsername(ctx.username);
  if (!rest) return lifetime;  // a static user: no expiry
  const std::int64_t left = rest->expiry_unix - ctx.now_unix;
  return std::clamp(std::chrono::seconds(left), std::chrono::seconds(1), lifetime);
}

}  // namespace tern::core
