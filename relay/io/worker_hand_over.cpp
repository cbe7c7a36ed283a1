// Connections and allocations passed between workers; see worker_hand_over.hpp.
#include "relay/io/worker_hand_over.hpp"

#include "relay/core/turn_server.hpp"
#include "relay/io/client_connections.hpp"
#include "relay/io/log.hpp"
#include "relay/io/relay_sockets.hpp"
#include "relay/io/worker.hpp"

namespace tern::io {

Worker* WorkerHandOver::worker(std::uint8_t index, bool other_only) const noexcept {
  const auto& workers = setup_.directory->workers;
  if (index >= workers.size() || (other_only && index == log_.worker())) return nullptr;
  return workers[index];
}

bool WorkerHandOver::transferConnection(const core::FiveTuple& client, std::uint8_t owner,
                                        wire::Bytes request) noexcept {
  Worker* target = worker(owner, false);
  if (target == nullptr) return false;
  std::unique_ptr<DetachedConnection> detached = connections_.detach(client);
  if (!detached) return true;  // gone, or closed because it could not move
  try {
    // The request goes first: it was taken from the framer before the bytes left in it.
    detached->unread.insert(detached->unread.begin(), request.begin(), request.end());
    target->adoptConnection(std::move(detached));
  } catch (const std::exception& e) {
    log::warn("connection hand-over failed", {{"worker", log_.worker()}, {"error", e.what()}});
  }
  return true;
}

bool WorkerHandOver::forwardToOwner(std::uint8_t owner, const core::FiveTuple& tuple,
                                    wire::Bytes request) noexcept {
  Worker* target = worker(owner, true);
  if (target == nullptr) return false;
  try {
    return target->forwardRefresh(static_cast<std::uint8_t>(log_.worker()), tuple,
                                  std::vector<std::uint8_t>(request.begin(), request.end()));
  } catch (const std::exception& e) {
    log::warn("mobility forward failed", {{"worker", log_.worker()}, {"error", e.what()}});
    return false;
  }
}

bool WorkerHandOver::handOver(std::uint8_t to, core::AllocationHandOver& moved) noexcept {
  Worker* target = worker(to, false);
  if (target == nullptr) return false;
  const core::Allocation& a = *moved.allocation;
  for (const core::RelayEndpoint& r : a.relays()) {
    if (!relays_.isUdp(r.id)) return false;  // only UDP relays move
  }
  try {
    auto package = std::make_shared<MovedAllocation>();
    for (const core::RelayEndpoint& r : a.relays())
      package->relay_sockets.push_back(relays_.release(r.id));
    package->hand_over = std::move(moved);
    // If `to` stopped meanwhile, the package dies with its mailbox: sockets close, as the
    // whole process is stopping.
    (void)target->adoptAllocation(std::move(package));
    return true;
  } catch (const std::exception& e) {
    log::warn("allocation hand-over failed", {{"worker", log_.worker()}, {"error", e.what()}});
    return true;  // the sockets are gone from here: the allocation cannot stay either
  }
}

void WorkerHandOver::adoptConnection(DetachedConnection& detached) noexcept {
  connections_.adopt(detached);
}

void WorkerHandOver::onForwardedRefresh(std::uint8_t from, const core::FiveTuple& tuple,
                                        const std::vector<std::uint8_t>& request) noexcept {
  server_.onForwardedRefresh(from, tuple, {request.data(), request.size()}, loop_.now());
}

void WorkerHandOver::adoptAllocation(MovedAllocation& moved) noexcept {
  core::Allocation& a = *moved.hand_over.allocation;
  for (std::size_t i = 0; i < moved.relay_sockets.size(); ++i) {
    a.setRelayId(i, relays_.adopt(std::move(moved.relay_sockets[i])));
  }
  server_.adoptAllocation(std::move(moved.hand_over), loop_.now());
}

}  // namespace tern::io
