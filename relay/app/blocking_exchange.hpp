// One STUN transaction over a connected blocking socket, for `tern probe` and tests: sends the
// request (retransmitting over UDP per RFC 8489 §6.2.1, relay/client's timing) and waits for
// the response with the same transaction id, reading TCP through the stream framer.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace tern::app {

struct ExchangeResult {
  std::vector<std::uint8_t> response;  // empty when `error` says why
  std::string error;
  unsigned sends = 0;
  bool unreachable = false;  // ICMP port unreachable: nothing listens there
  bool ok() const noexcept { return error.empty(); }
};

ExchangeResult exchangeBlocking(int fd, bool tcp, std::vector<std::uint8_t> request,
                                std::chrono::milliseconds timeout);

}  // namespace tern::app
