// The core's channels in the fast path's maps (see fast_path_cache.hpp).
#include "relay/io/fast_path_cache.hpp"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <algorithm>
#include <cstring>

#include "relay/core/allocation.hpp"
#include "relay/core/turn_server.hpp"
#include "relay/io/log.hpp"
#include "relay/io/relay_sockets.hpp"
#include "relay/io/socket_util.hpp"

namespace tern::io {
namespace {

std::uint64_t monotonicNanoseconds(core::TimePoint t) noexcept {
  // The core's clock is libuv's (CLOCK_MONOTONIC), the program's bpf_ktime_get_ns() too.
  const auto ns =
      std::chrono::duration_cast<std::chrono::nanoseconds>(t.time_since_epoch()).count();
  return ns > 0 ? static_cast<std::uint64_t>(ns) : 0;
}

void copyIp(std::uint8_t (&out)[16], const wire::IpAddress& ip) noexcept {
  std::memset(out, 0, sizeof out);
  std::memcpy(out, ip.data(), ip.size());
}

std::uint8_t familyOf(const wire::IpAddress& ip) noexcept {
  return ip.isV4() ? TERN_FP_FAMILY_IPV4 : TERN_FP_FAMILY_IPV6;
}

bool sameKey(const void* a, const void* b, std::size_t size) noexcept {
  return std::memcmp(a, b, size) == 0;
}

}  // namespace

FastPathCache::FastPathCache(std::shared_ptr<const FastPath> fast_path, unsigned worker,
                             unsigned workers, const RelaySockets& relays,
                             metrics::WorkerCounters& counters)
    : fast_path_(std::move(fast_path)),
      relays_(relays),
      counters_(counters),
      reports_program_(worker == 0) {
  const std::uint32_t capacity = fast_path_->capacity();
  const std::uint32_t first =
      static_cast<std::uint32_t>(std::uint64_t{capacity} * worker / workers);
  const std::uint32_t end =
      static_cast<std::uint32_t>(std::uint64_t{capacity} * (worker + 1) / workers);
  for (std::uint32_t slot = end; slot > first; --slot) free_slots_.push_back(slot - 1);
  per_cpu_.resize(fast_path_->cpus());
  if (reports_program_)
    counters_.fastpath_attached.set(static_cast<std::int64_t>(fast_path_->interfaces().size()));
}

FastPathCache::~FastPathCache() {
  // The server ended or handed over every allocation before; whatever is left goes now.
  for (auto& [allocation, record] : records_) deleteEntries(record);
  if (reports_program_) counters_.fastpath_attached.set(0);
}

std::vector<FastPathCache::Entries> FastPathCache::wanted(const core::Allocation& a,
                                                          core::TimePoint now) const {
  std::vector<Entries> out;
  const core::FiveTuple& tuple = a.tuple();
  // Only what the program can relay exactly as user space would: UDP clients on a listener
  // bound to one address (the program answers from the address the client sent to).
  if (tuple.transport != core::Transport::kUdp || a.tcp() || tuple.server.ip.isUnspecified())
    return out;
  for (const core::ChannelBinding& c : a.channels()) {
    if (c.expires <= now || c.own_peer || c.peer.ip.family() != tuple.client.ip.family()) continue;
    const std::optional<core::TimePoint> permission = a.permissionExpiry(c.peer.ip);
    const core::RelayEndpoint* relay = a.relayFor(c.peer.ip);
    if (!permission || *permission <= now || relay == nullptr || !relays_.isUdp(relay->id))
      continue;
    wire::SocketAddress local;
    try {
      local = localAddress(relays_.fd(relay->id));
    } catch (const std::exception&) {
      continue;
    }
    if (local.ip.isUnspecified()) continue;
    // RFC 8656 §12: the channel relays while it, its permission and the allocation live.
    const core::TimePoint expires = std::min({c.expires, *permission, a.expires()});
    Entries e{};
    e.expires = expires;
    e.channel_key.family = e.peer_key.family = familyOf(c.peer.ip);
    e.channel_key.channel = e.peer.channel = htons(c.number);
    e.channel_key.client_port = e.peer.client_port = htons(tuple.client.port);
    e.channel_key.listener_port = e.peer.listener_port = htons(tuple.server.port);
    copyIp(e.channel_key.client_ip, tuple.client.ip);
    copyIp(e.peer.client_ip, tuple.client.ip);
    copyIp(e.channel_key.listener_ip, tuple.server.ip);
    copyIp(e.peer.listener_ip, tuple.server.ip);
    e.channel.relay_port = e.peer_key.relay_port = htons(local.port);
    e.channel.peer_port = e.peer_key.peer_port = htons(c.peer.port);
    copyIp(e.channel.relay_ip, local.ip);
    copyIp(e.peer_key.relay_ip, local.ip);
    copyIp(e.channel.peer_ip, c.peer.ip);
    copyIp(e.peer_key.peer_ip, c.peer.ip);
    e.channel.expires_ns = e.peer.expires_ns = monotonicNanoseconds(expires);
    out.push_back(e);
  }
  return out;
}

std::vector<FastPathCache::Entries> FastPathCache::entriesFor(const core::Allocation& allocation,
                                                              bool eligible,
                                                              core::TimePoint now) const noexcept {
  try {
    if (eligible) return wanted(allocation, now);
  } catch (const std::bad_alloc&) {
    // out of memory: the allocation is relayed in user space
  }
  return {};
}

void FastPathCache::update(const core::Allocation& allocation, bool eligible,
                           core::TimePoint now) noexcept {
  const std::vector<Entries> entries = entriesFor(allocation, eligible, now);
  auto it = records_.find(&allocation);
  if (it == records_.end()) {
    if (entries.empty()) return;
    std::uint32_t slot = 0;
    if (!takeSlot(slot)) {
      counters_.fastpath_full.add();
      return;
    }
    try {
      it = records_.emplace(&allocation, Record{}).first;
    } catch (const std::bad_alloc&) {
      releaseSlot(slot);
      return;
    }
    it->second.slot = slot;
    counters_.fastpath_allocations.add(1);
  }
  it->second.eligible = eligible;
  write(it->second, entries);
}

void FastPathCache::write(Record& record, const std::vector<Entries>& wanted) noexcept {
  // Entries that went first, so the program never holds two channels for one peer.
  auto kept = [&](const auto& key, auto Entries::*member) {
    return std::any_of(wanted.begin(), wanted.end(),
                       [&](const Entries& e) { return sameKey(&(e.*member), &key, sizeof key); });
  };
  for (const auto& key : record.channels) {
    if (!kept(key, &Entries::channel_key)) bpf_map_delete_elem(fast_path_->channelsFd(), &key);
  }
  for (const auto& key : record.peers) {
    if (!kept(key, &Entries::peer_key)) bpf_map_delete_elem(fast_path_->peersFd(), &key);
  }
  entries_ -= static_cast<std::int64_t>(record.channels.size());
  record.channels.clear();
  record.peers.clear();
  record.next_expiry = core::TimePoint::max();
  for (Entries e : wanted) {
    e.channel.slot = e.peer.slot = record.slot;
    if (bpf_map_update_elem(fast_path_->channelsFd(), &e.channel_key, &e.channel, BPF_ANY) != 0) {
      // An entry kept from before must not stay behind with its older time: it goes too.
      bpf_map_delete_elem(fast_path_->channelsFd(), &e.channel_key);
      bpf_map_delete_elem(fast_path_->peersFd(), &e.peer_key);
      counters_.fastpath_full.add();
      if (!std::exchange(full_logged_, true)) {
        log::warn(
            "fast path maps full: further channels are relayed in user space (raise "
            "--fast-path-capacity)",
            {{"error", std::strerror(errno)}});
      }
      continue;
    }
    if (bpf_map_update_elem(fast_path_->peersFd(), &e.peer_key, &e.peer, BPF_ANY) != 0) {
      bpf_map_delete_elem(fast_path_->channelsFd(), &e.channel_key);
      bpf_map_delete_elem(fast_path_->peersFd(), &e.peer_key);
      counters_.fastpath_full.add();
      continue;
    }
    try {
      record.channels.push_back(e.channel_key);
      record.peers.push_back(e.peer_key);
    } catch (const std::bad_alloc&) {
      // Not remembered, so it must not stay: the program would relay past a removal.
      bpf_map_delete_elem(fast_path_->channelsFd(), &e.channel_key);
      bpf_map_delete_elem(fast_path_->peersFd(), &e.peer_key);
      if (record.peers.size() > record.channels.size()) record.peers.pop_back();
      continue;
    }
    record.next_expiry = std::min(record.next_expiry, e.expires);
  }
  entries_ += static_cast<std::int64_t>(record.channels.size());
  counters_.fastpath_entries.set(entries_);
}

void FastPathCache::deleteEntries(Record& record) noexcept {
  for (const auto& key : record.channels) bpf_map_delete_elem(fast_path_->channelsFd(), &key);
  for (const auto& key : record.peers) bpf_map_delete_elem(fast_path_->peersFd(), &key);
  entries_ -= static_cast<std::int64_t>(record.channels.size());
  counters_.fastpath_entries.set(entries_);
  record.channels.clear();
  record.peers.clear();
}

core::AllocationUsage FastPathCache::remove(const core::Allocation& allocation) noexcept {
  const auto it = records_.find(&allocation);
  if (it == records_.end()) return {};
  Record& record = it->second;
  deleteEntries(record);
  // Packets the program is relaying this instant count once it returns: after the deletes,
  // no new one starts, so this read is the slot's last.
  const core::AllocationUsage last = takeNew(record);
  releaseSlot(record.slot);
  records_.erase(it);
  counters_.fastpath_allocations.add(-1);
  return last;
}

std::optional<core::AllocationUsage> FastPathCache::slotTotals(std::uint32_t slot) noexcept {
  if (bpf_map_lookup_elem(fast_path_->usageFd(), &slot, per_cpu_.data()) != 0) return std::nullopt;
  core::AllocationUsage total;
  for (const tern_fp_usage& u : per_cpu_) {
    total.packets_to_peer += u.packets_to_peer;
    total.bytes_to_peer += u.bytes_to_peer;
    total.packets_to_client += u.packets_to_client;
    total.bytes_to_client += u.bytes_to_client;
  }
  return total;
}

core::AllocationUsage FastPathCache::takeNew(Record& record) noexcept {
  const std::optional<core::AllocationUsage> total = slotTotals(record.slot);
  if (!total) return {};
  core::AllocationUsage fresh;
  fresh.packets_to_peer = total->packets_to_peer - record.credited.packets_to_peer;
  fresh.bytes_to_peer = total->bytes_to_peer - record.credited.bytes_to_peer;
  fresh.packets_to_client = total->packets_to_client - record.credited.packets_to_client;
  fresh.bytes_to_client = total->bytes_to_client - record.credited.bytes_to_client;
  record.credited = *total;
  using metrics::Direction;
  counters_.kernel_relayed_packets[metrics::idx(Direction::kClientToPeer)].add(
      fresh.packets_to_peer);
  counters_.kernel_relayed_bytes[metrics::idx(Direction::kClientToPeer)].add(fresh.bytes_to_peer);
  counters_.kernel_relayed_packets[metrics::idx(Direction::kPeerToClient)].add(
      fresh.packets_to_client);
  counters_.kernel_relayed_bytes[metrics::idx(Direction::kPeerToClient)].add(fresh.bytes_to_client);
  return fresh;
}

void FastPathCache::onTick(core::TurnServer& server, core::TimePoint now) noexcept {
  for (auto& [allocation, record] : records_) {
    const core::AllocationUsage fresh = takeNew(record);
    if (fresh != core::AllocationUsage{}) server.creditUsage(*allocation, fresh);
    // A channel or permission that ran out: the program already passes its packets up; its
    // entries go now, so the maps hold live channels only.
    if (now >= record.next_expiry) write(record, entriesFor(*allocation, record.eligible, now));
  }
  if (!reports_program_) return;
  const tern_fp_stats stats = fast_path_->stats();
  counters_.fastpath_misses.set(static_cast<std::int64_t>(stats.misses));
  for (std::size_t r = 0; r < counters_.fastpath_fallbacks.size() && r < TERN_FP_FALLBACK_COUNT;
       ++r) {
    counters_.fastpath_fallbacks[r].set(static_cast<std::int64_t>(stats.fallbacks[r]));
  }
}

bool FastPathCache::takeSlot(std::uint32_t& slot) noexcept {
  if (free_slots_.empty()) return false;
  slot = free_slots_.back();
  free_slots_.pop_back();
  // A slot starts from zero on every CPU: what an earlier allocation left is not this one's.
  std::fill(per_cpu_.begin(), per_cpu_.end(), tern_fp_usage{});
  if (bpf_map_update_elem(fast_path_->usageFd(), &slot, per_cpu_.data(), BPF_ANY) != 0) {
    free_slots_.push_back(slot);
    return false;
  }
  return true;
}

void FastPathCache::releaseSlot(std::uint32_t slot) noexcept {
  try {
    free_slots_.push_back(slot);
  } catch (const std::bad_alloc&) {
    // The slot is lost to this worker until it restarts; nothing else breaks.
  }
}

}  // namespace tern::io
