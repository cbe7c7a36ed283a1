// The relay sockets of one worker (core::RelayOutput): one per relayed transport address of
// an allocation (RFC 8656 §7.2), a UDP socket or, for RFC 6062 TCP allocations, a listening
// TCP socket. It owns the worker's view of the relay port range, claims EVEN-PORT
// reservations, and records every open relayed address for the peer policy
// (core::LiveRelayPorts). Indexed by core::RelayId, so the core names a socket by a number.
#pragma once

#include <memory>
#include <optional>
#include <vector>

#include "relay/core/server_output.hpp"
#include "relay/io/event_loop.hpp"
#include "relay/io/io_batch.hpp"
#include "relay/io/port_pool.hpp"
#include "relay/io/tcp_listener.hpp"
#include "relay/io/udp_listener.hpp"
#include "relay/io/worker_log.hpp"
#include "relay/io/worker_setup.hpp"

namespace tern::core {
class TurnServer;
}

namespace tern::io {

// One allocation's relay socket: UDP, or a TCP listener for RFC 6062; neither when free.
struct RelaySocket {
  std::unique_ptr<UdpListener> udp;
  std::unique_ptr<TcpListener> tcp;
  bool open() const noexcept { return udp || tcp; }
  const wire::SocketAddress& localAddress() const noexcept {
    return udp ? udp->localAddress() : tcp->localAddress();
  }
  core::RelayProtocol protocol() const noexcept {
    return tcp ? core::RelayProtocol::kTcp : core::RelayProtocol::kUdp;
  }
  int fd() const noexcept { return udp ? udp->fd() : tcp->fd(); }
};

// UDP relay sockets hand the core what peers send them: datagrams (RFC 8656 §11.3, §12.6)
// and ICMP errors about datagrams sent to peers (§11.5).
class PeerDatagrams final : public DatagramHandler {
 public:
  PeerDatagrams(const EventLoop& loop, core::TurnServer& server) noexcept
      : loop_(loop), server_(server) {}
  void onDatagram(UdpListener& socket, const wire::SocketAddress& from,
                  wire::Bytes data) noexcept override;
  void onIcmpError(UdpListener& socket, const IcmpError& error) noexcept override;

 private:
  const EventLoop& loop_;
  core::TurnServer& server_;
};

class RelaySockets final : public core::RelayOutput {
 public:
  // A relay socket serves one allocation; a listener, every client of the worker. Per wakeup
  // each reads up to its budget, so listeners are drained in proportion to what they carry.
  static constexpr unsigned kRelayBudget = 64;

  // Datagrams (and ICMP errors) from peers go to `peer_datagrams`, connections from peers to
  // a TCP allocation's listener to `peer_connections`.
  RelaySockets(EventLoop& loop, IoBatch& batch, const WorkerSetup& setup, WorkerLog& log,
               DatagramHandler& peer_datagrams, ConnectionAcceptor& peer_connections);

  // --- core::RelayOutput
  std::optional<core::OpenedRelay> openRelay(const core::RelayRequest& request,
                                             core::RelayError& error) noexcept override;
  void closeRelay(core::RelayId id) noexcept override;
  bool sendToPeer(core::RelayId id, const wire::SocketAddress& peer,
                  wire::Bytes payload) noexcept override {
    return id < relays_.size() && relays_[id].udp && relays_[id].udp->send(peer, payload);
  }

  // The listening socket of a TCP allocation (RFC 6062), or null.
  const TcpListener* tcpListener(core::RelayId id) const noexcept {
    return id < relays_.size() ? relays_[id].tcp.get() : nullptr;
  }
  bool isUdp(core::RelayId id) const noexcept { return id < relays_.size() && relays_[id].udp; }

  // RFC 8016 between workers. The UDP relay socket `id` leaves this worker open, and its port
  // leaves this worker's share of the port range: the new owner's pool gets it back when the
  // allocation ends there.
  FileDescriptor release(core::RelayId id);
  // Takes over a UDP relay socket another worker released; kLostRelay if it cannot.
  core::RelayId adopt(FileDescriptor fd) noexcept;

