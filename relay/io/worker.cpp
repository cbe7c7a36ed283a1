// The worker thread and everything on it; see worker.hpp.
#include "relay/io/worker.hpp"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <optional>
#include <unordered_map>

#include "relay/core/turn_server.hpp"
#include "relay/io/dtls_endpoint.hpp"
#include "relay/io/event_loop.hpp"
#include "relay/io/log.hpp"
#include "relay/io/port_pool.hpp"
#include "relay/io/stream_connection.hpp"
#include "relay/io/tcp_listener.hpp"
#include "relay/io/udp_listener.hpp"

namespace tern::io {

namespace {

struct StreamKey {
  wire::SocketAddress client;
  wire::SocketAddress server;
  friend bool operator==(const StreamKey&, const StreamKey&) noexcept = default;
};

struct StreamKeyHash {
  std::size_t operator()(const StreamKey& k) const noexcept {
    return wire::hashOf(k.client) * 31 + wire::hashOf(k.server);
  }
};

}  // namespace

class Worker::Loop final : public DatagramHandler,
                           public ConnectionAcceptor,
                           public StreamHandler,
                           public DtlsEndpoint::Host,
                           public core::ClientOutput,
                           public core::RelayOutput,
                           public core::PeerConnectionOutput,
                           public core::WorkerOutput,
                           public core::ServerEvents {


 public:
  Loop(Worker& worker, WorkerSockets sockets)
      : worker_(worker),
        mailbox_(loop_),
        tick_(loop_, kTickMs, [this] { onTick(); }),
        ports_(worker.setup_.relay_ports ? worker.setup_.relay_ports
                                         : std::make_shared<RelayPortRange>(worker.setup_.relay_port_first,
                                                                            worker.setup_.relay_port_last),
               worker.setup_.relay_port_first, worker.setup_.relay_port_last),
        peers_(*this),
        server_(worker.setup_.options, worker.setup_.services, *this, *worker.counters_),
        dtls_endpoint_(*this, loop_, *worker.counters_, worker.setup_.dtls, worker.setup_.dtls_limits),
        tls_(worker.setup_.tls) {
    server_.setUnixTime(static_cast<std::int64_t>(std::time(nullptr)));
    worker.counters_->last_tick_ns.set(steadyNanoseconds());
    io_batch_.attach(loop_.get());
    io_batch_.setSegmentation(worker.settings_.udp_segmentation);
    for (auto& fd : sockets.udp) {
      udp_.push_back(std::make_unique<UdpListener>(loop_.get(), std::move(fd), *this, io_batch_));
    }
    for (auto& fd : sockets.tcp) {
      tcp_.push_back(std::make_unique<TcpListener>(loop_.get(), std::move(fd), *this));
    }
    for (auto& fd : sockets.tls) {
      tcp_.push_back(std::make_unique<TcpListener>(loop_.get(), std::move(fd), *this, true));
    }
    for (auto& fd : sockets.dtls) {
      dtls_.push_back(std::make_unique<UdpListener>(loop_.get(), std::move(fd), dtls_endpoint_, io_batch_));
    }
  }

  Mailbox& mailbox() noexcept { return mailbox_; }
  void setTls(std::shared_ptr<const TlsContext> tls, std::shared_ptr<const TlsContext> dtls) noexcept {
    tls_ = std::move(tls);
    dtls_endpoint_.setContext(std::move(dtls));
  }
  void run() { loop_.run(); }
  int closeLoop() noexcept { return loop_.close(); }

  // Ends every allocation and closes every handle; the loop returns once their close
  // callbacks have run.
  void stop() noexcept {
    server_.shutdown(loop_.now());
    auto connections = std::move(connections_);
    connections_.clear();
    for (auto& [key, connection] : connections) connection->finish("server stopping");
    auto peer_connections = std::move(peer_connections_);
    peer_connections_.clear();
    for (auto& [id, connection] : peer_connections) connection->finish("server stopping");
    closed_.clear();
    paused_pipes_.clear();
    resume_timer_.close();
    dtls_endpoint_.clear();
    // The round's datagrams (DTLS close_notify alerts among them) leave before their sockets
    // close; from here on sends go out at once.
    io_batch_.detach();
    for (auto& u : udp_) u->close();
    for (auto& d : dtls_) d->close();
    for (auto& t : tcp_) t->close();
    tick_.close();
    mailbox_.close();
  }

  // --- DatagramHandler
  void onDatagram(UdpListener& socket, const wire::SocketAddress& from,
                  wire::Bytes data) noexcept override {
    onClientPacket({core::Transport::kUdp, from, socket.localAddress()}, data);
  }

  // Every client packet enters the core here. STUN requests are timed for
  // tern_request_duration_seconds; media is not, so it costs no clock read.
  void onClientPacket(const core::FiveTuple& tuple, wire::Bytes data) noexcept {
    if (data.empty() || data[0] >= 0x40) {  // ChannelData (0x40-0x7F) or not STUN
      server_.onClientPacket(tuple, data, loop_.now());
      return;
    }
    const auto header = wire::parseHeader(data);
    if (!header || !header->isRequest()) {
      server_.onClientPacket(tuple, data, loop_.now());
      return;
    }
    const std::uint64_t start = uv_hrtime();
    server_.onClientPacket(tuple, data, loop_.now());
    worker_.counters_->request_duration[metrics::idx(metrics::requestMethodOf(header->method()))].observe(
        static_cast<double>(uv_hrtime() - start) / 1e9);
  }

  // --- ConnectionAcceptor
  void onConnection(TcpListener& listener) noexcept override {
    try {
      auto connection = std::make_unique<StreamConnection>(loop_.get(), listener.stream(), *this, loop_.now(),
                                                           tls_, listener.requireTls());
      const auto admission = worker_.setup_.connection_limits->acquire(connection->tuple().client.ip);
      if (admission.verdict != ConnectionLimits::Verdict::kAccepted) {
        refuseConnection(*connection, admission);
        return;  // it is not in connections_, so onClosed() ignored it; its handle closes itself
      }
      StreamKey key{connection->tuple().client, connection->tuple().server};
      try {
        connections_[key] = std::move(connection);
      } catch (...) {
        worker_.setup_.connection_limits->release(key.client.ip);
        throw;
      }
      worker_.counters_->tcp_connections_open.set(static_cast<std::int64_t>(connections_.size()));
    } catch (const std::exception& e) {
      // Accept can fail when the client has already gone (ECONNABORTED) or fds run out.
      std::uint64_t suppressed = 0;
      if (mayLog(suppressed)) log::warn("tcp accept failed", {{"worker", worker_.index_}, {"error", e.what()}, {"suppressed", suppressed}});
    }
  }

  // Over --max-tcp-connections-per-ip or --max-tcp-connections: reset at once, before a
  // byte is read (no TLS session, no buffer), counted, and logged once per source until its
  // count falls under the limit again (and within the worker's line budget).
  void refuseConnection(StreamConnection& connection, const ConnectionLimits::Admission& admission) noexcept {
    const bool per_source = admission.verdict == ConnectionLimits::Verdict::kSourceLimit;
    worker_.counters_->tcpConnectionRefused(per_source ? metrics::ConnectionLimit::kPerIp
                                                       : metrics::ConnectionLimit::kTotal);
    std::uint64_t suppressed = 0;
    if (admission.first_refusal && log::enabled(log::LogLevel::kWarn) && mayLog(suppressed)) {
      log::write(log::LogLevel::kWarn, "tcp connection refused: over a connection limit; more from this source "
                                       "are refused silently until it closes some",
                 {{"client", connection.tuple().client.ip.toString()},
                  {"limit", per_source ? "max-tcp-connections-per-ip" : "max-tcp-connections"},
                  {"worker", worker_.index_},
                  {"suppressed", suppressed}});
    }
    connection.reset(per_source ? "over --max-tcp-connections-per-ip" : "over --max-tcp-connections");
  }

  // --- StreamHandler
  IoBatch* ioBatch() noexcept override { return &io_batch_; }
  void onFrame(StreamConnection& connection, wire::Bytes frame) noexcept override {
    onClientPacket(connection.tuple(), frame);
  }
  void onClosed(StreamConnection& connection) noexcept override {
    // The connection may be inside its own callback: destroy it on the next tick.
    if (connection.peerSide()) {
      auto it = peer_connections_.find(connection.connectionId());
      if (it == peer_connections_.end() || it->second.get() != &connection) return;
      closed_.push_back(std::move(it->second));
      peer_connections_.erase(it);
      server_.onConnectionClosed(connection.connectionId());
      return;
    }
    auto it = connections_.find({connection.tuple().client, connection.tuple().server});
    if (it == connections_.end() || it->second.get() != &connection) return;
    closed_.push_back(std::move(it->second));
    connections_.erase(it);
    worker_.setup_.connection_limits->release(connection.tuple().client.ip);
    worker_.counters_->tcp_connections_open.set(static_cast<std::int64_t>(connections_.size()));
    server_.onClientClosed(connection.tuple(), loop_.now());
  }
  void onConnected(StreamConnection& connection, bool ok) noexcept override {
    server_.onPeerConnected(connection.connectionId(), ok, loop_.now());
  }
  void onPiped(StreamConnection& from, std::size_t bytes) noexcept override {
    // Both sides of a pipe carry the peer connection's CONNECTION-ID.
    const auto now = loop_.now();
    const auto wait = server_.onConnectionRelayed(from.connectionId(), pipeDirection(from.peerSide()), bytes, now);
    // A paused TLS side still pipes the records it had decrypted: one entry per pause.
    if (wait.count() > 0 && !from.paused()) pausePipe(from, now + wait);
  }

  // --- Bandwidth limits on RFC 6062 pipes: bytes in a TCP stream cannot be dropped, so a side
  // over its limit stops reading (TCP flow control slows its sender) until its buckets have
  // refilled. One timer, armed for the earliest such moment, serves every paused side.
  struct PausedPipe {
    core::ConnectionId id;  // the peer connection's, which both sides carry
    bool peer_side;         // which side stopped reading
    core::TimePoint resume;
  };

  static metrics::Direction pipeDirection(bool peer_side) noexcept {
    return peer_side ? metrics::Direction::kPeerToClient : metrics::Direction::kClientToPeer;
  }

  void pausePipe(StreamConnection& side, core::TimePoint resume) noexcept {
    try {
      paused_pipes_.push_back({side.connectionId(), side.peerSide(), resume});
    } catch (const std::bad_alloc&) {
      return;  // better over the limit for a moment than stopped for good
    }
    side.pauseReading();
    armResumeTimer(resume);
  }

  void armResumeTimer(core::TimePoint at) noexcept {
    if (resume_due_ && *resume_due_ <= at) return;
    const auto now = loop_.now();
    const auto delay = at > now ? std::chrono::ceil<std::chrono::milliseconds>(at - now).count() : 0;
    if (resume_timer_.start(static_cast<std::uint64_t>(delay))) resume_due_ = at;
  }

  StreamConnection* pipeSide(core::ConnectionId id, bool peer_side) noexcept {
    auto it = peer_connections_.find(id);
    if (it == peer_connections_.end()) return nullptr;
    return peer_side ? it->second.get() : it->second->partner();
  }

  // The core decides again: other allocations of the user may have emptied the shared bucket
  // meanwhile, or a reload changed the limit.
  void resumePipes() noexcept {
    resume_due_.reset();
    const auto now = loop_.now();
    std::optional<core::TimePoint> next;
    std::erase_if(paused_pipes_, [&](PausedPipe& p) {
      StreamConnection* side = pipeSide(p.id, p.peer_side);
      if (side == nullptr || side->closed()) return true;
      const auto wait = server_.connectionWait(p.id, pipeDirection(p.peer_side), now);
      if (wait.count() > 0) {
        p.resume = now + wait;
        next = next ? std::min(*next, p.resume) : p.resume;
        return false;
      }
      side->resumeReading();  // reading starts in a later loop iteration, not in this call
      return true;
    });
    if (next) armResumeTimer(*next);
  }

  // --- RFC 6062: peer connections of TCP allocations
  void onPeerConnection(TcpListener& listener) noexcept {
    std::unique_ptr<StreamConnection> connection;
    try {
      connection = std::make_unique<StreamConnection>(StreamConnection::PeerTag{}, loop_.get(), listener.stream(),
                                                      *this, loop_.now());
    } catch (const std::exception& e) {
      std::uint64_t suppressed = 0;
      if (mayLog(suppressed)) log::warn("peer accept failed", {{"worker", worker_.index_}, {"error", e.what()}, {"suppressed", suppressed}});
      return;
    }
    const auto id = server_.onPeerConnection(listener.id(), connection->tuple().client, loop_.now());
    if (!id) {
      // RFC 6062 §5.3: no permission for this peer.
      connection->close("peer has no permission");
      return;
    }
    connection->setConnectionId(*id);
    peer_connections_[*id] = std::move(connection);
  }

  void onForwardedRefresh(std::uint8_t from, const core::FiveTuple& tuple, const std::vector<std::uint8_t>& request) noexcept {
    server_.onForwardedRefresh(from, tuple, {request.data(), request.size()}, loop_.now());
  }

  void adopt(DetachedConnection& detached) noexcept {
    try {
      auto connection = std::make_unique<StreamConnection>(loop_.get(), detached, *this, loop_.now());
      StreamConnection* raw = connection.get();
      connections_[{raw->tuple().client, raw->tuple().server}] = std::move(connection);
      // The worker it came from released its place when it let it go.
      worker_.setup_.connection_limits->adopt(raw->tuple().client.ip);
      worker_.counters_->tcp_connections_open.set(static_cast<std::int64_t>(connections_.size()));
      raw->inject(detached.unread);
    } catch (const std::exception& e) {
      log::warn("connection hand-over failed", {{"worker", worker_.index_}, {"error", e.what()}});
    }
  }


  // A relay socket serves one allocation; a listener, every client of the worker. Per wakeup
  // each reads up to its budget, so listeners are drained in proportion to what they carry.
  static constexpr unsigned kRelayBudget = 64;

  // --- core::ServerOutput
  bool sendToClient(const core::FiveTuple& tuple, std::span<const wire::Bytes> parts) noexcept override {
    if (tuple.transport == core::Transport::kDtls) return dtls_endpoint_.send(tuple, parts);
    if (tuple.transport == core::Transport::kUdp) {
      for (auto& u : udp_) {
        if (u->localAddress() == tuple.server) return u->send(tuple.client, parts);
      }
      return false;
    }
    auto it = connections_.find({tuple.client, tuple.server});
    return it != connections_.end() && it->second->send(parts);
  }

  std::optional<core::OpenedRelay> openRelay(const core::RelayRequest& request,
                                             core::RelayError& error) noexcept override {
    // A relay socket carries one allocation: the system's default buffers suffice, and
    // multiplied by thousands of allocations, large ones would not.
    SocketOptions options{0, 0, false, request.dont_fragment};
    // RFC 8656 §11.5: ICMP errors about datagrams to peers reach the client.
    options.receive_errors = true;
    if (request.tcp) {
      // RFC 6062 §5.2: connections to peers leave from the relayed address itself, so the
      // listener and those sockets share the port (SO_REUSEPORT, same user). Kernel defaults
      // suit TCP buffers better than the UDP sizes.
      options = SocketOptions{};
      options.reuse_port = true;
    }
    // RFC 8656 §7.2: a RESERVATION-TOKEN names the exact address, reserved by some worker.
    if (request.reservation_token) {
      auto reserved = worker_.setup_.reservations->claim(*request.reservation_token, steadyNow());
      if (!reserved) {
        error = core::RelayError::kUnknownReservation;
        return std::nullopt;
      }
      if (auto opened = openRelayOn(*reserved, options, false)) return opened;
      // Claimed but unusable (taken by another program): it is ours now; keep it out.
      error = core::RelayError::kNoPortAvailable;
      return std::nullopt;
    }
    std::vector<const wire::IpAddress*> candidates;
    for (const auto& ip : worker_.setup_.relay_ips) {
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
      auto opened = openRelayOn({ip, *port}, options, request.tcp, &out_of_sockets);
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
        opened->reservation_token = worker_.setup_.reservations->reserve(
            ip, static_cast<std::uint16_t>(*port + 1), worker_.index_, steadyNow());
      }
      return opened;
    }
    error = core::RelayError::kNoPortAvailable;
    return std::nullopt;
  }

