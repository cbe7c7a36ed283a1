// What the sans-I/O core asks of the I/O layer. The core calls these; relay/io implements
// them on libuv sockets, tests implement them by recording.
#pragma once

#include "relay/core/five_tuple.hpp"
#include "relay/wire/bytes.hpp"

namespace tern::core {

class ServerOutput {
 public:
  virtual ~ServerOutput() = default;
  // Sends `bytes` to the client of `tuple` (on its UDP socket or its stream connection). The
  // bytes are only valid during the call. Returns false if the send was dropped.
  virtual bool sendToClient(const FiveTuple& tuple, wire::Bytes bytes) noexcept = 0;
};

}  // namespace tern::core
