// The peer side of a worker's TurnServer (RFC 8656 §11.3, §11.5, §12.6): datagrams and ICMP
// errors that arrive on relay sockets, checked against the allocation's permissions and passed
// to the client as ChannelData or Data indications. These are TurnServer members kept apart
// from the client side rather than a class of their own: they use the same allocation table,
// counters, header buffer and indication ids, and a packet takes no extra hop to reach them.
#include "relay/core/peer_policy.hpp"
#include "relay/core/turn_server.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "relay/wire/channel_data.hpp"

namespace tern::core {

namespace {

const wire::Bytes kZeroPadding{reinterpret_cast<const std::uint8_t*>("\0\0\0"), 3};

// RFC 8656 §11.5: the ICMP errors passed on are ICMPv4 types 3 (Destination Unreachable) and
// 11 (Time Exceeded), ICMPv6 types 1 (Destination Unreachable), 2 (Packet Too Big) and 3 (Time
// Exceeded); the server silently drops any other.
bool relayedIcmpType(bool v4, std::uint8_t type) noexcept {
  return v4 ? (type == 3 || type == 11) : (type >= 1 && type <= 3);
}

// RFC 8656 §18.13: Error Data is the next-hop MTU for ICMPv6 type 2 ("Packet Too Big") and
// ICMPv4 type 3 code 4 ("fragmentation needed and DF set"), and MUST be zero otherwise.
std::uint32_t icmpErrorData(bool v4, std::uint8_t type, std::uint8_t code,
                            std::uint32_t error_data) noexcept {
  const bool carries_mtu = v4 ? (type == 3 && code == 4) : type == 2;
  return carries_mtu ? error_data : 0;
}

}  // namespace

Allocation* TurnServer::permittedAllocation(RelayId relay, const SocketAddress& peer,
                                            TimePoint now) noexcept {
  Allocation* allocation = allocations_.findByRelay(relay);
  if (allocation == nullptr || allocation->expired(now)) {
    counters_.drop(metrics::DropReason::kNoAllocation);
    return nullptr;
  }
  if (!allocation->hasPermission(peer.ip, now)) {
    counters_.drop(metrics::DropReason::kNoPermission);
    return nullptr;
  }
  return allocation;
}

wire::MessageBuilder TurnServer::dataIndication(const SocketAddress& peer) noexcept {
  wire::MessageBuilder b(header_buffer_, wire::Method::kData, wire::MessageClass::kIndication,
                         nextIndicationId());
  b.add(wire::attr::XorPeerAddress{peer});
  return b;
}

// RFC 8656 §11.3 and §12.6: data from a permitted peer goes to the client as ChannelData if
// a channel is bound to the peer, otherwise in a Data indication.
void TurnServer::onPeerPacket(RelayId relay, const SocketAddress& peer, wire::Bytes payload,
                              TimePoint now) noexcept {
  const SocketAddress from{PeerPolicy::normalize(peer.ip), peer.port};
  Allocation* allocation = permittedAllocation(relay, from, now);
  if (allocation == nullptr) return;
  if (!context_.admitBandwidth(*allocation, metrics::Direction::kPeerToClient, payload.size(), now))
    return;
  const ChannelBinding* channel = allocation->channelByPeer(from, now);
  const auto refused = channel != nullptr
                           ? sendChannelData(allocation->tuple(), channel->number, payload)
                           : sendDataIndication(allocation->tuple(), from, payload);
  if (refused) {
    counters_.drop(*refused);
    return;
  }
  context_.countRelayed(*allocation, metrics::Direction::kPeerToClient, payload.size());
}

std::optional<metrics::DropReason> TurnServer::sendChannelData(const FiveTuple& tuple,
                                                               std::uint16_t channel,
                                                               wire::Bytes payload) noexcept {
  if (payload.size() > 0xFFFF) return metrics::DropReason::kMalformed;
  wire::writeChannelDataHeader(header_buffer_.data(), channel,
                               static_cast<std::uint16_t>(payload.size()));
  // RFC 8656 §12.5: over TCP and TLS the ChannelData message is padded to 4 bytes.
  const auto padding =
      isStream(tuple.transport) ? wire::padTo4(payload.size()) - payload.size() : 0;
  const wire::Bytes parts[] = {
      {header_buffer_.data(), wire::kChannelDataHeaderSize}, payload, kZeroPadding.first(padding)};
  if (!output_.clients.sendToClient(tuple, parts)) return metrics::DropReason::kSendFailed;
  return std::nullopt;
}

std::optional<metrics::DropReason> TurnServer::sendDataIndication(const FiveTuple& tuple,
                                                                  const SocketAddress& peer,
                                                                  wire::Bytes payload) noexcept {
  // Header, XOR-PEER-ADDRESS and the DATA attribute's header are built here; the payload
  // follows as its own part, so it is never copied.
  wire::MessageBuilder b = dataIndication(peer);
  const std::size_t data_padding = wire::padTo4(payload.size()) - payload.size();
  const std::size_t total = b.size() + wire::kAttributeHeaderSize + payload.size() + data_padding;
  if (!b.ok() || total - wire::kHeaderSize > 0xFFFF) return metrics::DropReason::kMalformed;
  const std::size_t head = b.size();
  wire::storeU16(header_buffer_.data() + head,
                 static_cast<std::uint16_t>(wire::AttributeType::kData));
  wire::storeU16(header_buffer_.data() + head + 2, static_cast<std::uint16_t>(payload.size()));
  wire::storeU16(header_buffer_.data() + 2, static_cast<std::uint16_t>(total - wire::kHeaderSize));
  const wire::Bytes parts[] = {{header_buffer_.data(), head + wire::kAttributeHeaderSize},
                               payload,
                               kZeroPadding.first(data_padding)};
  if (!output_.clients.sendToClient(tuple, parts)) return metrics::DropReason::kSendFailed;
  return std::nullopt;
}

// RFC 8656 §11.5: an ICMP error about a datagram sent to a peer reaches the client in a Data
// indication with XOR-PEER-ADDRESS and ICMP (and no DATA), over the allocation's 5-tuple,
// even when a channel is bound (ChannelData cannot carry it). The permission check uses the
// peer the datagram went to, never the ICMP message's own source.
void TurnServer::onPeerIcmp(RelayId relay, const SocketAddress& peer, std::uint8_t type,
                            std::uint8_t code, std::uint32_t error_data, TimePoint now) noexcept {
  // The peer's family tells ICMPv4 from ICMPv6 (see the declaration), before normalising.
  const bool v4 = peer.ip.isV4();
  if (!relayedIcmpType(v4, type)) {
    counters_.drop(metrics::DropReason::kIcmpIgnored);
    return;
  }
  const SocketAddress to{PeerPolicy::normalize(peer.ip), peer.port};
  Allocation* allocation = permittedAllocation(relay, to, now);
  if (allocation == nullptr) return;
  wire::MessageBuilder b = dataIndication(to);
  b.add(wire::attr::Icmp{type, code, icmpErrorData(v4, type, code, error_data)});
  const auto bytes = b.finish();
  // A STUN message is a multiple of 4 bytes, so over TCP and TLS it needs no padding.
  if (!bytes || !output_.clients.sendToClient(allocation->tuple(), *bytes)) {
    counters_.drop(metrics::DropReason::kSendFailed);
    return;
  }
  counters_.icmp_indications.add();
}

}  // namespace tern::core