  // `out_of_sockets` (if given) tells a descriptor or memory shortage from a port in use.
  std::optional<core::OpenedRelay> openRelayOn(const wire::SocketAddress& address, const SocketOptions& options,
                                               bool tcp, bool* out_of_sockets = nullptr) noexcept {
    BoundSocket bound = tryOpenBoundSocket(tcp ? SocketKind::kTcp : SocketKind::kUdp, address, options);
    if (!bound.fd) {
      const int code = bound.error;
      if (code == EMFILE || code == ENFILE || code == ENOBUFS || code == ENOMEM) {
        if (out_of_sockets != nullptr) *out_of_sockets = true;
        // Every Allocate fails alike until allocations end: one line per minute, not per request.
        if (out_of_sockets_logged_ == core::TimePoint{} ||
            loop_.now() - out_of_sockets_logged_ > std::chrono::minutes(1)) {
          out_of_sockets_logged_ = loop_.now();
          log::warn("relay sockets exhausted: Allocate answers 508 until allocations end",
                    {{"worker", worker_.index_}, {"step", bound.step}, {"error", std::strerror(code)},
                     {"open_files_limit", openFilesLimit()}, {"raise", "LimitNOFILE= (systemd) or ulimit -n"}});
        }
      } else {
        log::warn("relay socket failed", {{"worker", worker_.index_}, {"address", address.toString()},
                                          {"step", bound.step}, {"error", std::strerror(code)}});
      }
      return std::nullopt;
    }
    try {
      const core::RelayId id = reserveRelayId();
      RelaySocket& relay = relays_[id];
      try {
        if (tcp) {
          relay.tcp = std::make_unique<TcpListener>(loop_.get(), std::move(bound.fd), relay_acceptor_, false, id);
        } else {
          relay.udp = std::make_unique<UdpListener>(loop_.get(), std::move(bound.fd), peers_, io_batch_, id,
                                                    kRelayBudget);
        }
      } catch (...) {
        free_relay_ids_.push_back(id);
        throw;
      }
      markRelay(relay, true);
      return core::OpenedRelay{id, relay.localAddress(), std::nullopt};
    } catch (const std::exception& e) {
      log::warn("relay socket failed", {{"worker", worker_.index_}, {"error", e.what()}});
      return std::nullopt;
    }
  }

