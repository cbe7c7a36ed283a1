// A sans-I/O STUN client transaction (RFC 8489 §6.2): holds the request, says when to
// (re)send it and when to give up, and recognises its response by transaction id. The caller
// owns the socket and the clock.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <vector>

#include "relay/wire/bytes.hpp"
#include "relay/wire/message.hpp"

namespace tern::client {

using Clock = std::chrono::steady_clock;
using TimePoint = Clock::time_point;
using Duration = std::chrono::milliseconds;

struct RetransmitPolicy {
  // RFC 8489 §6.2.1: RTO starts at 500 ms and doubles; Rc = 7 sends; after the last one
  // wait Rm = 16 RTOs. Over TCP/TLS there are no retransmissions; give up after Ti = 39.5 s.
  Duration initial_rto{500};
  unsigned max_sends = 7;
  unsigned last_wait_factor = 16;
  Duration reliable_timeout{39500};
};

class ClientTransaction {
 public:
  ClientTransaction(std::vector<std::uint8_t> request, bool reliable,
                    RetransmitPolicy policy = {});

  enum class Action : std::uint8_t { kSend, kWait, kTimedOut };
  // What to do at `now`: send the request (first time or again), wait until deadline(), or
  // give up. Call at start and whenever deadline() passes.
  Action poll(TimePoint now) noexcept;
  TimePoint deadline() const noexcept { return deadline_; }
  wire::Bytes request() const noexcept { return request_; }
  unsigned sends() const noexcept { return sends_; }

  // The response to this request if `packet` is one (same transaction id, response class),
  // or nothing for anything else, which the caller should ignore (RFC 8489 §6.3.3).
  std::optional<wire::MessageView> matchResponse(wire::Bytes packet) const noexcept;

 private:
  std::vector<std::uint8_t> request_;
  wire::TransactionId transaction_id_{};
  bool reliable_;
  RetransmitPolicy policy_;
  unsigned sends_ = 0;
  Duration rto_;
  TimePoint deadline_{};
};

}  // namespace tern::client
