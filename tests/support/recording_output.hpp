// A ServerOutput (all five parts) that records what the core sends and fakes relay sockets, for unit tests
// and the fuzzer: no sockets, every call observable.
#pragma once

#include <map>
#include <set>
#include <string>
#include <vector>

#include "relay/core/allocation.hpp"
#include "relay/core/live_relay_ports.hpp"
#include "relay/core/server_output.hpp"

namespace tern::test {

class RecordingOutput : public core::ClientOutput,
                        public core::RelayOutput,
                        public core::PeerConnectionOutput,
                        public core::WorkerOutput,
                        public core::ServerEvents {
 public:
  struct Sent {
    core::FiveTuple tuple;
    std::vector<std::uint8_t> bytes;
  };
  struct ToPeer {
    core::RelayId relay;
    wire::SocketAddress peer;
    std::vector<std::uint8_t> bytes;
  };

  static core::RelayProtocol relayProtocol(const core::RelayRequest& request) noexcept {
    return request.tcp ? core::RelayProtocol::kTcp : core::RelayProtocol::kUdp;
  }

  bool sendToClient(const core::FiveTuple& tuple, std::span<const wire::Bytes> parts) noexcept override {
    std::vector<std::uint8_t> all;
    for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
    sent.push_back({tuple, std::move(all)});
    return accept;
  }
  std::optional<core::OpenedRelay> openRelay(const core::RelayRequest& request,
                                             core::RelayError& error) noexcept override {
    if (request.family == wire::AddressFamily::kIPv6 && !ipv6) {
      error = core::RelayError::kFamilyNotConfigured;
      return std::nullopt;
    }
    if (request.reservation_token && reserved.erase(*request.reservation_token) == 0) {
      error = core::RelayError::kUnknownReservation;
      return std::nullopt;
    }
    if (ports_left == 0) {
      error = core::RelayError::kNoPortAvailable;
      return std::nullopt;
    }
    --ports_left;
    const core::RelayId id = next_relay++;
    const auto ip = request.family == wire::AddressFamily::kIPv6 ? *wire::IpAddress::parse("2001:db8::7")
                                                                : *wire::IpAddress::parse("198.51.100.7");
    const wire::SocketAddress local{ip, static_cast<std::uint16_t>(50000 + 2 * id)};
    open_relays[id] = local;
    if (live_relays) live_relays->markOpen(relayProtocol(request), local);
    relay_protocols[id] = relayProtocol(request);
    last_request = request;
    std::optional<std::uint64_t> token;
    if (request.reserve_next) {
      token = 0xA000 + id;
      reserved.insert(*token);
    }
    return core::OpenedRelay{id, local, token};
  }
  void closeRelay(core::RelayId id) noexcept override {
    if (live_relays && open_relays.contains(id)) live_relays->markClosed(relay_protocols[id], open_relays[id]);
    open_relays.erase(id);
    ++ports_left;
    closed_relays.push_back(id);
  }
  bool sendToPeer(core::RelayId id, const wire::SocketAddress& peer, wire::Bytes payload) noexcept override {
    to_peers.push_back({id, peer, {payload.begin(), payload.end()}});
    return accept;
  }

  struct Connect {
    core::RelayId relay;
    wire::SocketAddress peer;
    core::ConnectionId id;
  };
  bool connectToPeer(core::RelayId relay, const wire::SocketAddress& peer, core::ConnectionId id) noexcept override {
    connects.push_back({relay, peer, id});
    return accept;
  }
  bool joinConnection(core::ConnectionId id, const core::FiveTuple& client) noexcept override {
    joined.push_back({id, client});
    return accept;
  }
  void closeConnection(core::ConnectionId id) noexcept override { closed_connections.push_back(id); }
  bool transferConnection(const core::FiveTuple& client, std::uint8_t owner, wire::Bytes request) noexcept override {
    if (owner >= workers) return false;
    transfers.push_back({client, owner, {request.begin(), request.end()}});
    return true;
  }

  // RFC 8016 across workers: what forwardToOwner and handOver were asked to move.
  bool forwardToOwner(std::uint8_t owner, const core::FiveTuple& tuple, wire::Bytes request) noexcept override {
    if (owner >= workers) return false;
    transfers.push_back({tuple, owner, {request.begin(), request.end()}});
    return true;
  }
  bool handOver(std::uint8_t to, core::AllocationHandOver& moved) noexcept override {
    if (to >= workers) return false;
    // The relay sockets leave with the allocation.
    for (const core::RelayEndpoint& r : moved.allocation->relays()) open_relays.erase(r.id);
    handed_over.emplace_back(to, std::move(moved));
    return true;
  }
  struct Moved {
    wire::SocketAddress from;
    wire::SocketAddress to;
    bool cross_worker;
  };
  void onAllocationMoved(const core::Allocation& a, const wire::SocketAddress& previous,
                         bool cross_worker) noexcept override {
    moves.push_back({previous, a.tuple().client, cross_worker});
  }
  std::vector<std::pair<std::uint8_t, core::AllocationHandOver>> handed_over;
  std::vector<Moved> moves;

  struct Transfer {
    core::FiveTuple client;
    std::uint8_t owner;
    std::vector<std::uint8_t> request;
  };
  std::vector<Connect> connects;
  // The usage record of every allocation that ended (ServerOutput::onAllocationEnded).
  struct Ended {
    std::string username;
    std::string reason;
    core::AllocationUsage usage;
  };
  void onAllocationEnded(const core::Allocation& a, std::string_view reason, std::chrono::seconds) noexcept override {
    ended.push_back({a.username(), std::string(reason), a.usage()});
  }
  std::vector<Ended> ended;

  // Sources that went over their limit of unauthenticated answers, once per episode.
  void onSourceRateLimited(const core::FiveTuple& tuple, const core::UnauthenticatedLimits&) noexcept override {
    rate_limited.push_back(tuple);
  }
  std::vector<core::FiveTuple> rate_limited;
  // Allocations that went over their request limit, once per episode.
  void onAllocationRequestLimited(const core::Allocation& a,
                                  const core::RequestRateLimit&) noexcept override {
    request_limited.push_back(a.tuple());
  }
  std::vector<core::FiveTuple> request_limited;

  std::vector<std::pair<core::ConnectionId, core::FiveTuple>> joined;
  std::vector<core::ConnectionId> closed_connections;
  std::vector<Transfer> transfers;
  std::vector<Sent> sent;
  std::vector<ToPeer> to_peers;
  std::map<core::RelayId, wire::SocketAddress> open_relays;
  std::map<core::RelayId, core::RelayProtocol> relay_protocols;
  // Where the relay sockets' openings and closings are recorded for the peer policy (the
  // harness sets it to its services' LiveRelayPorts).
  std::shared_ptr<core::LiveRelayPorts> live_relays;
  std::vector<core::RelayId> closed_relays;
  core::RelayRequest last_request;
  std::set<std::uint64_t> reserved;
  core::RelayId next_relay = 0;
  std::size_t ports_left = 1000;
  std::uint8_t workers = 4;  // for transferConnection
  bool ipv6 = false;
  bool accept = true;
};

}  // namespace tern::test