  // The steady clock shared with reservations made by other workers (uv_now is per loop).
  static std::chrono::steady_clock::time_point steadyNow() noexcept { return std::chrono::steady_clock::now(); }

  void closeRelay(core::RelayId id) noexcept override {
    if (id >= relays_.size() || !relays_[id].open()) return;
    ports_.release(relays_[id].localAddress().port);
    markRelay(relays_[id], false);
    relays_[id] = {};  // closes the handle; libuv frees it in the close callback
    free_relay_ids_.push_back(id);
  }

  bool sendToPeer(core::RelayId id, const wire::SocketAddress& peer, wire::Bytes payload) noexcept override {
    return id < relays_.size() && relays_[id].udp && relays_[id].udp->send(peer, payload);
  }

  bool connectToPeer(core::RelayId relay, const wire::SocketAddress& peer, core::ConnectionId id) noexcept override {
    if (relay >= relays_.size() || !relays_[relay].tcp) return false;
    try {
      SocketOptions options;
      options.reuse_port = true;
      options.listen = false;
      auto socket = openBoundSocket(SocketKind::kTcp, relays_[relay].tcp->localAddress(), options);
      auto connection = std::make_unique<StreamConnection>(loop_.get(), std::move(socket), peer, *this, loop_.now());
      connection->setConnectionId(id);
      peer_connections_[id] = std::move(connection);
      return true;
    } catch (const std::exception& e) {
      log::debug("peer connect failed", {{"peer", peer.toString()}, {"error", e.what()}});
      return false;
    }
  }

