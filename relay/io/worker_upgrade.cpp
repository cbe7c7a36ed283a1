// A worker's side of an upgrade; see worker_upgrade.hpp.
#include "relay/io/worker_upgrade.hpp"

#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "relay/io/log.hpp"

namespace tern::io {

namespace {

// A second descriptor for the same socket, owned by the bundle: the worker may close its own
// while the pre-copy is on its way.
int duplicateInto(std::vector<FileDescriptor>& owned, int fd) {
  const int copy = ::fcntl(fd, F_DUPFD_CLOEXEC, 3);
  if (copy < 0)
    throw std::runtime_error(std::string("dup of a socket to hand over: ") + std::strerror(errno));
  owned.emplace_back(copy);
  return copy;
}

}  // namespace

bool WorkerUpgrade::moves(const core::Allocation& a) const noexcept {
  switch (a.tuple().transport) {
    case core::Transport::kUdp:
      return true;
    case core::Transport::kTcp:
      return a.tcp() ? moving_tcp_allocations_.contains(a.tuple())
                     : moving_connections_.contains(a.tuple());
    default:
      return false;
  }
}

WorkerUpgrade::Sent WorkerUpgrade::sentOf(const core::Allocation& a) noexcept {
  Sent sent{a.changes(), a.usage(), {core::kLostRelay, core::kLostRelay}, a.created()};
  for (std::size_t i = 0; i < a.relays().size() && i < sent.relays.size(); ++i)
    sent.relays[i] = a.relays()[i].id;
  return sent;
}

void WorkerUpgrade::addWhole(OutgoingBundle& bundle, const core::Allocation& a, bool dup) {
  bundle.allocations.push_back(server_.snapshot(a, loop_.now()));
  std::vector<int>& fds = bundle.relay_fds.emplace_back();
  for (const core::RelayEndpoint& r : a.relays()) {
    fds.push_back(dup ? duplicateInto(bundle.owned, relays_.fd(r.id)) : relays_.fd(r.id));
  }
}

OutgoingBundle WorkerUpgrade::precopyBegin() {
  OutgoingBundle bundle;
  bundle.worker = log_.worker();
  precopy_queue_.clear();
  precopied_.clear();
  listeners_.forEach([&](ClientListeners::Kind kind, const wire::SocketAddress&, int fd) {
    bundle.listeners.push_back({kind, duplicateInto(bundle.owned, fd)});
  });
  // Established DTLS sessions stay here: listed now, beside their listeners (a session that
  // completes its handshake during the pre-copy ends at the commit; its client handshakes
  // again, with the new process).
  offerDtlsSessions(bundle);
  // Only UDP allocations go early: a TCP one moves with its connection, at the freeze.
  server_.forEachAllocation([&](const core::Allocation& a) {
    if (a.tuple().transport == core::Transport::kUdp) precopy_queue_.push_back(a.relay());
  });
  precopied_.reserve(precopy_queue_.size());
  return bundle;
}

std::optional<OutgoingBundle> WorkerUpgrade::precopySlice(std::size_t limit) {
  if (precopy_queue_.empty()) return std::nullopt;
  OutgoingBundle bundle;
  bundle.worker = log_.worker();
  const std::size_t count = std::min(limit, precopy_queue_.size());
  for (std::size_t i = precopy_queue_.size() - count; i < precopy_queue_.size(); ++i) {
    const core::Allocation* a = server_.allocationByRelay(precopy_queue_[i]);
    // Ended since the list was made (the freeze will not list it either), or moved by RFC
    // 8016 to another worker, which lists it as new.
    if (a == nullptr || a->relay() != precopy_queue_[i] ||
        a->tuple().transport != core::Transport::kUdp)
      continue;
    addWhole(bundle, *a, true);
    precopied_.emplace(a->relay(), sentOf(*a));
  }
  precopy_queue_.resize(precopy_queue_.size() - count);
  return bundle;
}

OutgoingBundle WorkerUpgrade::freeze() {
  OutgoingBundle bundle;
  bundle.worker = log_.worker();
  frozen_ = true;
  listeners_.pauseDatagrams();
  connections_.freezeForUpgrade(bundle.connections, bundle.connection_fds);
  for (const auto& c : bundle.connections) {
    frozen_connections_.push_back(c.tuple);
    moving_connections_.insert(c.tuple);
  }
  freezeTcpAllocations(bundle);
  // What the pre-copy sent and that is still here unchanged needs nothing more: its state
  // in the new process is already this one (times are kept relative to each clock).
  std::unordered_set<core::RelayId> seen;
  seen.reserve(precopied_.size());
  server_.forEachAllocation([&](const core::Allocation& a) {
    if (!moves(a)) return;
    const auto sent = precopied_.find(a.relay());
    if (sent == precopied_.end()) {
      addWhole(bundle, a, false);  // new since the pre-copy, or a TCP client's
      return;
    }
    seen.insert(a.relay());
    const Sent now = sentOf(a);
    if (now.relays != sent->second.relays || now.created != sent->second.created) {
      // Another allocation under a reused relay id, or a dual one that lost its other half:
      // sent whole, after the removal of what the pre-copy sent under that id.
      bundle.removed.push_back(a.relay());
      addWhole(bundle, a, false);
    } else if (now.changes != sent->second.changes || !(now.usage == sent->second.usage)) {
      bundle.updated.push_back(server_.snapshot(a, loop_.now()));
    }
  });
  for (const auto& [relay, sent] : precopied_) {
    if (!seen.contains(relay)) bundle.removed.push_back(relay);
  }
  bundle.reservations = relays_.takeReservations();
  reservations_ = bundle.reservations;
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
  precopy_queue_.clear();
  precopied_.clear();
  listeners_.withdrawDtlsOffer();  // offered with the pre-copy, before any freeze
  if (!frozen_) return;
  frozen_ = false;
  listeners_.resumeDatagrams();
  connections_.thawAfterUpgrade(frozen_connections_);
  relays_.returnReservations(reservations_);
  reservations_.clear();
  thawTcpAllocations();
  frozen_connections_.clear();
  moving_connections_.clear();
}

void WorkerUpgrade::commit() noexcept {
  precopy_queue_.clear();
  precopied_.clear();
  if (!frozen_) return;
  const auto now = loop_.now();
  // UDP allocations are never read here again (disowned: no system call) and are let go
  // later; TCP ones at once, before their connections close (closing a connection whose
  // allocation is still here would end it with a usage record).
  try {
    releasing_.reserve(server_.allocationCount());
    server_.forEachAllocation([&](const core::Allocation& a) {
      if (a.tuple().transport != core::Transport::kUdp) return;
      releasing_.push_back(a.relay());
      for (const core::RelayEndpoint& r : a.relays()) relays_.disown(r.id);
    });
  } catch (const std::bad_alloc&) {
    releasing_.clear();  // all at once below
  }
  const bool later = !releasing_.empty();
  const std::size_t moved = server_.forgetHandedOver(
      [&](const core::Allocation& a) {
        return moves(a) && !(later && a.tuple().transport == core::Transport::kUdp);
      },
      now);
  // Their allocations are gone from the core: closing them here ends nothing.
  connections_.forgetHandedOver(frozen_connections_);
  peers_.forgetFrozen();
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
  relays_.releaseReservations(reservations_);
  log::info("handed over", {{"worker", log_.worker()},
                            {"allocations", moved + releasing_.size()},
                            {"tcp_connections", frozen_connections_.size()},
                            {"rfc6062_connections", frozen_peers_.size()},
                            {"dtls_ended", dtls.size()},
                            {"reservations", reservations_.size()}});
  reservations_.clear();
  frozen_ = false;
  frozen_connections_.clear();
  moving_connections_.clear();
  moving_tcp_allocations_.clear();
  frozen_peers_.clear();
  released_ = 0;
  if (later) (void)release_timer_.start(kReleasePauseMs);
}

void WorkerUpgrade::releaseSlice(std::size_t limit) noexcept {
  const auto now = loop_.now();
  const std::size_t count = std::min(limit, releasing_.size());
  for (std::size_t i = releasing_.size() - count; i < releasing_.size(); ++i) {
    // Nothing ends them meanwhile (the tick waits), but a reused id would be another's.
    const core::Allocation* a = server_.allocationByRelay(releasing_[i]);
    if (a != nullptr && a->tuple().transport == core::Transport::kUdp) {
      server_.forgetHandedOverOne(*a, now);
      ++released_;
    }
  }
  releasing_.resize(releasing_.size() - count);
  if (!releasing_.empty()) {
    (void)release_timer_.start(kReleasePauseMs);
    return;
  }
  log::info("let go", {{"worker", log_.worker()}, {"allocations", released_}});
}

void WorkerUpgrade::close() noexcept {
  releaseSlice(releasing_.size());
  release_timer_.close();
}

std::size_t WorkerUpgrade::restore(std::vector<RestoredAllocation> restored,
                                   std::vector<RestoredConnection> connections,
                                   bool poll_now) noexcept {
  loop_.updateTime();
  const auto now = loop_.now();
  std::size_t lost = 0;
  for (RestoredAllocation& r : restored) {
    std::array<core::RelayId, 2> ids{core::kLostRelay, core::kLostRelay};
    const std::size_t count = std::min(r.relay_sockets.size(), ids.size());
    for (std::size_t i = 0; i < count; ++i)
      ids[i] = relays_.adoptRestored(std::move(r.relay_sockets[i]), poll_now);
    if (!server_.restoreAllocation(r.snapshot, std::span<const core::RelayId>(ids.data(), count),
                                   now))
      ++lost;
  }
  // After the allocations: a connection's unread bytes may complete a request about one.
  for (RestoredConnection& c : connections)
    connections_.restore(std::move(c.snapshot), std::move(c.fd));
  return lost;
}

void WorkerUpgrade::restoreEarly(std::vector<RestoredAllocation> restored) noexcept {
  if (restored.empty()) return;
  const std::size_t count = restored.size();
  // Read later, unless the freeze lists them as changed: most are idle.
  const std::size_t lost = restore(std::move(restored), {}, false);
  log::info("pre-copy restored",
            {{"worker", log_.worker()}, {"allocations", count - lost}, {"lost", lost}});
}

void WorkerUpgrade::applyRest(WorkerSockets rest) noexcept {
  loop_.updateTime();
  const auto now = loop_.now();
  std::size_t missing = 0;
  // Removals first: an allocation sent again whole is removed under the same name before.
  for (const RemovedAllocation& r : rest.removed) {
    if (!server_.dropRestored(r.worker, r.relay, now)) ++missing;
  }
  for (const core::AllocationSnapshot& s : rest.updated) {
    const core::Allocation* a = server_.updateRestored(s, now);
    if (a == nullptr) {
      ++missing;
      continue;
    }
    // It changed during the pre-copy: a call, read from the first iteration on.
    for (const core::RelayEndpoint& r : a->relays()) relays_.resume(r.id);
  }
  const std::size_t added = rest.restored.size();
  const std::size_t connections = rest.connections.size();
  const std::size_t lost =
      restore(std::move(rest.restored), std::move(rest.connections), true) + missing;
  restorePeerConnections(std::move(rest.peer_connections));
  restoreReservations(rest.reservations);
  relays_.pollDeferred();
  log::info("taken over", {{"worker", log_.worker()},
                           {"allocations", server_.allocationCount()},
                           {"new", added},
                           {"updated", rest.updated.size()},
                           {"removed", rest.removed.size()},
                           {"lost", lost},
                           {"tcp_connections", connections}});
}

void WorkerUpgrade::restoreReservations(
    const std::vector<HandedReservation>& reservations) noexcept {
  if (reservations.empty()) return;
  const std::size_t adopted = relays_.adoptReservations(reservations);
  log::info("reservations taken over", {{"worker", log_.worker()},
                                        {"reservations", adopted},
                                        {"lost", reservations.size() - adopted}});
}

}  // namespace tern::io
