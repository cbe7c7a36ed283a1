// Permission and channel bookkeeping of an allocation (RFC 8656 §9, §12).
#include "relay/core/allocation.hpp"

#include <algorithm>
#include <utility>

#include "relay/core/peer_policy.hpp"
#include "relay/wire/checks.hpp"

namespace tern::core {

Allocation::Allocation(const FiveTuple& tuple, RelayId relay, const SocketAddress& relayed,
                       std::string username, std::vector<std::uint8_t> key, TimePoint now)
    : tuple_(tuple),
      relays_{RelayEndpoint{relay, relayed}, RelayEndpoint{}},
      username_(std::move(username)),
      key_(std::move(key)),
      created_(now),
      expires_(now) {}

const RelayEndpoint* Allocation::relayOf(wire::AddressFamily family) const noexcept {
  for (const RelayEndpoint& r : relays()) {
    if (r.relayed.ip.family() == family) return &r;
  }
  return nullptr;
}

void Allocation::addRelay(const RelayEndpoint& endpoint) noexcept {
  if (relay_count_ < relays_.size()) relays_[relay_count_++] = endpoint;
  changed();
}

void Allocation::removeRelay(wire::AddressFamily family) noexcept {
  if (relay_count_ < 2) return;
  if (relays_[0].relayed.ip.family() == family) relays_[0] = relays_[1];
  relay_count_ = 1;
  changed();
}

Allocation::RequestVerdict Allocation::admitRequest(const RequestRateLimit& limit,
                                                    TimePoint now) noexcept {
  changed();  // the request budget moves either way
  if (requests_.hasTokens(limit, now)) {
    requests_.take(limit, 1, now);
    requests_limited_ = false;
    return RequestVerdict::kAdmit;
  }
  return std::exchange(requests_limited_, true) ? RequestVerdict::kDrop
                                                : RequestVerdict::kFirstDrop;
}

bool Allocation::hasPermission(const IpAddress& peer, TimePoint now) const noexcept {
  for (const auto& p : permissions_) {
    if (p.peer == peer) return now < p.expires;
  }
  return false;
}

bool Allocation::installPermission(const IpAddress& peer, TimePoint now, TimePoint expires,
                                   std::size_t max_permissions) noexcept {
  changed();
  for (auto& p : permissions_) {
    if (p.peer == peer) {
      p.expires = expires;
      return true;
    }
  }
  // Reuse an expired slot before growing, so a long call never accumulates dead entries.
  for (auto& p : permissions_) {
    if (p.expires <= now) {
      p = {peer, expires};
      return true;
    }
  }
  if (permissions_.size() >= max_permissions) return false;
  try {
    permissions_.push_back({peer, expires});
  } catch (const std::bad_alloc&) {
    checks::outOfMemory("permission");  // refused like one over the cap: 508
    return false;
  }
  return true;
}

std::optional<TimePoint> Allocation::permissionExpiry(const IpAddress& peer) const noexcept {
  for (const auto& p : permissions_) {
    if (p.peer == peer) return p.expires;
  }
  return std::nullopt;
}

std::size_t Allocation::activePermissions(TimePoint now) const noexcept {
  return static_cast<std::size_t>(std::count_if(permissions_.begin(), permissions_.end(),
                                                [&](const Permission& p) { return now < p.expires; }));
}

const ChannelBinding* Allocation::channelByNumber(std::uint16_t number, TimePoint now) const noexcept {
  for (const auto& c : channels_) {
    if (c.number == number && now < c.expires) return &c;
  }
  return nullptr;
}

const ChannelBinding* Allocation::channelByPeer(const SocketAddress& peer, TimePoint now) const noexcept {
  for (const auto& c : channels_) {
    if (c.peer == peer && now < c.expires) return &c;
  }
  return nullptr;
}

bool Allocation::bindChannel(std::uint16_t number, const SocketAddress& peer, TimePoint now,
                             TimePoint expires, std::size_t max_channels, bool own_peer) noexcept {
  changed();
  for (auto& c : channels_) {
    if (c.number == number) {
      c.peer = peer;
      c.expires = expires;
      c.own_peer = own_peer;
      return true;
    }
  }
  for (auto& c : channels_) {
    if (c.expires <= now) {
      c = {number, peer, expires, own_peer};
      return true;
    }
  }
  if (channels_.size() >= max_channels) return false;
  try {
    channels_.push_back({number, peer, expires, own_peer});
  } catch (const std::bad_alloc&) {
    checks::outOfMemory("channel binding");  // refused like one over the cap: 508
    return false;
  }
  return true;
}

PeerRecheck Allocation::recheckPeers(const PeerPolicy& policy, TimePoint now) noexcept {
  changed();
  PeerRecheck removed;
  for (auto& p : permissions_) {
    if (p.expires > now && policy.checkPeerIp(p.peer) != PeerVerdict::kAllowed) {
      p.expires = now;  // expired: the slot is reused, as after a natural expiry
      ++removed.permissions;
    }
  }
  for (auto& c : channels_) {
    if (c.expires <= now) continue;
    // A channel needs its peer allowed and its permission alive (RFC 8656 §12: the channel
    // relays only while the permission for the peer's IP does).
    if (policy.checkPeerIp(c.peer.ip) != PeerVerdict::kAllowed) {
      c.expires = now;
      ++removed.channels;
      continue;
    }
    c.own_peer = policy.isOwnAddress(c.peer.ip);
  }
  return removed;
}

std::size_t Allocation::activeChannels(TimePoint now) const noexcept {
  return static_cast<std::size_t>(std::count_if(channels_.begin(), channels_.end(),
                                                [&](const ChannelBinding& c) { return now < c.expires; }));
}

void Allocation::removeConnection(ConnectionId id) noexcept {
  std::erase(connections_, id);
  changed();
}

}  // namespace tern::core