  bool joinConnection(core::ConnectionId id, const core::FiveTuple& client) noexcept override {
    auto peer = peer_connections_.find(id);
    auto data = connections_.find({client.client, client.server});
    if (peer == peer_connections_.end() || data == connections_.end()) return false;
    data->second->setConnectionId(id);
    data->second->pipe(*peer->second);
    return true;
  }

  void closeConnection(core::ConnectionId id) noexcept override {
    auto it = peer_connections_.find(id);
    if (it != peer_connections_.end()) it->second->finish("closed by the relay");
  }

  bool transferConnection(const core::FiveTuple& client, std::uint8_t owner, wire::Bytes request) noexcept override {
    const auto& workers = worker_.setup_.directory->workers;
    if (owner >= workers.size() || workers[owner] == nullptr) return false;
    auto it = connections_.find({client.client, client.server});
    if (it == connections_.end()) return true;
    StreamConnection& connection = *it->second;
    std::unique_ptr<DetachedConnection> detached = connection.detach();
    if (!detached) {
      connection.close("connection could not be moved to its worker");
      return true;
    }
    try {
      // The request goes first: it was taken from the framer before the bytes left in it.
      detached->unread.insert(detached->unread.begin(), request.begin(), request.end());
      workers[owner]->adoptConnection(std::move(detached));
    } catch (const std::exception& e) {
      log::warn("connection hand-over failed", {{"worker", worker_.index_}, {"error", e.what()}});
    }
    return true;
  }

