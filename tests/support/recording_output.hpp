// A ServerOutput that records what the core sends, for unit tests of TurnServer.
#pragma once

#include <vector>

#include "relay/core/server_output.hpp"

namespace tern::test {

class RecordingOutput : public core::ServerOutput {
 public:
  struct Sent {
    core::FiveTuple tuple;
    std::vector<std::uint8_t> bytes;
  };
  bool sendToClient(const core::FiveTuple& tuple, wire::Bytes bytes) noexcept override {
    sent.push_back({tuple, {bytes.begin(), bytes.end()}});
    return accept;
  }
  std::vector<Sent> sent;
  bool accept = true;
};

}  // namespace tern::test
