// `tern probe`: one STUN Binding to a server over UDP or TCP, printing the mapped address.
// Lets an operator check a node from anywhere, and tests check tern with tern's own client.
#pragma once

#include <chrono>

#include "relay/wire/address.hpp"

namespace tern::app {

struct ProbeOptions {
  wire::SocketAddress server;
  bool tcp = false;
  bool fingerprint = true;
  std::chrono::milliseconds timeout{5000};
};

// Prints the result to stdout (or the failure to stderr); returns the exit code.
int runProbe(const ProbeOptions& options);

}  // namespace tern::app
