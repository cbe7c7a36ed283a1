// RFC 6062 on the control path: Connect (§5.2) opens a TCP connection from a TCP allocation's
// relayed address to a peer; ConnectionBind (§5.4) ties a new client connection to a peer
// connection, after which the I/O layer pipes the bytes.
#include "relay/core/handlers/handlers.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/checks.hpp"

namespace tern::core::handlers {

namespace ec = wire::error_code;

void connect(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept {
  Allocation* allocation = allocationFor(server, ctx, response);
  if (allocation == nullptr) return;
  if (!allocation->tcp()) {
    response.error(ec::kBadRequest, "Connect needs a TCP allocation (RFC 6062)");
    return;
  }
  const auto peer_attr = ctx.request.get<wire::attr::XorPeerAddress>();
  if (!peer_attr) {
    response.error(ec::kBadRequest, "XOR-PEER-ADDRESS is missing or malformed");
    return;
  }
  const SocketAddress peer{PeerPolicy::normalize(peer_attr->address.ip), peer_attr->address.port};
  if (peer.ip.family() != allocation->relayed().ip.family()) {
    response.error(ec::kPeerAddressFamilyMismatch, "Peer Address Family Mismatch");
    return;
  }
  // The same policy as CreatePermission and ChannelBind: a TCP connection is no back door.
  if (const PeerVerdict verdict = server.services.peer_policy->checkPeer(peer, RelayProtocol::kTcp); verdict != PeerVerdict::kAllowed) {
    response.error(ec::kForbidden, describe(verdict));
    return;
  }
  // RFC 6062 §5.2: a Connect in progress, or a connection pending or active, to the same
  // peer is 446.
  for (ConnectionId id : allocation->connections()) {
    if (const TcpConnection* c = server.connections.find(id); c != nullptr && c->peer == peer) {
      response.error(ec::kConnectionAlreadyExists, "Connection Already Exists to this peer");
      return;
    }
  }
  if (allocation->connections().size() >= server.options.max_connections_per_allocation) {
    server.counters.rejected(metrics::Quota::kConnections);
    response.error(ec::kInsufficientCapacity, "Insufficient Capacity: connection limit of this allocation");
    return;
  }
  TcpConnection* added = nullptr;
  try {
    allocation->reserveConnection();
    added = &server.connections.add(ctx.tuple, peer, TcpConnection::State::kConnecting, ctx.now);
  } catch (const std::bad_alloc&) {
    checks::outOfMemory("RFC 6062 connection");
    response.error(ec::kInsufficientCapacity, "Insufficient Capacity: out of memory");
    return;
  }
  TcpConnection& c = *added;
  c.connect_transaction = ctx.request.transactionId();
  c.connect_fingerprint = ctx.request.hasFingerprint();
  if (!server.output.peer_connections.connectToPeer(allocation->relay(), peer, c.id)) {
    server.connections.erase(c.id);
    response.error(ec::kConnectionTimeoutOrFailure, "Connection Failure: could not start a connection");
    return;
  }
  allocation->addConnection(c.id);
  // Answered by TurnServer::onPeerConnected when the connection succeeds, fails or times out.
  response.defer();
}

void connectionBind(ServerContext& server, const RequestContext& ctx, ResponseWriter& response) noexcept {
  // TurnServer has checked the transport and that the id belongs to this worker.
  const auto id_attr = ctx.request.get<wire::attr::ConnectionId>();
  TcpConnection* c = id_attr ? server.connections.find(id_attr->id) : nullptr;
  // RFC 6062 §5.4: an unknown id, or one no longer waiting for its bind, is 400.
  if (c == nullptr || c->state != TcpConnection::State::kAwaitingBind) {
    response.error(ec::kBadRequest, "CONNECTION-ID names no connection waiting to be bound");
    return;
  }
  const Allocation* allocation = server.allocations.find(c->control);
  if (allocation == nullptr || allocation->expired(ctx.now)) {
    response.error(ec::kBadRequest, "CONNECTION-ID names no connection waiting to be bound");
    return;
  }
  // Only the allocation's owner may take its connections (RFC 8656 §5, as for every request
  // on an allocation).
  if (allocation->username() != ctx.username) {
    response.error(ec::kWrongCredentials, "Wrong Credentials: not the allocation's user");
    return;
  }
  c->state = TcpConnection::State::kBound;
  server.pending_join = c->id;
  response.success();
}

}  // namespace tern::core::handlers
