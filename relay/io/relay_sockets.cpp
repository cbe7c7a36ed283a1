// The worker's relay sockets; see relay_sockets.hpp.
#include "relay/io/relay_sockets.hpp"

#include <sys/socket.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "relay/core/turn_server.hpp"
#include "relay/io/log.hpp"
#include "relay/wire/checks.hpp"

namespace tern::io {

namespace {

// The steady clock shared with reservations made by other workers (uv_now is per loop).
std::chrono::steady_clock::time_point steadyNow() noexcept {
  return std::chrono::steady_clock::now();
}

std::shared_ptr<RelayPortRange> rangeOf(const WorkerSetup& setup) {
  if (setup.relay_ports) return setup.relay_ports;
  return std::make_shared<RelayPortRange>(setup.relay_port_first, setup.relay_port_last);
}

// A relay socket carries one allocation: the system's default buffers suffice, and
// multiplied by thousands of allocations, large ones would not.
SocketOptions relaySocketOptions(const core::RelayRequest& request) noexcept {
  if (request.tcp) {
    // RFC 6062 §5.2: connections to peers leave from the relayed address itself, so the
    // listener and those sockets share the port (SO_REUSEPORT, same user). Kernel defaults
    // suit TCP buffers better than the UDP sizes.
    SocketOptions options{};
    options.reuse_port = true;
    return options;
  }
  SocketOptions options{0, 0, false, request.dont_fragment};
  // RFC 8656 §11.5: ICMP errors about datagrams to peers reach the client.
  options.receive_errors = true;
  return options;
}

}  // namespace

void PeerDatagrams::onDatagram(UdpListener& socket, const wire::SocketAddress& from,
                               wire::Bytes data) noexcept {
  server_.onPeerPacket(socket.id(), from, data, loop_.now());
}

void PeerDatagrams::onIcmpError(UdpListener& socket, const IcmpError& error) noexcept {
  server_.onPeerIcmp(socket.id(), error.peer, error.type, error.code, error.info, loop_.now());
}

RelaySockets::RelaySockets(EventLoop& loop, IoBatch& batch, const WorkerSetup& setup,
                           WorkerLog& log, DatagramHandler& peer_datagrams,
                           ConnectionAcceptor& peer_connections)
    : loop_(loop),
      batch_(batch),
      setup_(setup),
      log_(log),
      peer_datagrams_(peer_datagrams),
      peer_connections_(peer_connections),
      ports_(rangeOf(setup), setup.relay_port_first, setup.relay_port_last),
      poll_deferred_(loop, [this] { pollDeferred(); }) {}

std::optional<core::OpenedRelay> RelaySockets::openRelay(const core::RelayRequest& request,
                                                         core::RelayError& error) noexcept {
  const SocketOptions options = relaySocketOptions(request);
  // RFC 8656 §7.2: a RESERVATION-TOKEN names the exact address, reserved by some worker.
  if (request.reservation_token) return openReserved(*request.reservation_token, options, error);
  std::vector<const wire::IpAddress*> candidates;
  for (const auto& ip : setup_.relay_ips) {
    if (ip.family() == request.family) candidates.push_back(&ip);
  }
  if (candidates.empty()) {
    error = core::RelayError::kFamilyNotConfigured;
    return std::nullopt;
  }
  const wire::IpAddress& ip = *candidates[next_relay_ip_++ % candidates.size()];
  // A port of our share may still be taken by another program; try a few before giving up.
  for (int attempt = 0; attempt < 8; ++attempt) {
    const auto port = request.even_port ? ports_.takeEven(request.reserve_next) : ports_.take();
    if (!port) break;
    bool out_of_sockets = false;
    auto opened = openOn({ip, *port}, options, request.tcp, &out_of_sockets);
    if (!opened) {
      if (request.reserve_next) ports_.release(static_cast<std::uint16_t>(*port + 1));
      if (out_of_sockets) {
        // Not the port's fault: it goes back, and other ports would fail alike.
        ports_.release(*port);
        error = core::RelayError::kOutOfSockets;
        return std::nullopt;
      }
      continue;  // the failed port stays out of the pool for this run
    }
    if (request.reserve_next) {
      opened->reservation_token = setup_.reservations->reserve(
          ip, static_cast<std::uint16_t>(*port + 1), log_.worker(), steadyNow());
    }
    return opened;
  }
  error = core::RelayError::kNoPortAvailable;
  return std::nullopt;
}

std::optional<core::OpenedRelay> RelaySockets::openReserved(std::uint64_t token,
                                                            const SocketOptions& options,
                                                            core::RelayError& error) noexcept {
  auto reserved = setup_.reservations->claim(token, steadyNow());
  if (!reserved) {
    error = core::RelayError::kUnknownReservation;
    return std::nullopt;
  }
  if (auto opened = openOn(*reserved, options, false)) return opened;
  // Claimed but unusable (taken by another program): it is ours now; keep it out.
  error = core::RelayError::kNoPortAvailable;
  return std::nullopt;
}

std::optional<core::OpenedRelay> RelaySockets::openOn(const wire::SocketAddress& address,
                                                      const SocketOptions& options, bool tcp,
                                                      bool* out_of_sockets) noexcept {
  BoundSocket bound =
      tryOpenBoundSocket(tcp ? SocketKind::kTcp : SocketKind::kUdp, address, options);
  if (!bound.fd) {
    const int code = bound.error;
    if (out_of_sockets != nullptr) {
      *out_of_sockets = code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM;
    }
    logOpenFailure(address, bound);
    return std::nullopt;
  }
  try {
    const core::RelayId id = reserveId();
    RelaySocket& relay = relays_[id];
    try {
      if (tcp) {
        relay.tcp = std::make_unique<TcpListener>(loop_.get(), std::move(bound.fd),
                                                  peer_connections_, false, id);
      } else {
        relay.udp = std::make_unique<UdpListener>(loop_.get(), std::move(bound.fd), peer_datagrams_,
                                                  batch_, id, kRelayBudget);
        relay.udp->watchDisowned(&disowned_);
      }
    } catch (...) {
      free_ids_.push_back(id);
      throw;
    }
    mark(relay, true);
    return core::OpenedRelay{id, relay.localAddress(), std::nullopt};
  } catch (const std::exception& e) {
    log::warn("relay socket failed", {{"worker", log_.worker()}, {"error", e.what()}});
    return std::nullopt;
  }
}

void RelaySockets::logOpenFailure(const wire::SocketAddress& address,
                                  const BoundSocket& bound) noexcept {
  const int code = bound.error;
  if (code != EMFILE && code != ENFILE && code != ENOBUFS && code != ENOMEM) {
    log::warn("relay socket failed", {{"worker", log_.worker()},
                                      {"address", address.toString()},
                                      {"step", bound.step},
                                      {"error", std::strerror(code)}});
    return;
  }
  // Every Allocate fails alike until allocations end: one line per minute, not per request.
  if (out_of_sockets_logged_ != core::TimePoint{} &&
      loop_.now() - out_of_sockets_logged_ <= std::chrono::minutes(1)) {
    return;
  }
  out_of_sockets_logged_ = loop_.now();
  log::warn("relay sockets exhausted: Allocate answers 508 until allocations end",
            {{"worker", log_.worker()},
             {"step", bound.step},
             {"error", std::strerror(code)},
             {"open_files_limit", openFilesLimit()},
             {"raise", "LimitNOFILE= (systemd) or ulimit -n"}});
}

void RelaySockets::closeRelay(core::RelayId id) noexcept {
  if (id >= relays_.size() || !relays_[id].open()) return;
  ports_.release(relays_[id].localAddress().port);
  mark(relays_[id], false);
  relays_[id] = {};  // closes the handle; libuv frees it in the close callback
  if (id < disowned_.size()) disowned_[id] = false;
  free_ids_.push_back(id);
}

void RelaySockets::disown(core::RelayId id) noexcept {
  if (!isUdp(id)) return;
  try {
    if (disowned_.size() < relays_.size()) disowned_.resize(relays_.size());
    disowned_[id] = true;
  } catch (const std::bad_alloc&) {
    pause(id);  // a system call instead
  }
}

FileDescriptor RelaySockets::release(core::RelayId id) {
  TERN_BUG_IF(!isUdp(id), "a relay socket that is not an open UDP socket was handed over");
  if (!isUdp(id)) return {};  // the new owner's adopt() fails: the allocation loses this relay
  FileDescriptor fd = relays_[id].udp->release();
  relays_[id] = {};
  free_ids_.push_back(id);
  return fd;
}

core::RelayId RelaySockets::adopt(FileDescriptor fd) noexcept {
  return adoptAs([&](RelaySocket& relay, core::RelayId id) {
    relay.udp = std::make_unique<UdpListener>(loop_.get(), std::move(fd), peer_datagrams_, batch_,
                                              id, kRelayBudget);
    relay.udp->watchDisowned(&disowned_);
  });
}

template <class F>
core::RelayId RelaySockets::adoptAs(F&& install) noexcept {
  try {
    const core::RelayId id = reserveId();
    try {
      install(relays_[id], id);
    } catch (...) {
      free_ids_.push_back(id);
      throw;
    }
    return id;
  } catch (const std::exception& e) {
    log::warn("relay socket hand-over failed", {{"worker", log_.worker()}, {"error", e.what()}});
    return core::kLostRelay;
  }
}

core::RelayId RelaySockets::adoptRestored(FileDescriptor fd, bool poll_now) noexcept {
  int type = 0;
  socklen_t length = sizeof type;
  const bool stream =
      ::getsockopt(fd.get(), SOL_SOCKET, SO_TYPE, &type, &length) == 0 && type == SOCK_STREAM;
  const core::RelayId id = stream ? adoptTcp(std::move(fd)) : adopt(std::move(fd));
  if (id == core::kLostRelay) return id;
  const std::uint16_t port = relays_[id].localAddress().port;
  if (!ports_.adopt(port)) {
    TERN_BUG_IF(true, "an upgrade handed over a relay port this process already holds");
    relays_[id] = {};
    free_ids_.push_back(id);
    return core::kLostRelay;
  }
  mark(relays_[id], true);
  if (!poll_now && isUdp(id)) {
    try {
      deferred_.push_back(id);
      pause(id);  // before the loop ever ran: epoll never heard of it
    } catch (const std::bad_alloc&) {
      // Read at once instead.
    }
  }
  return id;
}

std::vector<HandedReservation> RelaySockets::takeReservations() {
  return setup_.reservations->takeForUpgrade(log_.worker(), steadyNow());
}

void RelaySockets::returnReservations(const std::vector<HandedReservation>& taken) noexcept {
  const auto now = steadyNow();
  for (const HandedReservation& r : taken) {
    try {
      (void)setup_.reservations->put(r, log_.worker(), now);
    } catch (const std::bad_alloc&) {
      ports_.release(r.address.port);  // lost: its token gets 508, as an expired one
    }
  }
}

void RelaySockets::releaseReservations(const std::vector<HandedReservation>& handed) noexcept {
  for (const HandedReservation& r : handed) ports_.release(r.address.port);
}

std::size_t RelaySockets::adoptReservations(const std::vector<HandedReservation>& handed) noexcept {
  const auto now = steadyNow();
  std::size_t adopted = 0;
  for (const HandedReservation& r : handed) {
    // Expiry hands the port back to this pool, a claim to the relay socket opened on it.
    if (!ports_.adopt(r.address.port)) continue;
    bool put = false;
    try {
      put = setup_.reservations->put(r, log_.worker(), now);
    } catch (const std::bad_alloc&) {
    }
    if (put) {
      ++adopted;
    } else {
      ports_.release(r.address.port);
    }
  }
  return adopted;
}

core::RelayId RelaySockets::adoptTcp(FileDescriptor fd) noexcept {
  return adoptAs([&](RelaySocket& relay, core::RelayId id) {
    relay.tcp =
        std::make_unique<TcpListener>(loop_.get(), std::move(fd), peer_connections_, false, id);
  });
}

void RelaySockets::onTick(metrics::WorkerCounters& counters) noexcept {
  for (std::uint16_t port : setup_.reservations->expire(log_.worker(), steadyNow()))
    ports_.release(port);
  counters.relay_ports_held.set(ports_.heldDelta());
  counters.relay_ports_borrowed.set(static_cast<std::int64_t>(ports_.borrowed()));
}

void RelaySockets::closeAll() noexcept {
  for (std::size_t id = 0; id < relays_.size(); ++id) closeRelay(static_cast<core::RelayId>(id));
  deferred_.clear();
  poll_deferred_.close();
}

void RelaySockets::pollDeferred() noexcept {
  // Each slice is that many epoll_ctl calls in the next iteration, between which the busy
  // sockets are read.
  constexpr std::size_t kSlice = 256;
  const std::size_t count = std::min(kSlice, deferred_.size());
  // A deferred id may have closed and been reused since: resuming a reading socket is a no-op.
  for (std::size_t i = deferred_.size() - count; i < deferred_.size(); ++i) resume(deferred_[i]);
  deferred_.resize(deferred_.size() - count);
  // 1 ms, not 0: libuv runs a timer re-armed for now again in the same pass, which would
  // queue every slice before the first poll.
  if (!deferred_.empty()) (void)poll_deferred_.start(1);
}

core::RelayId RelaySockets::reserveId() {
  if (!free_ids_.empty()) {
    const core::RelayId id = free_ids_.back();
    free_ids_.pop_back();
    return id;
  }
  relays_.emplace_back();
  return static_cast<core::RelayId>(relays_.size() - 1);
}

void RelaySockets::mark(const RelaySocket& relay, bool open) noexcept {
  core::LiveRelayPorts* live = setup_.live_relays.get();
  if (live == nullptr) return;
  if (open) {
    live->markOpen(relay.protocol(), relay.localAddress());
  } else {
    live->markClosed(relay.protocol(), relay.localAddress());
  }
}

}  // namespace tern::io