  // Stop and resume reading UDP relay socket `id` (peers' datagrams wait in its buffer
  // meanwhile): an upgrade's new process reads its idle sockets later (adoptRestored). The
  // old process pauses nothing: its workers are parked from the freeze until they have
  // closed what moved.
  void pause(core::RelayId id) noexcept {
    if (isUdp(id)) relays_[id].udp->pause();
  }
  void resume(core::RelayId id) noexcept {
    if (isUdp(id)) relays_[id].udp->resume();
  }
  // In the old process after the commit: socket `id` is the new process's to read; it closes
  // here later (UdpListener::watchDisowned).
  void disown(core::RelayId id) noexcept;
  int fd(core::RelayId id) const noexcept { return id < relays_.size() && relays_[id].open() ? relays_[id].fd() : -1; }
  // In an upgrade's new process: take over a relay socket (UDP, or an RFC 6062 allocation's
  // TCP listener) the old process held, its port and its place in the peer policy's view with
  // it. `poll_now` false (an upgrade's idle allocations): the socket is read only once
  // pollDeferred() reaches it, so the first loop iteration after the hand-over registers only
  // the busy sockets with epoll (a few microseconds each; 5,000 at once were a 20-40 ms gap
  // for every call). Until then its datagrams wait in its buffer.
  core::RelayId adoptRestored(FileDescriptor fd, bool poll_now = true) noexcept;
  // Starts reading the deferred sockets, a slice per loop iteration, from the next one on.
  void pollDeferred() noexcept;
  // This worker's unclaimed EVEN-PORT reservations (RFC 8656 §7.2) leave the registry with an
  // upgrade, their ports still taken: put back if it fails, the ports released once the new
  // process holds them. There, each port is claimed in this worker's pool again.
  std::vector<HandedReservation> takeReservations();
  void returnReservations(const std::vector<HandedReservation>& taken) noexcept;
  void releaseReservations(const std::vector<HandedReservation>& handed) noexcept;
  std::size_t adoptReservations(const std::vector<HandedReservation>& handed) noexcept;

  // Once a second: ports of expired EVEN-PORT reservations go back to the pool; port gauges.
  void onTick(metrics::WorkerCounters& counters) noexcept;
  // Closes every relay socket (the worker is stopping).
  void closeAll() noexcept;

  // Every open relay socket with its id: the worker's inventory.
  template <class F>
  void forEach(F&& f) const {
    for (std::size_t id = 0; id < relays_.size(); ++id) {
      if (relays_[id].open()) f(static_cast<core::RelayId>(id), relays_[id]);
    }
  }

 private:
  // `out_of_sockets` (if given) tells a descriptor or memory shortage from a port in use.
  std::optional<core::OpenedRelay> openOn(const wire::SocketAddress& address,
                                          const SocketOptions& options, bool tcp,
                                          bool* out_of_sockets = nullptr) noexcept;
  std::optional<core::OpenedRelay> openReserved(std::uint64_t token, const SocketOptions& options,
                                                core::RelayError& error) noexcept;
  // adoptRestored's step for an RFC 6062 allocation's listening socket.
  core::RelayId adoptTcp(FileDescriptor fd) noexcept;
  void logOpenFailure(const wire::SocketAddress& address, const BoundSocket& bound) noexcept;
  core::RelayId reserveId();
  // A relay id with `install(RelaySocket&, id)` run on its slot; kLostRelay (logged) if either
  // fails. For the sockets an upgrade or another worker hands over.
  template <class F>
  core::RelayId adoptAs(F&& install) noexcept;
  // The peer policy lets clients reach the relay's own addresses only where a relay socket is
  // open (core::LiveRelayPorts), so every bind and close of one is recorded there.
  void mark(const RelaySocket& relay, bool open) noexcept;

  EventLoop& loop_;
  IoBatch& batch_;
  const WorkerSetup& setup_;
  WorkerLog& log_;
  DatagramHandler& peer_datagrams_;
  ConnectionAcceptor& peer_connections_;
  PortPool ports_;
  std::vector<RelaySocket> relays_;  // indexed by RelayId; empty when free
  std::vector<core::RelayId> free_ids_;
  std::size_t next_relay_ip_ = 0;
  core::TimePoint out_of_sockets_logged_{};
  std::vector<core::RelayId> deferred_;  // adopted, not yet read (adoptRestored)
  std::vector<bool> disowned_;            // by RelayId: the new process reads it (disown)
  OneShotTimer poll_deferred_;
};

}  // namespace tern::io
