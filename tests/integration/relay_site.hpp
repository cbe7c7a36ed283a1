// Where a relay test runs tern (issue 21): on loopback, as most integration tests do, or in
// the fast path's lab (fast_path_topology.hpp) with `--fast-path on`, so that one test body
// checks a relaying behaviour both in user space and with the kernel carrying ChannelData.
// The fast path cannot run on loopback (its packets carry partial checksums), hence the lab.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fast_path_topology.hpp"
#include "support/process.hpp"
#include "support/tern_server.hpp"
#include "support/turn_test_client.hpp"

namespace tern::test {

enum class Where : std::uint8_t { kLoopback, kFastPathLab };

class RelaySite {
 public:
  // tern with a realm, a REST secret (loopback) or the lab's static user, listening and
  // relaying on IPv4 and IPv6, peers allowed on the peer host's side (on loopback, ::1 is
  // both the relay's and the peer's), metrics in the lab; `extra` is appended to its flags.
  explicit RelaySite(Where where, std::vector<std::string> extra = {});
  RelaySite(const RelaySite&) = delete;
  RelaySite& operator=(const RelaySite&) = delete;

  bool fastPath() const { return lab_ != nullptr; }
  TernServer& tern() { return *tern_; }
  // tern's UDP listen address of `family`, as the client side reaches it.
  wire::SocketAddress server(Family family = Family::kIpv4) const;
  // The client host's address and the peer host's.
  std::string clientHost() const;
  std::string peerHost(Family family = Family::kIpv4) const;
  // turnutils_uclient's credential flags (its own TURN REST minting with -W on loopback).
  std::vector<std::string> uclientCredential() const;
  // A credential for our own clients and aioice: a TURN REST one named `name` on loopback.
  std::pair<std::string, std::string> credential(const std::string& name) const;

  // coturn's turnutils_peer echoing on the peer host (stopped with the site); its port.
  std::uint16_t echoPeer(Family family = Family::kIpv4);
  // Runs `argv` to completion on the client side (in the lab, in the client namespace).
  CommandResult runOnClient(std::vector<std::string> argv,
                            std::chrono::milliseconds timeout = std::chrono::seconds(60)) const;
  // Our TURN client over UDP on the client side (not yet allocated).
  std::unique_ptr<TurnTestClient> turnClient(const std::string& name) const;
  // A UDP socket on the peer host.
  std::unique_ptr<LabSocket> peerSocket() const;

  // tern_relayed_packets_total{path="kernel"} of `direction` ("" for both) once it stops
  // moving (the kernel's counts are credited on the worker tick); 0 on loopback.
  std::uint64_t kernelPackets(const std::string& direction = "") const;

 private:
  std::unique_ptr<FastPathTopology> lab_;
  std::unique_ptr<TernServer> tern_;
  std::vector<std::unique_ptr<ChildProcess>> echo_peers_;
};

}  // namespace tern::test
