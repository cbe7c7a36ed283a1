// A worker's side of an upgrade; see worker_upgrade.hpp.
#include "relay/io/worker_upgrade.hpp"

#include "relay/io/log.hpp"

namespace tern::io {

OutgoingBundle WorkerUpgrade::freeze() {
  OutgoingBundle bundle;
  bundle.worker = log_.worker();
  frozen_ = true;
  listeners_.pauseDatagrams();
  listeners_.forEach([&](ClientListeners::Kind kind, const wire::SocketAddress&, int fd) {
    bundle.listeners.push_back({kind, fd});
  });
  bundle.allocations = server_.snapshotAllocations(loop_.now(), movesOnUpgrade);
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

void WorkerUpgrade::thaw() noexcept {
  if (!frozen_) return;
  frozen_ = false;
  listeners_.resumeDatagrams();
  for (core::RelayId id : paused_) relays_.resume(id);
  paused_.clear();
}

void WorkerUpgrade::commit() noexcept {
  if (!frozen_) return;
  const auto now = loop_.now();
  const std::size_t moved = server_.forgetHandedOver(movesOnUpgrade, now);
  paused_.clear();
  // The new process reads the DTLS sockets now: this process's sessions on them are over
  // (the clients hear close_notify), and so are their allocations.
  std::vector<core::FiveTuple> dtls;
  try {
    server_.forEachAllocation([&](const core::Allocation& a) {
      if (a.tuple().transport == core::Transport::kDtls) dtls.push_back(a.tuple());
    });
  } catch (const std::bad_alloc&) {
    // They end when the worker stops instead.
  }
  for (const auto& tuple : dtls) server_.onClientClosed(tuple, now);
  listeners_.forgetDtlsSessions();
  listeners_.closeAll();
  frozen_ = false;
  log::info("handed over", {{"worker", log_.worker()}, {"allocations", moved}, {"dtls_ended", dtls.size()}});
}

void WorkerUpgrade::restore(std::vector<RestoredAllocation> restored) noexcept {
  if (restored.empty()) return;
  loop_.updateTime();
  const auto now = loop_.now();
  std::size_t lost = 0;
  for (RestoredAllocation& r : restored) {
    std::array<core::RelayId, 2> ids{core::kLostRelay, core::kLostRelay};
    const std::size_t count = std::min(r.relay_sockets.size(), ids.size());
    for (std::size_t i = 0; i < count; ++i) ids[i] = relays_.adoptRestored(std::move(r.relay_sockets[i]));
    if (!server_.restoreAllocation(r.snapshot, std::span<const core::RelayId>(ids.data(), count), now)) ++lost;
  }
  log::info("taken over", {{"worker", log_.worker()}, {"allocations", restored.size() - lost}, {"lost", lost}});
}

}  // namespace tern::io