  // --- RFC 8016: allocations move to the worker that receives the client's new 5-tuple
  bool forwardToOwner(std::uint8_t owner, const core::FiveTuple& tuple, wire::Bytes request) noexcept override {
    const auto& workers = worker_.setup_.directory->workers;
    if (owner >= workers.size() || workers[owner] == nullptr || owner == worker_.index_) return false;
    try {
      return workers[owner]->forwardRefresh(static_cast<std::uint8_t>(worker_.index_), tuple,
                                            std::vector<std::uint8_t>(request.begin(), request.end()));
    } catch (const std::exception& e) {
      log::warn("mobility forward failed", {{"worker", worker_.index_}, {"error", e.what()}});
      return false;
    }
  }

  bool handOver(std::uint8_t to, core::AllocationHandOver& moved) noexcept override {
    const auto& workers = worker_.setup_.directory->workers;
    if (to >= workers.size() || workers[to] == nullptr) return false;
    const core::Allocation& a = *moved.allocation;
    for (const core::RelayEndpoint& r : a.relays()) {
      if (r.id >= relays_.size() || !relays_[r.id].udp) return false;  // only UDP relays move
    }
    try {
      auto package = std::make_shared<MovedAllocation>();
      for (const core::RelayEndpoint& r : a.relays()) package->relay_sockets.push_back(releaseRelay(r.id));
      package->hand_over = std::move(moved);
      // If `to` stopped meanwhile, the package dies with its mailbox: sockets close, as the
      // whole process is stopping.
      (void)workers[to]->adoptAllocation(std::move(package));
      return true;
    } catch (const std::exception& e) {
      log::warn("allocation hand-over failed", {{"worker", worker_.index_}, {"error", e.what()}});
      return true;  // the sockets are gone from here: the allocation cannot stay either
    }
  }

  // The relay socket leaves this worker open, and its port leaves this worker's share of the
  // port range: the new owner's pool gets it when the allocation ends there.
  FileDescriptor releaseRelay(core::RelayId id) {
    FileDescriptor fd = relays_[id].udp->release();
    relays_[id] = {};
    free_relay_ids_.push_back(id);
    return fd;
  }

  void adopt(MovedAllocation& moved) noexcept {
    core::Allocation& a = *moved.hand_over.allocation;
    for (std::size_t i = 0; i < moved.relay_sockets.size(); ++i) {
      a.setRelayId(i, adoptRelay(std::move(moved.relay_sockets[i])));
    }
    server_.adoptAllocation(std::move(moved.hand_over), loop_.now());
  }

  core::RelayId adoptRelay(FileDescriptor fd) noexcept {
    try {
      const core::RelayId id = reserveRelayId();
      try {
        relays_[id].udp = std::make_unique<UdpListener>(loop_.get(), std::move(fd), peers_, io_batch_, id,
                                                        kRelayBudget);
      } catch (...) {
        free_relay_ids_.push_back(id);
        throw;
      }
      return id;
    } catch (const std::exception& e) {
      log::warn("relay socket hand-over failed", {{"worker", worker_.index_}, {"error", e.what()}});
      return core::kLostRelay;
    }
  }

  void onAllocationMoved(const core::Allocation& a, const wire::SocketAddress& previous_client,
                         bool cross_worker) noexcept override {
    if (!log::enabled(log::LogLevel::kInfo)) return;
    log::write(log::LogLevel::kInfo, "allocation moved",
               {{"from", previous_client.toString()},
                {"to", a.tuple().client.toString()},
                {"worker", worker_.index_},
                {"cross_worker", cross_worker},
                {"user", a.username()},
                {"relayed", relayedText(a)}});
  }

