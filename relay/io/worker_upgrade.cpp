// A worker's side of an upgrade; see worker_upgrade.hpp.
#include "relay/io/worker_upgrade.hpp"

#include "relay/io/log.hpp"

namespace tern::io {

bool WorkerUpgrade::moves(const core::Allocation& a) const noexcept {
  switch (a.tuple().transport) {
    case core::Transport::kUdp: return true;
    case core::Transport::kTcp: return !a.tcp() && moving_connections_.contains(a.tuple());
    default: return false;
  }
}

OutgoingBundle WorkerUpgrade::freeze() {
  OutgoingBundle bundle;
  bundle.worker = log_.worker();
  frozen_ = true;
  listeners_.pauseDatagrams();
  listeners_.forEach([&](ClientListeners::Kind kind, const wire::SocketAddress&, int fd) {
    bundle.listeners.push_back({kind, fd});
  });
  offerDtlsSessions(bundle);
  connections_.freezeForUpgrade(bundle.connections, bundle.connection_fds);
  for (const auto& c : bundle.connections) {
    frozen_connections_.push_back(c.tuple);
    moving_connections_.insert(c.tuple);
  }
  bundle.allocations = server_.snapshotAllocations(loop_.now(), [this](const core::Allocation& a) { return moves(a); });
  bundle.relay_fds.reserve(bundle.allocations.size());
  for (const core::AllocationSnapshot& a : bundle.allocations) {
    std::vector<int>& fds = bundle.relay_fds.emplace_back();
    for (const core::RelayEndpoint& r : a.relays) {
      relays_.pause(r.id);
      paused_.push_back(r.id);
      fds.push_back(relays_.fd(r.id));
    }
  }
  return bundle;
}

void WorkerUpgrade::offerDtlsSessions(OutgoingBundle& bundle) noexcept {
  try {
    bundle.dtls_channel = listeners_.offerDtlsSessions(bundle.dtls_sessions);
  } catch (const std::exception& e) {
    // Without the socket pair the sessions cannot stay: they end at commit, as they did
    // before sessions stayed.
    bundle.dtls_sessions.clear();
    bundle.dtls_channel = -1;
    log::warn("dtls sessions cannot stay", {{"worker", log_.worker()}, {"error", e.what()}});
  }
}

void WorkerUpgrade::thaw() noexcept {
  if (!frozen_) return;
  frozen_ = false;
  listeners_.withdrawDtlsOffer();
  listeners_.resumeDatagrams();
  for (core::RelayId id : paused_) relays_.resume(id);
  connections_.thawAfterUpgrade(frozen_connections_);
  paused_.clear();
  frozen_connections_.clear();
  moving_connections_.clear();
}

void WorkerUpgrade::commit() noexcept {
  if (!frozen_) return;
  const auto now = loop_.now();
  const std::size_t moved = server_.forgetHandedOver([this](const core::Allocation& a) { return moves(a); }, now);
  // Their allocations are gone from the core: closing them here ends nothing.
  connections_.forgetHandedOver(frozen_connections_);
  // The new process reads the DTLS sockets now and passes this process's established
  // sessions' datagrams back; a DTLS allocation without such a session ends.
  listeners_.keepDtlsSessions();
  std::vector<core::FiveTuple> dtls;
  try {
    server_.forEachAllocation([&](const core::Allocation& a) {
      if (a.tuple().transport == core::Transport::kDtls && !listeners_.hasDtlsSession(a.tuple())) {
        dtls.push_back(a.tuple());
      }
    });
  } catch (const std::bad_alloc&) {
    // They end when the worker stops instead.
  }
  for (const auto& tuple : dtls) server_.onClientClosed(tuple, now);
  listeners_.closeHandedOver();
  log::info("handed over", {{"worker", log_.worker()},
                            {"allocations", moved},
                            {"tcp_connections", frozen_connections_.size()},
                            {"dtls_ended", dtls.size()}});
  frozen_ = false;
  paused_.clear();
  frozen_connections_.clear();
  moving_connections_.clear();
}

void WorkerUpgrade::restore(std::vector<RestoredAllocation> restored,
                            std::vector<RestoredConnection> connections) noexcept {
  if (restored.empty() && connections.empty()) return;
  loop_.updateTime();
  const auto now = loop_.now();
  std::size_t lost = 0;
  for (RestoredAllocation& r : restored) {
    std::array<core::RelayId, 2> ids{core::kLostRelay, core::kLostRelay};
    const std::size_t count = std::min(r.relay_sockets.size(), ids.size());
    for (std::size_t i = 0; i < count; ++i) ids[i] = relays_.adoptRestored(std::move(r.relay_sockets[i]));
    if (!server_.restoreAllocation(r.snapshot, std::span<const core::RelayId>(ids.data(), count), now)) ++lost;
  }
  // After the allocations: a connection's unread bytes may complete a request about one.
  for (RestoredConnection& c : connections) connections_.restore(std::move(c.snapshot), std::move(c.fd));
  log::info("taken over", {{"worker", log_.worker()},
                           {"allocations", restored.size() - lost},
                           {"lost", lost},
                           {"tcp_connections", connections.size()}});
}

}  // namespace tern::io
