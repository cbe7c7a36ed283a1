// How many TCP and TLS client connections tern holds from one source (an IPv4 address or an
// IPv6 /64, core/source_key.hpp) and in all. Shared by every worker, because the kernel
// spreads one source's connections over the workers' SO_REUSEPORT listeners by 4-tuple: a
// per-worker count would make the limit depend on the number of workers and on luck. A
// mutex guards it; it is taken when a connection is accepted and when it closes, never per
// packet. It holds an entry only per source with a connection open, so its memory is bounded
// by the connections themselves.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "relay/core/source_key.hpp"

namespace tern::io {

class ConnectionLimits {
 public:
  // 0 means no limit.
  ConnectionLimits(std::uint32_t per_source, std::uint32_t total);

  enum class Verdict : std::uint8_t { kAccepted, kSourceLimit, kTotalLimit };
  struct Admission {
    Verdict verdict = Verdict::kAccepted;
    // The first refusal for this source since it was last under its limit: worth a log line.
    bool first_refusal = false;
  };
  // A new connection from `source`: counted if accepted; the caller closes it otherwise.
  Admission acquire(const wire::IpAddress& source) noexcept;
  // A connection that keeps its place whatever the limits: one taken over from another
  // worker, which released it there.
  void adopt(const wire::IpAddress& source) noexcept;
  void release(const wire::IpAddress& source) noexcept;
  // What acquire() would answer now, counting nothing: a cheap refusal before costly work.
  // A refusal marks the source as acquire()'s does (first_refusal once per episode).
  Admission check(const wire::IpAddress& source) noexcept;
  // A reload: new limits apply to new connections; open ones stay.
  void setLimits(std::uint32_t per_source, std::uint32_t total) noexcept;

  std::uint32_t total() const;
  std::uint32_t fromSource(const wire::IpAddress& source) const;

 private:
  struct Hash {
    std::uint64_t k0 = 0, k1 = 0;
    std::size_t operator()(const core::SourceKey& key) const noexcept {
      return static_cast<std::size_t>(core::sipHash(k0, k1, key.prefix, key.v6 ? 1 : 0));
    }
  };
  struct Count {
    std::uint32_t open = 0;
    bool refused = false;  // refused since `open` was last under the limit
  };

  mutable std::mutex mutex_;
  std::uint32_t per_source_;
  std::uint32_t max_total_;
  std::uint32_t total_ = 0;
  // Keyed with a per-process secret: sources are chosen by whoever connects.
  std::unordered_map<core::SourceKey, Count, Hash> by_source_;
};

// The same counting for DTLS clients (RFC 7350), node-wide because SO_REUSEPORT spreads a
// source's ports over the workers: handshakes in progress per source (from the cookie echo
// to the end of the handshake), so one host cannot take the handshake slots every client
// needs; and sessions (in handshake or established) per source and in all.
struct DtlsLimits {
  std::shared_ptr<ConnectionLimits> handshakes = std::make_shared<ConnectionLimits>(0, 0);
  std::shared_ptr<ConnectionLimits> sessions = std::make_shared<ConnectionLimits>(0, 0);
};

}  // namespace tern::io