  // The usage records: one line when an allocation starts and one when it ends, with what it
  // relayed each way; operators bill and audit from these. Never a secret (the username is
  // the public half of a credential). Not rate-limited: each needs a valid credential and is
  // bounded by the allocation quotas.
  // Both addresses of a dual allocation (RFC 8656 §7.2), comma-separated, IPv4 first.
  static std::string relayedText(const core::Allocation& a) {
    std::string text;
    for (const core::RelayEndpoint& r : a.relays()) {
      if (!text.empty()) text += ',';
      text += r.relayed.toString();
    }
    return text;
  }

  void onAllocationCreated(const core::Allocation& a, std::uint32_t lifetime) noexcept override {
    if (!log::enabled(log::LogLevel::kInfo)) return;
    log::write(log::LogLevel::kInfo, "allocation created",
               {{"client", a.tuple().client.toString()},
                {"transport", metrics::labelOf(core::counterTransport(a.tuple().transport))},
                {"user", a.username()},
                {"relayed", relayedText(a)},
                {"lifetime", lifetime}});
  }
  void onAllocationEnded(const core::Allocation& a, std::string_view reason,
                         std::chrono::seconds age) noexcept override {
    if (!log::enabled(log::LogLevel::kInfo)) return;
    const core::AllocationUsage& usage = a.usage();
    log::write(log::LogLevel::kInfo, "allocation ended",
               {{"client", a.tuple().client.toString()},
                {"transport", metrics::labelOf(core::counterTransport(a.tuple().transport))},
                {"user", a.username()},
                {"relayed", relayedText(a)},
                {"reason", reason},
                {"seconds", age.count()},
                {"packets_to_peer", usage.packets_to_peer},
                {"bytes_to_peer", usage.bytes_to_peer},
                {"packets_to_client", usage.packets_to_client},
                {"bytes_to_client", usage.bytes_to_client}});
  }
  void onRequestRefused(const core::FiveTuple& tuple, std::uint16_t method, std::uint16_t code,
                        std::string_view reason) noexcept override {
    // Capacity refusals need an operator; the rest are a client's business, at debug level.
    const bool capacity = code == 486 || code == 508;
    const auto level = capacity ? log::LogLevel::kWarn : log::LogLevel::kDebug;
    std::uint64_t suppressed = 0;
    if (!log::enabled(level) || !mayLog(suppressed)) return;
    log::write(level, "request refused",
               {{"client", tuple.client.toString()},
                {"method", wire::methodName(method)},
                {"code", code},
                {"reason", reason},
                {"suppressed", suppressed}});
  }

  // One line when a source starts being limited, not one per drop (those are counted in
  // tern_dropped_packets_total{reason="rate_limited"}); spoofed floods with many sources
  // still pass through the worker's line budget.
  void onPeersRevoked(const core::Allocation& a, std::size_t permissions, std::size_t channels,
                      std::size_t connections) noexcept override {
    log::warn("peers refused by the reloaded peer policy: their permissions, channels and connections ended",
              {{"client", a.tuple().client.toString()},
               {"username", a.username()},
               {"relayed", a.relayed().toString()},
               {"permissions", permissions},
               {"channels", channels},
               {"connections", connections}});
  }

  void onSourceRateLimited(const core::FiveTuple& tuple, const core::UnauthenticatedLimits& limits) noexcept override {
    std::uint64_t suppressed = 0;
    if (!log::enabled(log::LogLevel::kWarn) || !mayLog(suppressed)) return;
    log::write(log::LogLevel::kWarn, "source over the unauthenticated request limit: dropping its unauthenticated "
                                     "requests until it slows down",
               {{"source", tuple.client.ip.toString()},
                {"transport", metrics::labelOf(core::counterTransport(tuple.transport))},
                {"worker", worker_.index_},
                {"per_second", limits.per_second},
                {"burst", limits.burst},
                {"if_legitimate", "many real clients behind this address: raise --unauthenticated-rate and "
                                  "--unauthenticated-burst"},
                {"suppressed", suppressed}});
  }

  // One line when an allocation starts being limited (each drop is counted in
  // tern_dropped_packets_total{reason="allocation_request_rate"}).
  void onAllocationRequestLimited(const core::Allocation& a,
                                  const core::RequestRateLimit& limit) noexcept override {
    std::uint64_t suppressed = 0;
    if (!log::enabled(log::LogLevel::kWarn) || !mayLog(suppressed)) return;
    log::write(log::LogLevel::kWarn,
               "allocation over its request limit: dropping its requests until it slows down",
               {{"client", a.tuple().client.toString()},
                {"transport", metrics::labelOf(core::counterTransport(a.tuple().transport))},
                {"user", a.username()},
                {"per_second", limit.perSecond()},
                {"burst", limit.burstRequests()},
                {"suppressed", suppressed}});
  }

  // Lines a remote party can trigger at will pass through the worker's budget; the next line
  // that passes says how many did not.
  // --- DtlsEndpoint::Host
  void onDtlsPlaintext(const core::FiveTuple& tuple, wire::Bytes data) noexcept override {
    onClientPacket(tuple, data);
  }
  bool mayLog(std::uint64_t& suppressed) noexcept override {
    if (log_budget_.allow(uv_now(loop_.get()), suppressed)) return true;
    worker_.counters_->log_lines_suppressed.add();
    return false;
  }

