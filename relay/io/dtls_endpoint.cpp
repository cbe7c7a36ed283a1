// TURN over DTLS (RFC 7350) on a worker's --dtls-listen sockets; see dtls_endpoint.hpp.
#include "relay/io/dtls_endpoint.hpp"

#include "relay/io/dtls_forward_channel.hpp"
#include "relay/io/log.hpp"

namespace tern::io {

DtlsEndpoint::DtlsEndpoint(Host& host, const EventLoop& loop, metrics::WorkerCounters& counters,
                           std::shared_ptr<const TlsContext> context, DtlsLimits limits)
    : host_(host), loop_(loop), counters_(counters), context_(std::move(context)), limits_(std::move(limits)) {}

DtlsEndpoint::~DtlsEndpoint() {
  back_ = nullptr;  // the sockets erase() would name may be gone
  // The node-wide limits outlive the worker. Its sockets may be gone already: the places go
  // back without a word to the clients (stop() said goodbye through clear()).
  for (auto it = peers_.begin(); it != peers_.end();) it = erase(it);
}

void DtlsEndpoint::setContext(std::shared_ptr<const TlsContext> context) noexcept {
  context_ = std::move(context);
  listener_.reset();  // the next ClientHello is judged with the new certificate
}

void DtlsEndpoint::onDatagram(UdpListener& socket, const wire::SocketAddress& from, wire::Bytes data) noexcept {
  const core::FiveTuple tuple{core::Transport::kDtls, from, socket.localAddress()};
  const auto now = loop_.now();
  auto it = peers_.find(tuple);
  if (it == peers_.end()) {
    // After an upgrade, a session the old process kept (it answers through its copy of this
    // socket); every other address is this process's.
    if (forwarder_ != nullptr && forwarder_->forward(socket, from, data)) return;
    std::unique_ptr<TlsSession> admitted = admit(socket, from, data);
    if (!admitted) return;
    it = peers_.emplace(tuple, Peer{std::move(admitted), &socket, now, now, false}).first;
    ++handshakes_;
    counters_.dtls_sessions_open.set(static_cast<std::int64_t>(peers_.size()));
    data = {};  // the session holds the ClientHello it was admitted with
  }
  it->second.last = now;
  it->second.session->feed(data);
  while (true) {
    const long n = it->second.session->readPlaintext(plaintext_);
    if (n < 0) {
      flush(it->second, from);
      std::uint64_t suppressed = 0;
      if (log::enabled(log::LogLevel::kDebug) && host_.mayLog(suppressed)) {
        log::debug("dtls session closed", {{"client", from.toString()},
                                           {"reason", it->second.session->error()},
                                           {"suppressed", suppressed}});
      }
      (void)erase(it);
      return;
    }
    // A finished handshake moves the session out of the capped in-handshake count.
    if (!it->second.established && it->second.session->handshakeDone()) {
      it->second.established = true;
      handshakeEnded(from);
    }
    if (n == 0) break;
    // Each DTLS record carries one STUN message or ChannelData (RFC 7350 §4).
    host_.onDtlsPlaintext(tuple, wire::Bytes{plaintext_.data(), static_cast<std::size_t>(n)});
    it = peers_.find(tuple);  // what the core did may have ended the session
    if (it == peers_.end()) return;
  }
  flush(it->second, from);
}

// The session for a datagram from an address that has none, if it is a ClientHello that
// echoes a valid cookie; a ClientHello without one is answered with a HelloVerifyRequest,
// anything else is dropped and counted. One listening session is reused for every judgement,
// so a flood of ClientHellos creates no session.
std::unique_ptr<TlsSession> DtlsEndpoint::admit(UdpListener& socket, const wire::SocketAddress& from,
                                                wire::Bytes data) noexcept {
  if (!context_ || data.empty() || !looksLikeTls(data[0])) {
    counters_.drop(metrics::DropReason::kMalformed);
    return nullptr;
  }
  try {
    if (!listener_) listener_ = std::make_unique<TlsSession>(context_);
  } catch (const std::exception& e) {
    std::uint64_t suppressed = 0;
    if (host_.mayLog(suppressed)) {
      log::warn("dtls session failed", {{"client", from.toString()}, {"error", e.what()}, {"suppressed", suppressed}});
    }
    return nullptr;
  }
  if (atLimit(from)) return nullptr;
  switch (listener_->listen(cookie_key_, from, data)) {
    case TlsSession::ListenResult::kAnswered:
      listener_->takeCiphertext(ciphertext_);
      forEachDtlsRecord(ciphertext_, [&](wire::Bytes record) { socket.send(from, record); });
      return nullptr;
    case TlsSession::ListenResult::kIgnored:
      counters_.drop(metrics::DropReason::kMalformed);
      return nullptr;
    case TlsSession::ListenResult::kAdmitted:
      if (!withinLimits(from)) {
        listener_.reset();  // it holds this client's ClientHello; the client will retry
        return nullptr;
      }
      return std::move(listener_);
  }
  return nullptr;
}

bool DtlsEndpoint::withinLimits(const wire::SocketAddress& from) noexcept {
  // The worker's own cap first: it takes no lock.
  if (handshakes_ >= kMaxHandshakes) {
    refuse(from, metrics::DtlsLimit::kHandshakes, !std::exchange(cap_refused_, true));
    return false;
  }
  const auto handshake = limits_.handshakes->acquire(from.ip);
  if (handshake.verdict != ConnectionLimits::Verdict::kAccepted) {
    refuse(from, metrics::DtlsLimit::kHandshakesPerIp, handshake.first_refusal);
    return false;
  }
  const auto session = limits_.sessions->acquire(from.ip);
  if (session.verdict != ConnectionLimits::Verdict::kAccepted) {
    limits_.handshakes->release(from.ip);
    const bool per_source = session.verdict == ConnectionLimits::Verdict::kSourceLimit;
    refuse(from, per_source ? metrics::DtlsLimit::kSessionsPerIp : metrics::DtlsLimit::kSessions,
           session.first_refusal);
    return false;
  }
  return true;
}

bool DtlsEndpoint::atLimit(const wire::SocketAddress& from) noexcept {
  if (handshakes_ >= kMaxHandshakes) {
    refuse(from, metrics::DtlsLimit::kHandshakes, !std::exchange(cap_refused_, true));
    return true;
  }
  if (const auto h = limits_.handshakes->check(from.ip); h.verdict != ConnectionLimits::Verdict::kAccepted) {
    refuse(from, metrics::DtlsLimit::kHandshakesPerIp, h.first_refusal);
    return true;
  }
  const auto s = limits_.sessions->check(from.ip);
  if (s.verdict == ConnectionLimits::Verdict::kAccepted) return false;
  const bool per_source = s.verdict == ConnectionLimits::Verdict::kSourceLimit;
  refuse(from, per_source ? metrics::DtlsLimit::kSessionsPerIp : metrics::DtlsLimit::kSessions, s.first_refusal);
  return true;
}

void DtlsEndpoint::refuse(const wire::SocketAddress& from, metrics::DtlsLimit limit, bool first_refusal) noexcept {
  counters_.dtlsRefused(limit);
  std::uint64_t suppressed = 0;
  if (!first_refusal || !log::enabled(log::LogLevel::kWarn) || !host_.mayLog(suppressed)) return;
  const char* option = "max-dtls-sessions";
  switch (limit) {
    case metrics::DtlsLimit::kHandshakesPerIp: option = "max-dtls-handshakes-per-ip"; break;
    case metrics::DtlsLimit::kHandshakes: option = "the worker's 1024 handshakes in progress"; break;
    case metrics::DtlsLimit::kSessionsPerIp: option = "max-dtls-sessions-per-ip"; break;
    default: break;
  }
  log::write(log::LogLevel::kWarn, "dtls session refused: over a limit; more from this source are refused "
                                   "silently until it is under the limit again",
             {{"client", from.ip.toString()}, {"limit", option}, {"suppressed", suppressed}});
}

void DtlsEndpoint::handshakeEnded(const wire::SocketAddress& from) noexcept {
  if (--handshakes_ < kMaxHandshakes) cap_refused_ = false;
  limits_.handshakes->release(from.ip);
}

bool DtlsEndpoint::send(const core::FiveTuple& tuple, std::span<const wire::Bytes> parts) noexcept {
  auto it = peers_.find(tuple);
  if (it == peers_.end() || !it->second.session->handshakeDone()) return false;
  message_.clear();
  for (const auto& p : parts) message_.insert(message_.end(), p.begin(), p.end());
  if (!it->second.session->writePlaintext(message_)) return false;
  flush(it->second, tuple.client);
  return true;
}

void DtlsEndpoint::onTick(std::chrono::seconds idle_timeout) noexcept {
  const auto now = loop_.now();
  for (auto it = peers_.begin(); it != peers_.end();) {
    Peer& peer = it->second;
    const bool stale = peer.established ? now - peer.last > idle_timeout : now - peer.started > kHandshakeDeadline;
    if (stale) {
      closeNotify(peer, it->first.client);
      it = erase(it);
      continue;
    }
    if (!peer.session->handshakeDone()) {
      peer.session->handleTimeout();
      flush(peer, it->first.client);
    }
    ++it;
  }
}

void DtlsEndpoint::clear() noexcept {
  for (auto it = peers_.begin(); it != peers_.end();) {
    closeNotify(it->second, it->first.client);
    it = erase(it);
  }
}

void DtlsEndpoint::listEstablished(std::vector<DtlsSessionRef>& out) const {
  for (const auto& [tuple, peer] : peers_) {
    if (peer.established)
      out.push_back({static_cast<std::uint8_t>(peer.socket->id()), tuple.client});
  }
}

void DtlsEndpoint::onForwarded(UdpListener& socket, const wire::SocketAddress& from,
                               wire::Bytes data) noexcept {
  // A session that ended here meanwhile: the new process learns so (erase) and takes the
  // client's next datagrams; this one is dropped.
  if (!peers_.contains({core::Transport::kDtls, from, socket.localAddress()})) {
    counters_.drop(metrics::DropReason::kMalformed);
    return;
  }
  onDatagram(socket, from, data);
}

void DtlsEndpoint::flush(Peer& peer, const wire::SocketAddress& to) noexcept {
  peer.session->takeCiphertext(ciphertext_);
  forEachDtlsRecord(ciphertext_, [&](wire::Bytes record) { peer.socket->send(to, record); });
}

void DtlsEndpoint::closeNotify(Peer& peer, const wire::SocketAddress& to) noexcept {
  if (peer.established && peer.session->closeNotify()) flush(peer, to);
}

DtlsEndpoint::Peers::iterator DtlsEndpoint::erase(Peers::iterator it) noexcept {
  const wire::IpAddress& source = it->first.client.ip;
  if (!it->second.established) handshakeEnded(it->first.client);
  limits_.sessions->release(source);
  if (back_ != nullptr) {
    (void)back_->send({ForwardKind::kForget,
                       {static_cast<std::uint8_t>(it->second.socket->id()), it->first.client}},
                      {});
    host_.onDtlsSessionEnded(it->first);
  }
  auto next = peers_.erase(it);
  counters_.dtls_sessions_open.set(static_cast<std::int64_t>(peers_.size()));
  return next;
}

}  // namespace tern::io
