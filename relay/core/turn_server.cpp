// Dispatch of client and peer packets (RFC 8489 §6.3, RFC 8656 §11-§12): demux, validate,
// authenticate, route requests to their method handlers, relay data, drop and count the rest.
#include "relay/core/turn_server.hpp"

#include <cstring>

#include "auth/authenticator.hpp"
#include "auth/crypto.hpp"
#include "auth/rest_credentials.hpp"
#include "relay/core/handlers/handlers.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "relay/wire/channel_data.hpp"
#include "relay/wire/checks.hpp"

namespace tern::core {

namespace {

namespace ec = wire::error_code;

metrics::AuthResult authCounter(auth::AuthOutcome o) noexcept {
  switch (o) {
    case auth::AuthOutcome::kOk: return metrics::AuthResult::kOk;
    case auth::AuthOutcome::kNoIntegrity: return metrics::AuthResult::kNoIntegrity;
    case auth::AuthOutcome::kMissingAttributes: return metrics::AuthResult::kMissingAttributes;
    case auth::AuthOutcome::kWrongRealm: return metrics::AuthResult::kWrongRealm;
    case auth::AuthOutcome::kStaleNonce: return metrics::AuthResult::kStaleNonce;
    case auth::AuthOutcome::kInvalidNonce: return metrics::AuthResult::kInvalidNonce;
    case auth::AuthOutcome::kUnknownUser: return metrics::AuthResult::kUnknownUser;
    case auth::AuthOutcome::kExpiredUser: return metrics::AuthResult::kExpiredUser;
    case auth::AuthOutcome::kBadIntegrity: return metrics::AuthResult::kBadIntegrity;
    case auth::AuthOutcome::kBadPasswordAlgorithm: return metrics::AuthResult::kBadPasswordAlgorithm;
    case auth::AuthOutcome::kBadToken: return metrics::AuthResult::kBadToken;
    case auth::AuthOutcome::kExpiredToken: return metrics::AuthResult::kExpiredToken;
  }
  return metrics::AuthResult::kBadIntegrity;
}

std::array<std::uint8_t, 16> randomKey() noexcept {
  std::array<std::uint8_t, 16> key{};
  auth::randomBytes(key);
  return key;
}

std::uint64_t randomSeed() noexcept {
  std::array<std::uint8_t, 8> seed{};
  auth::randomBytes(seed);
  std::uint64_t v = 0;
  std::memcpy(&v, seed.data(), seed.size());
  return v | 1;  // xorshift needs a non-zero state
}

}  // namespace

TurnServer::TurnServer(ServerOptions options, ServerServices services, ServerOutput output,
                       metrics::WorkerCounters& counters)
    : options_(std::move(options)),
      services_(std::move(services)),
      output_(output),
      counters_(counters),
      connections_(options_.worker_index, randomSeed()),
      context_{options_,     services_, output_,      counters_, allocations_, connections_,
               std::nullopt, false,     std::nullopt, {},        {},           {}},
      indication_id_state_(randomSeed()),
      unauthenticated_sources_(options_.unauthenticated_sources, randomKey()) {}

TurnServer::~TurnServer() = default;

void TurnServer::onClientPacket(const FiveTuple& tuple, wire::Bytes packet, TimePoint now) noexcept {
  const auto transport = counterTransport(tuple.transport);
  switch (wire::classify(packet)) {
    case wire::PacketKind::kStun:
      counters_.received(transport, metrics::PacketKind::kStun);
      onStun(tuple, packet, now);
      return;
    case wire::PacketKind::kChannelData:
      counters_.received(transport, metrics::PacketKind::kChannelData);
      onChannelData(tuple, packet, now);
      return;
    default:
      counters_.received(transport, metrics::PacketKind::kOther);
      counters_.drop(metrics::DropReason::kMalformed);
      return;
  }
}

// RFC 8656 §12.5: ChannelData from the client goes to the peer bound to the channel, if the
// peer's permission is still alive.
void TurnServer::onChannelData(const FiveTuple& tuple, wire::Bytes packet, TimePoint now) noexcept {
  const auto message = wire::ChannelDataView::parse(packet);
  if (!message) {
    counters_.drop(metrics::DropReason::kMalformed);
    return;
  }
  Allocation* allocation = context_.liveAllocation(tuple, now);
  if (allocation == nullptr) return;
  const ChannelBinding* channel = allocation->channelByNumber(message->channel, now);
  if (channel == nullptr) {
    counters_.drop(metrics::DropReason::kNoChannel);
    return;
  }
  // The peer policy was applied when the channel was bound; only a peer that is one of this
  // relay's own relayed addresses pays for a check per packet.
  (void)context_.relayToPeer(*allocation, channel->peer, message->data, channel->own_peer, now);
}

void TurnServer::onTick(TimePoint now) noexcept {
  // A retransmission comes within seconds (RFC 8489 §6.2.1: 39.5 s at the very most, and
  // only if every answer was lost); 40 s covers the whole transaction.
  std::erase_if(context_.handed_over, [&](const auto& entry) { return now - entry.second > std::chrono::seconds(40); });
  allocations_.expire(now, [&](Allocation& a) {
    context_.endAllocation(a, metrics::AllocationEnd::kExpired, now);
  });
  // Permissions and channels lapse without an event; a recount per tick keeps the gauges
  // true (a few list walks per allocation, once a second, off the packet path).
  std::int64_t permissions = 0;
  std::int64_t channels = 0;
  allocations_.forEach([&](const Allocation& a) {
    permissions += static_cast<std::int64_t>(a.activePermissions(now));
    channels += static_cast<std::int64_t>(a.activeChannels(now));
  });
  counters_.permissions_active.set(permissions);
  counters_.channels_active.set(channels);
  // RFC 6062 §5.2-§5.3: a Connect that has not completed in 30 s fails with 447; a connection
  // not bound in 30 s is closed.
  connections_.expire(now, [&](TcpConnection& c) {
    if (c.state == TcpConnection::State::kConnecting) {
      if (const Allocation* a = allocations_.find(c.control)) answerConnect(c, *a, false);
    }
    context_.endConnection(c.id, true);
  });
}

void TurnServer::onClientClosed(const FiveTuple& tuple, TimePoint now) noexcept {
  if (Allocation* a = allocations_.find(tuple)) {
    context_.endAllocation(*a, metrics::AllocationEnd::kConnectionClosed, now);
  }
}

void TurnServer::onPeerConnected(ConnectionId id, bool connected, TimePoint now) noexcept {
  TcpConnection* c = connections_.find(id);
  // Timed out (and answered) already, or its allocation ended: the I/O layer has closed it.
  if (c == nullptr || c->state != TcpConnection::State::kConnecting) return;
  const Allocation* a = allocations_.find(c->control);
  if (a == nullptr) {
    context_.endConnection(id, true);
    return;
  }
  answerConnect(*c, *a, connected);
  if (connected) {
    // RFC 6062 §5.2: now the client has 30 s to bind the connection.
    c->state = TcpConnection::State::kAwaitingBind;
    connections_.restartTimer(*c, now);
  } else {
    context_.endConnection(id, true);
  }
}

void TurnServer::answerConnect(const TcpConnection& c, const Allocation& a, bool connected) noexcept {
  wire::Header header;
  header.type = wire::encodeMessageType(wire::Method::kConnect, wire::MessageClass::kRequest);
  header.transaction_id = c.connect_transaction;
  auto response = responseTo(header, c.connect_fingerprint);
  response.sign(a.key(), a.integrity());
  if (connected) {
    response.success().add(wire::attr::ConnectionId{c.id});
  } else {
    response.error(ec::kConnectionTimeoutOrFailure, "Connection Timeout or Failure: peer unreachable");
  }
  send(c.control, response, static_cast<std::uint16_t>(wire::Method::kConnect));
}

std::optional<ConnectionId> TurnServer::onPeerConnection(RelayId relay, const SocketAddress& peer,
                                                         TimePoint now) noexcept {
  Allocation* a = allocations_.findByRelay(relay);
  if (a == nullptr || a->expired(now) || !a->tcp()) return std::nullopt;
  const SocketAddress from{PeerPolicy::normalize(peer.ip), peer.port};
  // RFC 6062 §5.3: without a permission for the peer the connection is closed at once.
  if (!a->hasPermission(from.ip, now)) {
    counters_.drop(metrics::DropReason::kNoPermission);
    return std::nullopt;
  }
  if (a->connections().size() >= options_.max_connections_per_allocation) return std::nullopt;
  try {
    TcpConnection& c = connections_.add(a->tuple(), from, TcpConnection::State::kAwaitingBind, now);
    a->addConnection(c.id);
    // RFC 6062 §5.3: the client learns of it in a ConnectionAttempt indication.
    wire::MessageBuilder b(response_buffer_, wire::Method::kConnectionAttempt, wire::MessageClass::kIndication,
                           nextIndicationId());
    b.add(wire::attr::XorPeerAddress{from}).add(wire::attr::ConnectionId{c.id});
    b.addFingerprint();
    auto bytes = b.finish();
    if (!bytes || !output_.clients.sendToClient(a->tuple(), *bytes)) {
      context_.endConnection(c.id, false);
      return std::nullopt;
    }
    return c.id;
  } catch (const std::bad_alloc&) {
    checks::outOfMemory("peer connection");  // refused: the I/O layer closes it
    return std::nullopt;
  }
}

void TurnServer::onForwardedRefresh(std::uint8_t from, const FiveTuple& tuple, wire::Bytes request,
                                    TimePoint now) noexcept {
  context_.forwarded_from = from;
  onClientPacket(tuple, request, now);
  context_.forwarded_from.reset();
}

void TurnServer::adoptAllocation(AllocationHandOver moved, TimePoint now) noexcept {
  Allocation& incoming = *moved.allocation;
  const auto transport = counterTransport(incoming.tuple().transport);
  const auto family = counterFamily(incoming.relayed().ip);
  // It counts as active here from now on, whatever becomes of it.
  counters_.allocationMoved(transport, family, true);
  bool sockets = true;
  for (const RelayEndpoint& r : incoming.relays()) sockets = sockets && r.id != kLostRelay;
  // Its sockets could not be taken over, or the client allocated anew on the new 5-tuple
  // meanwhile: the allocation ends; the client's retransmitted Refresh learns so.
  if (!sockets || allocations_.find(incoming.tuple()) != nullptr) {
    context_.releaseAllocation(incoming, metrics::AllocationEnd::kDeleted, now);
    return;
  }
  const FiveTuple tuple = incoming.tuple();
  Allocation& a = allocations_.insert(std::move(moved.allocation));
  // The ticket that moved it is spent; the answer below carries one naming this worker.
  handlers::renewMobilityHandle(a);
  output_.events.onAllocationMoved(a, moved.previous_client, true);
  // The Refresh that moved it is answered here, by the usual path: it now finds its
  // allocation on its 5-tuple and gets a ticket that names this worker.
  onClientPacket(tuple, moved.request, now);
}

void TurnServer::onConnectionClosed(ConnectionId id) noexcept { context_.endConnection(id, false); }

std::chrono::nanoseconds TurnServer::onConnectionRelayed(ConnectionId id, metrics::Direction direction,
                                                         std::size_t bytes, TimePoint now) noexcept {
  const TcpConnection* c = connections_.find(id);
  if (c == nullptr) return {};
  Allocation* a = allocations_.find(c->control);
  if (a == nullptr) return {};
  context_.countRelayed(*a, direction, bytes);
  return context_.chargeStream(*a, direction, bytes, now);
}

std::chrono::nanoseconds TurnServer::connectionWait(ConnectionId id, metrics::Direction direction,
                                                    TimePoint now) noexcept {
  TcpConnection* c = connections_.find(id);
  Allocation* a = c != nullptr ? allocations_.find(c->control) : nullptr;
  return a != nullptr ? context_.bandwidthWait(*a, direction, now) : std::chrono::nanoseconds{};
}

void TurnServer::reconfigure(ServerOptions options, ServerServices services, TimePoint now) noexcept {
  options.worker_index = options_.worker_index;  // fixed for the connection ids in flight
  options.worker_count = options_.worker_count;
  options_ = std::move(options);
  services_ = std::move(services);
  enforcePeerPolicy(now);
  // A reload may add or lift a bandwidth limit, which decides what the fast path may carry.
  recacheAll(now);
}

void TurnServer::enforcePeerPolicy(TimePoint now) noexcept {
  // A reload that narrows the policy must not leave open what it now refuses: ChannelData and
  // RFC 6062 pipes check only the permission or nothing at all on each packet.
  const PeerPolicy& policy = *services_.peer_policy;
  std::vector<ConnectionId> refused;
  allocations_.forEachMutable([&](Allocation& a) {
    const PeerRecheck removed = a.recheckPeers(policy, now);
    for (ConnectionId id : a.connections()) {
      const TcpConnection* c = connections_.find(id);
      if (c != nullptr && policy.checkPeerIp(c->peer.ip) != PeerVerdict::kAllowed) refused.push_back(id);
    }
    const std::size_t connections = refused.size();
    for (ConnectionId id : refused) context_.endConnection(id, true);
    refused.clear();
    if (removed.permissions + removed.channels + connections == 0) return;
    context_.cacheAllocation(a, now, true);
    counters_.peersRevoked(removed.permissions, removed.channels, connections);
    output_.events.onPeersRevoked(a, removed.permissions, removed.channels, connections);
  });
}

void TurnServer::shutdown(TimePoint now) noexcept {
  // Every allocation has an entry in the expiry queue, and all are due at the end of time.
  allocations_.expire(TimePoint::max(), [&](Allocation& a) {
    context_.endAllocation(a, metrics::AllocationEnd::kShutdown, now);
  });
}

ResponseWriter TurnServer::responseTo(const wire::Header& request, bool fingerprint) noexcept {
  return ResponseWriter(response_buffer_, request, fingerprint, options_.software);
}

wire::TransactionId TurnServer::nextIndicationId() noexcept {
  // xorshift64*: unique enough for indications, which nobody matches against a request.
  wire::TransactionId id{};
  for (std::size_t i = 0; i < id.size(); i += 8) {
    indication_id_state_ ^= indication_id_state_ >> 12;
    indication_id_state_ ^= indication_id_state_ << 25;
    indication_id_state_ ^= indication_id_state_ >> 27;
    const std::uint64_t v = indication_id_state_ * 2685821657736338717ull;
    std::memcpy(id.data() + i, &v, std::min<std::size_t>(8, id.size() - i));
  }
  return id;
}

void TurnServer::onStun(const FiveTuple& tuple, wire::Bytes packet, TimePoint now) noexcept {
  // RFC 8489 §6.3: a message whose header is not STUN is silently discarded.
  auto header = wire::parseHeader(packet);
  if (!header) {
    counters_.drop(metrics::DropReason::kMalformed);
    return;
  }
  auto message = wire::MessageView::parse(packet);
  if (!message) {
    // The header is sound but the attributes are not: a request still has a transaction id
    // to answer, so it gets 400 rather than silence and a client retransmitting for 39.5 s.
    if (header->isRequest()) {
      auto response = responseTo(*header, false);
      if (admitUnauthenticated(tuple, response, now)) response.error(ec::kBadRequest, wire::describe(message.error()));
      send(tuple, response, header->method());
    } else {
      counters_.drop(metrics::DropReason::kMalformed);
    }
    return;
  }
  // RFC 8489 §7.3: a FINGERPRINT that does not match means the message is not STUN.
  if (message->hasFingerprint() && !message->fingerprintMatches()) {
    counters_.drop(metrics::DropReason::kBadFingerprint);
    return;
  }
  switch (message->messageClass()) {
    case wire::MessageClass::kRequest: onRequest(tuple, *message, now); return;
    case wire::MessageClass::kIndication:
      if (message->method() == static_cast<std::uint16_t>(wire::Method::kSend)) {
        handlers::sendIndication(context_, tuple, *message, now);
      } else if (message->method() != static_cast<std::uint16_t>(wire::Method::kBinding)) {
        // RFC 8489 §6.3.2: a Binding indication is a keepalive; anything else is unexpected.
        counters_.drop(metrics::DropReason::kUnexpectedClass);
      }
      return;
    default:
      // A server sends no requests, so responses addressed to it are discarded.
      counters_.drop(metrics::DropReason::kUnexpectedClass);
      return;
  }
}

void TurnServer::onRequest(const FiveTuple& tuple, const wire::MessageView& request, TimePoint now) noexcept {
  auto response = responseTo(request.header(), request.hasFingerprint());
  switch (static_cast<wire::Method>(request.method())) {
    case wire::Method::kBinding: {
      // Binding is never authenticated (RFC 8489 §3): every answer counts against its source.
      if (!admitUnauthenticated(tuple, response, now)) break;
      // RFC 8489 §6.3.1: unknown comprehension-required attributes earn 420 listing them.
      if (auto unknown = request.unknownComprehensionRequired(); !unknown.empty()) {
        response.error(ec::kUnknownAttribute).add(wire::attr::UnknownAttributes{unknown});
      } else {
        handlers::binding({tuple, request, now, {}, {}, 0, wire::AttributeType::kMessageIntegrity, std::nullopt}, response);
      }
      break;
    }
    case wire::Method::kConnectionBind:
      if (!admitConnectionBind(tuple, request, response, now)) break;
      [[fallthrough]];
    case wire::Method::kAllocate:
    case wire::Method::kRefresh:
    case wire::Method::kCreatePermission:
    case wire::Method::kChannelBind:
    case wire::Method::kConnect: onTurnRequest(tuple, request, now, response); break;
    default:
      // RFC 8489 §6.3.1: a request for a method the server does not implement is an error.
      if (admitUnauthenticated(tuple, response, now)) response.error(ec::kBadRequest, "Unsupported method");
      break;
  }
  send(tuple, response, request.method());
  // Issue 21: whatever the request changed reaches the kernel fast path's maps at once (a
  // Refresh with lifetime 0 ended the allocation, and so its entries, already).
  if (Allocation* a = allocations_.find(tuple)) context_.cacheAllocation(*a, now);
  // RFC 6062 §5.4: after the ConnectionBind success response, the connection carries data.
  if (auto id = std::exchange(context_.pending_join, std::nullopt)) {
    if (!output_.peer_connections.joinConnection(*id, tuple)) context_.endConnection(*id, true);
  }
}

bool TurnServer::admitConnectionBind(const FiveTuple& tuple, const wire::MessageView& request,
                                     ResponseWriter& response, TimePoint now) noexcept {
  // RFC 6062 §5.4: only over TCP or TLS. These refusals come before authentication.
  if (!isStream(tuple.transport)) {
    if (admitUnauthenticated(tuple, response, now)) {
      response.error(ec::kBadRequest, "ConnectionBind needs a TCP or TLS connection (RFC 6062)");
    }
    return false;
  }
  // A data connection is a connection of its own, never the allocation's control connection.
  if (allocations_.find(tuple) != nullptr) {
    if (admitUnauthenticated(tuple, response, now)) {
      response.error(ec::kBadRequest, "ConnectionBind on the allocation's control connection");
    }
    return false;
  }
  // The connection belongs to the worker that owns the id; the kernel spread new connections
  // across workers without knowing that.
  if (auto id = request.get<wire::attr::ConnectionId>()) {
    const std::uint8_t owner = TcpConnectionTable::ownerOf(id->id);
    if (owner != connections_.owner() && output_.workers.transferConnection(tuple, owner, request.bytes())) {
      response.defer();
      return false;
    }
  }
  return true;
}

// RFC 8489 §9.2.4 first (long-term credentials), then unknown attributes (RFC 8489 §6.3.1),
// then the method. Nothing is stored before authentication succeeds, and the answers to
// unauthenticated requests are small and limited per source, so a flood of them costs
// little and cannot be aimed at a victim.
void TurnServer::onTurnRequest(const FiveTuple& tuple, const wire::MessageView& request,
                               TimePoint now, ResponseWriter& response) noexcept {
  const auth::Authenticator& authenticator = *services_.authenticator;
  const auth::AuthResult auth = authenticateRequest(tuple, request, now);
  counters_.auth_results[metrics::idx(authCounter(auth.outcome))].add();
  if (auth.outcome != auth::AuthOutcome::kOk) {
    // Every refusal, 438 included (it is sent before the integrity is checked, to anyone who
    // shows a nonce not ours or expired), proves nothing of its sender: limited per source.
    if (!admitUnauthenticated(tuple, response, now)) return;
    const std::uint16_t code = auth::errorCodeFor(auth.outcome);
    auto& b = response.error(code);
    // RFC 8489 §9.2.4: 401 and 438 carry REALM, a fresh NONCE and PASSWORD-ALGORITHMS.
    if (code == ec::kUnauthenticated || code == ec::kStaleNonce) authenticator.addChallenge(b, tuple.client, now);
    // A first request without credentials is the normal start of every session; only the
    // other refusals are worth an operator's attention.
    if (auth.outcome == auth::AuthOutcome::kNoIntegrity) response.setRoutine();
    (void)response.finish();
    return;
  }
  if (!admitAllocationRequest(tuple, response, now)) return;
  response.sign(auth.key, auth.integrity);
  if (auto unknown = request.unknownComprehensionRequired(); !unknown.empty()) {
    response.error(ec::kUnknownAttribute).add(wire::attr::UnknownAttributes{unknown});
    (void)response.finish();
    return;
  }
  const handlers::RequestContext ctx{tuple,        request,       now, auth.username, auth.key, unix_seconds_,
                                     auth.integrity, auth.token_expiry_unix};
  switch (static_cast<wire::Method>(request.method())) {
    case wire::Method::kAllocate: handlers::allocate(context_, ctx, response); break;
    case wire::Method::kRefresh: handlers::refresh(context_, ctx, response); break;
    case wire::Method::kCreatePermission: handlers::createPermission(context_, ctx, response); break;
    case wire::Method::kChannelBind: handlers::channelBind(context_, ctx, response); break;
    case wire::Method::kConnect: handlers::connect(context_, ctx, response); break;
    case wire::Method::kConnectionBind: handlers::connectionBind(context_, ctx, response); break;
    default: break;
  }
  // The key lives in `auth`, which ends here: sign now.
  (void)response.finish();
}

auth::AuthResult TurnServer::authenticateRequest(const FiveTuple& tuple, const wire::MessageView& request,
                                                TimePoint now) noexcept {
  const auth::Authenticator& authenticator = *services_.authenticator;
  // RFC 7635 §9.2: only Allocate and Refresh carry the ACCESS-TOKEN; the other requests on an
  // allocation a token made are signed with that token's mac_key, which the allocation keeps.
  if (!request.has(wire::AttributeType::kAccessToken)) {
    if (const Allocation* a = allocations_.find(tuple); a != nullptr && a->tokenExpiry()) {
      const auto username = request.get<wire::attr::Username>();
      if (username && username->value == a->tokenKid()) {
        return authenticator.authenticateWithSessionKey(request, tuple.client, now, a->tokenKid(), a->key());
      }
    }
  }
  return authenticator.authenticate(request, tuple.client, now, expiryClock(tuple, request));
}

std::int64_t TurnServer::expiryClock(const FiveTuple& tuple, const wire::MessageView& request) noexcept {
  if (options_.strict_expiry || request.method() == static_cast<std::uint16_t>(wire::Method::kAllocate)) {
    return unix_seconds_;
  }
  // A call outlives its credential: requests on the allocation that credential created (same
  // 5-tuple, same USERNAME) are not refused for its expiry. The key must still verify. An
  // RFC 6062 ConnectionBind comes on a new connection and names its allocation through the
  // CONNECTION-ID instead.
  const Allocation* allocation = allocations_.find(tuple);
  if (request.method() == static_cast<std::uint16_t>(wire::Method::kConnectionBind)) {
    const auto id = request.get<wire::attr::ConnectionId>();
    const TcpConnection* connection = id ? connections_.find(id->id) : nullptr;
    allocation = connection != nullptr ? allocations_.find(connection->control) : nullptr;
  }
  const auto username = request.get<wire::attr::Username>();
  if (allocation != nullptr && username && username->value == allocation->username()) return auth::kNeverExpired;
  return unix_seconds_;
}

bool TurnServer::admitUnauthenticated(const FiveTuple& tuple, ResponseWriter& response, TimePoint now) noexcept {
  // TCP, TLS and DTLS clients completed a handshake from their address; UDP ones may be
  // anyone's. Their buckets are apart (see SourceRateLimiter).
  const bool verified = tuple.transport != Transport::kUdp;
  switch (unauthenticated_sources_.admit(tuple.client.ip, verified, options_.unauthenticated, now)) {
    case SourceRateLimiter::Verdict::kAnswer:
      if (!verified) response.setMinimal();
      return true;
    case SourceRateLimiter::Verdict::kFirstDrop:
      output_.events.onSourceRateLimited(tuple, options_.unauthenticated);
      break;
    case SourceRateLimiter::Verdict::kDrop: break;
  }
  counters_.drop(metrics::DropReason::kRateLimited);
  response.drop();
  return false;
}

bool TurnServer::admitAllocationRequest(const FiveTuple& tuple, ResponseWriter& response,
                                        TimePoint now) noexcept {
  // Charged after authentication, so nobody without the key can spend a client's tokens by
  // spoofing its 5-tuple. No allocation on the 5-tuple: an Allocate, or a request about to
  // get 437, which touches no state.
  Allocation* allocation = allocations_.find(tuple);
  if (allocation == nullptr) return true;
  switch (allocation->admitRequest(options_.allocation_requests, now)) {
    case Allocation::RequestVerdict::kAdmit:
      return true;
    case Allocation::RequestVerdict::kFirstDrop:
      output_.events.onAllocationRequestLimited(*allocation, options_.allocation_requests);
      break;
    case Allocation::RequestVerdict::kDrop:
      break;
  }
  // Dropped, not answered: a client that merely retransmits tries again after its RTO, and an
  // answer would hand a flooder signed work for free.
  counters_.drop(metrics::DropReason::kAllocationRequestRate);
  response.drop();
  return false;
}

void TurnServer::send(const FiveTuple& tuple, ResponseWriter& response, std::uint16_t method) noexcept {
  if (response.deferred() || response.dropped()) return;
  auto bytes = response.finish();
  if (!bytes) {
    // Only a bug can overflow the response buffer; count it rather than crash.
    counters_.drop(metrics::DropReason::kSendFailed);
    return;
  }
  counters_.responded(method, response.code());
  if (response.code() >= 300 && !response.routine()) {
    output_.events.onRequestRefused(tuple, method, response.code(), response.reason());
  }
  if (!output_.clients.sendToClient(tuple, *bytes)) counters_.drop(metrics::DropReason::kSendFailed);
}

}  // namespace tern::core