  // A configuration reload (see Worker::reconfigure).
  void reconfigure(WorkerReload& reload) noexcept {
    server_.reconfigure(std::move(reload.options), std::move(reload.services), loop_.now());
    setTls(std::move(reload.tls), std::move(reload.dtls));
    tcp_idle_timeout_ = std::chrono::seconds(reload.tcp_idle_timeout);
  }
  void setDraining(bool draining) noexcept { server_.setDraining(draining); }

 private:
  // Relay sockets hand their datagrams to the server as peer packets.
  class PeerReceiver final : public DatagramHandler {
   public:
    explicit PeerReceiver(Loop& loop) : loop_(loop) {}
    void onDatagram(UdpListener& socket, const wire::SocketAddress& from, wire::Bytes data) noexcept override {
      loop_.server_.onPeerPacket(socket.id(), from, data, loop_.loop_.now());
    }
    void onIcmpError(UdpListener& socket, const IcmpError& error) noexcept override {
      loop_.server_.onPeerIcmp(socket.id(), error.peer, error.type, error.code, error.info,
                               loop_.loop_.now());
    }

   private:
    Loop& loop_;
  };

  // Accepted connections on TCP allocations' relayed addresses.
  class RelayAcceptor final : public ConnectionAcceptor {
   public:
    explicit RelayAcceptor(Loop& loop) : loop_(loop) {}
    void onConnection(TcpListener& listener) noexcept override { loop_.onPeerConnection(listener); }

   private:
    Loop& loop_;
  };

  // One allocation's relay socket: UDP, or a TCP listener for RFC 6062.
  struct RelaySocket {
    std::unique_ptr<UdpListener> udp;
    std::unique_ptr<TcpListener> tcp;
    bool open() const noexcept { return udp || tcp; }
    const wire::SocketAddress& localAddress() const noexcept { return udp ? udp->localAddress() : tcp->localAddress(); }
  };

  // The peer policy lets clients reach the relay's own addresses only where a relay socket is
  // open (core::LiveRelayPorts), so every bind and close of one is recorded there.
  void markRelay(const RelaySocket& relay, bool open) noexcept {
    core::LiveRelayPorts* live = worker_.setup_.live_relays.get();
    if (live == nullptr) return;
    const auto protocol = relay.tcp ? core::RelayProtocol::kTcp : core::RelayProtocol::kUdp;
    if (open) {
      live->markOpen(protocol, relay.localAddress());
    } else {
      live->markClosed(protocol, relay.localAddress());
    }
  }

  core::RelayId reserveRelayId() {
    if (!free_relay_ids_.empty()) {
      const core::RelayId id = free_relay_ids_.back();
      free_relay_ids_.pop_back();
      return id;
    }
    relays_.emplace_back();
    return static_cast<core::RelayId>(relays_.size() - 1);
  }

  void onTick() noexcept {
    noteTick();
    closed_.clear();
    const auto now = loop_.now();
    // DTLS: retransmit lost handshake flights; forget sessions silent past the idle timeout.
    dtls_endpoint_.onTick(tcp_idle_timeout_);
    server_.setUnixTime(static_cast<std::int64_t>(std::time(nullptr)));
    server_.onTick(now);
    for (std::uint16_t port : worker_.setup_.reservations->expire(worker_.index_, steadyNow())) {
      ports_.release(port);
    }
    worker_.counters_->relay_ports_held.set(ports_.heldDelta());
    worker_.counters_->relay_ports_borrowed.set(static_cast<std::int64_t>(ports_.borrowed()));
    const auto idle_limit = tcp_idle_timeout_;
    std::vector<StreamConnection*> idle;
    for (auto& [key, connection] : connections_) {
      // A data connection lives as long as its allocation; the allocation's expiry ends it.
      if (connection->piped()) continue;
      if (now - connection->lastActivity() > idle_limit) idle.push_back(connection.get());
    }
    for (auto* connection : idle) connection->finish("idle timeout");
  }

  // Event-loop lag: the tick is due every kTickMs; how much later than that it ran is time the
  // loop spent busy or blocked. The time of the tick is the worker's heartbeat for /healthz.
  void noteTick() noexcept {
    const std::uint64_t now = uv_hrtime();
    if (last_tick_hr_ != 0) {
      const std::uint64_t period = now - last_tick_hr_;
      const std::uint64_t due = std::uint64_t{kTickMs} * 1'000'000;
      worker_.counters_->loop_lag_seconds.set(period > due ? static_cast<double>(period - due) / 1e9 : 0.0);
    }
    last_tick_hr_ = now;
    worker_.counters_->last_tick_ns.set(steadyNanoseconds());
    worker_.counters_->loop_handles.set(static_cast<std::int64_t>(loop_.handleCount()));
  }

  static constexpr std::uint64_t kTickMs = 1000;

