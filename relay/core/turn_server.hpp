// The sans-I/O TURN/STUN server of one worker: takes client packets with their 5-tuple and a
// time point, answers through ServerOutput, counts into the worker's counters. Never touches
// a socket or a clock, so unit tests and fuzzers drive it directly.
#pragma once

#include <array>
#include <string>

#include "metrics/worker_counters.hpp"
#include "relay/core/five_tuple.hpp"
#include "relay/core/response_writer.hpp"
#include "relay/core/server_output.hpp"
#include "relay/wire/message.hpp"

namespace tern::core {

struct ServerOptions {
  // RFC 8489 §14.14: SOFTWARE in responses; empty leaves it out.
  std::string software = "tern";
};

class TurnServer {
 public:
  TurnServer(ServerOptions options, ServerOutput& output, metrics::WorkerCounters& counters);

  // Entry point for every datagram or stream frame from a client.
  void onClientPacket(const FiveTuple& tuple, wire::Bytes packet, TimePoint now) noexcept;

 private:
  void onStun(const FiveTuple& tuple, wire::Bytes packet, TimePoint now) noexcept;
  void onRequest(const FiveTuple& tuple, const wire::MessageView& request, TimePoint now) noexcept;
  void send(const FiveTuple& tuple, ResponseWriter& response, std::uint16_t method) noexcept;
  ResponseWriter responseTo(const wire::Header& request, bool fingerprint) noexcept;

  ServerOptions options_;
  ServerOutput& output_;
  metrics::WorkerCounters& counters_;
  // Responses are built here, one at a time: the packet path never allocates.
  std::array<std::uint8_t, 1280> response_buffer_{};
};

}  // namespace tern::core
