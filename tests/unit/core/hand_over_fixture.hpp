// What the core's upgrade hand-over tests share (turn_server_hand_over_test.cpp,
// turn_server_pre_copy_test.cpp): TurnServer A is the old process, B the new one (another
// clock, its own quota and relay ids); a snapshot crosses between them as bytes.
#pragma once

#include <doctest/doctest.h>

#include <array>
#include <chrono>
#include <utility>
#include <vector>

#include "relay/core/allocation_snapshot.hpp"
#include "support/turn_harness.hpp"

namespace tern::test::hand_over {

inline const core::FiveTuple kTuple = udpTuple("192.0.2.7:40000");
inline const core::FiveTuple kNew = udpTuple("203.0.113.9:41000");
inline const wire::SocketAddress kPeer = socketAddress("8.8.8.8:5000");
inline constexpr std::uint16_t kChannel = 0x4001;
inline constexpr core::RelayId kNewRelay = 40;  // what B's I/O layer named the adopted socket

// A client on A with a UDP allocation (mobility asked), a permission and a channel to kPeer,
// 100 s old, that relayed one datagram each way on A.
inline void setUpOnA(TurnHarness& a, TestClient& c) {
  client::TurnSession::AllocateOptions options;
  options.mobility = true;
  c.mustAllocate(options);
  REQUIRE(c.createPermission({kPeer}).success());
  REQUIRE(c.channelBind(kChannel, kPeer).success());
  a.advance(std::chrono::seconds(100));
  c.channelData(kChannel, payloadOf(10));
  a.fromPeer(c.relay(), kPeer, bytesOf(payloadOf(20)));
  REQUIRE(a.output.to_peers.size() == 1);
}

// One snapshot as it arrives in the new process: encoded, then decoded, nothing left over.
inline core::AllocationSnapshot crossed(const core::AllocationSnapshot& s) {
  std::vector<std::uint8_t> bytes;
  core::encodeSnapshot(s, bytes);
  wire::Bytes in(bytes);
  auto decoded = core::decodeSnapshot(in);
  REQUIRE(decoded.has_value());
  CHECK(in.empty());
  return std::move(*decoded);
}

// B adopts the relay socket under `relay` (as its I/O layer would) and restores.
inline bool restoreOnB(TurnHarness& b, const core::AllocationSnapshot& s,
                       core::RelayId relay = kNewRelay) {
  if (relay != core::kLostRelay) b.output.open_relays[relay] = s.relays[0].relayed;
  const std::array<core::RelayId, 1> relays{relay};
  return b.server.restoreAllocation(s, relays, b.now);
}

}  // namespace tern::test::hand_over