  Worker& worker_;
  EventLoop loop_;  // declared first among the handle owners, so it is destroyed last
  Mailbox mailbox_;
  RepeatingTimer tick_;
  OneShotTimer resume_timer_{loop_, [this] { resumePipes(); }};
  std::optional<core::TimePoint> resume_due_;  // when resume_timer_ fires, if armed
  std::vector<PausedPipe> paused_pipes_;
  IoBatch io_batch_;
  PortPool ports_;
  PeerReceiver peers_;
  RelayAcceptor relay_acceptor_{*this};
  std::vector<RelaySocket> relays_;  // indexed by RelayId; empty when free
  std::vector<core::RelayId> free_relay_ids_;
  std::size_t next_relay_ip_ = 0;
  core::TimePoint out_of_sockets_logged_{};
  core::TurnServer server_;
  DtlsEndpoint dtls_endpoint_;  // the handler of dtls_, declared before them
  std::vector<std::unique_ptr<UdpListener>> udp_;
  std::vector<std::unique_ptr<TcpListener>> tcp_;
  std::vector<std::unique_ptr<UdpListener>> dtls_;
  std::unordered_map<StreamKey, std::unique_ptr<StreamConnection>, StreamKeyHash> connections_;
  // RFC 6062 peer connections by CONNECTION-ID (the client data connections they are piped
  // to stay in connections_).
  std::unordered_map<core::ConnectionId, std::unique_ptr<StreamConnection>> peer_connections_;
  std::vector<std::unique_ptr<StreamConnection>> closed_;
  std::shared_ptr<const TlsContext> tls_;           // for new connections; replaced on reload
  std::chrono::seconds tcp_idle_timeout_{worker_.settings_.tcp_idle_timeout};  // replaced on reload
  // Ten lines a second on average, a hundred at once: enough to see what happens.
  log::LineBudget log_budget_{10, 100};
  std::uint64_t last_tick_hr_ = 0;
};

Worker::Worker(unsigned index, const config::Settings& settings, WorkerSockets sockets, WorkerSetup setup)
    : index_(index),
      settings_(settings),
      sockets_(std::move(sockets)),
      setup_(std::move(setup)),
      counters_(std::make_unique<metrics::WorkerCounters>()) {
  setup_.options.worker_index = static_cast<std::uint8_t>(index);
  counters_->last_tick_ns.set(steadyNanoseconds());  // healthy from birth; its loop ticks soon
}

Worker::~Worker() {
  stop();
  join();
}

void Worker::start() {
  std::promise<void> started;
  auto ready = started.get_future();
  thread_ = std::thread([this, p = std::move(started)]() mutable { threadMain(std::move(p)); });
  try {
    ready.get();
  } catch (...) {
    join();
    throw;
  }
}

void Worker::threadMain(std::promise<void> started) noexcept {
  std::unique_ptr<Loop> loop;
  try {
    loop = std::make_unique<Loop>(*this, std::move(sockets_));
  } catch (...) {
    started.set_exception(std::current_exception());
    return;
  }
  {
    std::lock_guard lock(loop_mutex_);
    loop_ = loop.get();
  }
  started.set_value();
  try {
    loop->run();
  } catch (const std::exception& e) {
    log::error("worker loop failed", {{"worker", index_}, {"error", e.what()}});
    loop->stop();
  }
  {
    std::lock_guard lock(loop_mutex_);
    loop_ = nullptr;
  }
  clean_close_ = loop->closeLoop() == 0;
}

void Worker::stop() noexcept {
  std::lock_guard lock(loop_mutex_);
  if (loop_ != nullptr) {
    Loop* loop = loop_;
    loop->mailbox().post([loop] { loop->stop(); });
  }
}

void Worker::adoptConnection(std::shared_ptr<DetachedConnection> connection) {
  std::lock_guard lock(loop_mutex_);
  if (loop_ != nullptr) {
    Loop* loop = loop_;
    loop->mailbox().post([loop, connection = std::move(connection)] { loop->adopt(*connection); });
  }
}

bool Worker::forwardRefresh(std::uint8_t from, const core::FiveTuple& tuple, std::vector<std::uint8_t> request) {
  std::lock_guard lock(loop_mutex_);
  if (loop_ == nullptr) return false;
  Loop* loop = loop_;
  return loop->mailbox().post(
      [loop, from, tuple, request = std::move(request)] { loop->onForwardedRefresh(from, tuple, request); });
}

bool Worker::adoptAllocation(std::shared_ptr<MovedAllocation> moved) {
  std::lock_guard lock(loop_mutex_);
  if (loop_ == nullptr) return false;
  Loop* loop = loop_;
  return loop->mailbox().post([loop, moved = std::move(moved)] { loop->adopt(*moved); });
}

void Worker::reconfigure(WorkerReload reload) {
  std::lock_guard lock(loop_mutex_);
  if (loop_ != nullptr) {
    Loop* loop = loop_;
    loop->mailbox().post([loop, reload = std::move(reload)]() mutable { loop->reconfigure(reload); });
  }
}

void Worker::setDraining(bool draining) {
  std::lock_guard lock(loop_mutex_);
  if (loop_ != nullptr) {
    Loop* loop = loop_;
    loop->mailbox().post([loop, draining] { loop->setDraining(draining); });
  }
}

std::int64_t steadyNanoseconds() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool Worker::join() {
  if (thread_.joinable()) thread_.join();
  return clean_close_;
}

}  // namespace tern::io
