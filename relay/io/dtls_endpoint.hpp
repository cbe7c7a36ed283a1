// TURN over DTLS (RFC 7350) on a worker's --dtls-listen sockets: one DTLS session per client
// address, admitted only after the stateless cookie exchange of RFC 6347 §4.2.1, each record
// carrying one STUN message or ChannelData. The worker owns one DtlsEndpoint and hands it
// its DTLS sockets' datagrams, its tick and the messages the core sends to DTLS clients.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <span>
#include <unordered_map>
#include <vector>

#include "metrics/worker_counters.hpp"
#include "relay/core/allocation_table.hpp"
#include "relay/io/connection_limits.hpp"
#include "relay/io/dtls_forwarding.hpp"
#include "relay/io/event_loop.hpp"
#include "relay/io/tls.hpp"
#include "relay/io/udp_listener.hpp"

namespace tern::io {

class DtlsForwarder;
class ForwardChannel;

class DtlsEndpoint final : public DatagramHandler {
 public:
  // What the endpoint needs of its worker.
  class Host {
   public:
    // A STUN message or ChannelData a DTLS client sent, decrypted.
    virtual void onDtlsPlaintext(const core::FiveTuple& tuple, wire::Bytes data) noexcept = 0;
    // The worker's budget for log lines a client can provoke.
    virtual bool mayLog(std::uint64_t& suppressed) noexcept = 0;
    // After an upgrade, in the old process: a session that stayed here ended. Its client
    // can never reach it again (a new handshake is the new process's), so its allocation ends.
    virtual void onDtlsSessionEnded(const core::FiveTuple& tuple) noexcept = 0;

   protected:
    ~Host() = default;
  };

  // A spoofed ClientHello costs nothing past its HelloVerifyRequest, but a client that
  // echoes the cookie and then stalls holds a session: handshakes in progress are capped per
  // source and per worker and given a short deadline, sessions are capped per source and in
  // all (DtlsLimits), and only sessions that finished a handshake live until the idle timeout.
  static constexpr std::size_t kMaxHandshakes = 1024;
  static constexpr std::chrono::seconds kHandshakeDeadline{10};

  DtlsEndpoint(Host& host, const EventLoop& loop, metrics::WorkerCounters& counters,
               std::shared_ptr<const TlsContext> context, DtlsLimits limits = {});
  ~DtlsEndpoint();
  DtlsEndpoint(const DtlsEndpoint&) = delete;
  DtlsEndpoint& operator=(const DtlsEndpoint&) = delete;

  // A reload's certificate: sessions in progress keep theirs, new ones take this one.
  void setContext(std::shared_ptr<const TlsContext> context) noexcept;

  // --- DatagramHandler: a datagram on a --dtls-listen socket.
  void onDatagram(UdpListener& socket, const wire::SocketAddress& from, wire::Bytes data) noexcept override;

  // Encrypts one message for a DTLS client (one message, one record); false when the client
  // has no session that finished its handshake.
  bool send(const core::FiveTuple& tuple, std::span<const wire::Bytes> parts) noexcept;

  // Retransmits lost handshake flights (RFC 6347 §4.2.4); forgets sessions silent past
  // `idle_timeout` and handshakes past their deadline.
  void onTick(std::chrono::seconds idle_timeout) noexcept;

  // Forgets every session (the worker is stopping); established ones get a close_notify.
  void clear() noexcept;

  // An upgrade whose old process keeps its DTLS sessions (dtls_forwarding.hpp). In the new
  // process: datagrams from addresses with no session here go to `forwarder` first.
  void setForwarder(DtlsForwarder* forwarder) noexcept { forwarder_ = forwarder; }
  // In the old process: the established sessions, by listener id (its place among the
  // worker's DTLS listeners) and client; then a datagram the new process passed back, fed to
  // its session only (no new session starts here); `back` hears of each session that ends.
  void listEstablished(std::vector<DtlsSessionRef>& out) const;
  void onForwarded(UdpListener& socket, const wire::SocketAddress& from, wire::Bytes data) noexcept;
  void setBackChannel(ForwardChannel* back) noexcept { back_ = back; }
  bool hasSession(const core::FiveTuple& tuple) const noexcept { return peers_.contains(tuple); }

 private:
  struct Peer {
    std::unique_ptr<TlsSession> session;
    UdpListener* socket;
    core::TimePoint last;
    core::TimePoint started;
    bool established;  // handshake finished: counted out of handshakes_
  };
  using Peers = std::unordered_map<core::FiveTuple, Peer, core::FiveTupleHash>;

  std::unique_ptr<TlsSession> admit(UdpListener& socket, const wire::SocketAddress& from, wire::Bytes data) noexcept;
  // Takes a handshake's and a session's place for a client that echoed its cookie, or
  // refuses it (counted; logged once per source until it is under the limit again).
  bool withinLimits(const wire::SocketAddress& from) noexcept;
  // The same judgement without taking places, before the cookie is even looked at: a source
  // at its limit costs a lookup, not an OpenSSL session per datagram.
  bool atLimit(const wire::SocketAddress& from) noexcept;
  void refuse(const wire::SocketAddress& from, metrics::DtlsLimit limit, bool first_refusal) noexcept;
  void handshakeEnded(const wire::SocketAddress& from) noexcept;
  void flush(Peer& peer, const wire::SocketAddress& to) noexcept;
  // An orderly end of an established session: its close_notify alert goes out (RFC 6347
  // §4.1 keeps TLS's alerts), so the client learns the session is gone instead of sending
  // into silence. Not awaited: the session is forgotten right after.
  void closeNotify(Peer& peer, const wire::SocketAddress& to) noexcept;
  Peers::iterator erase(Peers::iterator it) noexcept;  // gives back the places it held

  Host& host_;
  const EventLoop& loop_;
  metrics::WorkerCounters& counters_;
  std::shared_ptr<const TlsContext> context_;  // for new sessions; replaced on reload
  DtlsCookieKey cookie_key_;
  std::unique_ptr<TlsSession> listener_;  // judges datagrams from addresses without a session
  DtlsLimits limits_;
  Peers peers_;
  std::size_t handshakes_ = 0;  // sessions in peers_ still in their handshake
  bool cap_refused_ = false;    // refused at kMaxHandshakes since handshakes_ was last under it
  std::vector<std::uint8_t> plaintext_ = std::vector<std::uint8_t>(64 * 1024);
  std::vector<std::uint8_t> ciphertext_;
  std::vector<std::uint8_t> message_;
  DtlsForwarder* forwarder_ = nullptr;  // new process of an upgrade: the old one's sessions
  ForwardChannel* back_ = nullptr;      // old process of an upgrade: to the new one
};

}  // namespace tern::io
