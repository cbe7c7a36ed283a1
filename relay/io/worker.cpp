// The worker thread and the loop that owns everything on it; see worker.hpp. The loop is
// only the composition: each part owns one kind of thing the worker holds and implements
// one part of core::ServerOutput, and the inventory lists them all from here.
#include "relay/io/worker.hpp"

#include <ctime>

#include "relay/core/turn_server.hpp"
#include "relay/io/client_connections.hpp"
#include "relay/io/client_listeners.hpp"
#include "relay/io/event_loop.hpp"
#include "relay/io/fast_path_cache.hpp"
#include "relay/io/log.hpp"
#include "relay/io/peer_connections.hpp"
#include "relay/io/relay_sockets.hpp"
#include "relay/io/usage_log.hpp"
#include "relay/io/worker_hand_over.hpp"
#include "relay/io/worker_log.hpp"
#include "relay/io/worker_upgrade.hpp"

namespace tern::io {

class Worker::Loop {
 public:
  Loop(Worker& worker, WorkerSockets sockets)
      : worker_(worker),
        mailbox_(loop_),
        tick_(loop_, kTickMs, [this] { onTick(); }),
        deferred_(loop_),
        log_(loop_, worker.index_, *worker.counters_),
        usage_(log_),
        ingress_(loop_, server_, *worker.counters_, log_),
        peer_datagrams_(loop_, server_),
        relays_(loop_, io_batch_, worker.setup_, log_, peer_datagrams_, peer_connections_),
        connections_(loop_, io_batch_, deferred_, worker.setup_, *worker.counters_, log_, ingress_,
                     peer_connections_, server_,
                     std::chrono::seconds(worker.settings_.tcp_idle_timeout)),
        peer_connections_(loop_, io_batch_, deferred_, log_, server_, connections_, relays_),
        listeners_(loop_, io_batch_, std::move(sockets), worker.setup_, *worker.counters_, ingress_,
                   connections_),
        hand_over_(loop_, worker.setup_, log_, server_, connections_, relays_),
        server_(worker.setup_.options, worker.setup_.services,
                core::ServerOutput(listeners_, relays_, peer_connections_, hand_over_, usage_),
                *worker.counters_),
        upgrade_(loop_, log_, server_, listeners_, relays_, connections_, peer_connections_) {
    server_.setUnixTime(static_cast<std::int64_t>(std::time(nullptr)));
    worker.counters_->last_tick_ns.set(steadyNanoseconds());
    io_batch_.attach(loop_.get());
    io_batch_.setSegmentation(worker.settings_.udp_segmentation);
    if (worker.setup_.fast_path) {
      fast_path_.emplace(worker.setup_.fast_path, worker.index_, std::max(1u, worker.settings_.workers),
                         relays_, *worker.counters_);
      server_.setChannelCache(&*fast_path_, loop_.now());
    }
  }

  Mailbox& mailbox() noexcept { return mailbox_; }
  WorkerHandOver& handOver() noexcept { return hand_over_; }
  WorkerUpgrade& upgrade() noexcept { return upgrade_; }
  void sendQueuedOutput() noexcept { io_batch_.sendQueued(); }
  void run() { loop_.run(); }
  int closeLoop() noexcept { return loop_.close(); }

  // Ends every allocation and closes every handle; the loop returns once their close
  // callbacks have run.
  void stop() noexcept {
    upgrade_.close();  // what an upgrade moved leaves without a usage record first
    server_.shutdown(loop_.now());
    connections_.finishAll();
    peer_connections_.finishAll();
    listeners_.forgetDtlsSessions();
    // The round's datagrams (DTLS close_notify alerts among them) leave before their sockets
    // close; from here on sends go out at once.
    io_batch_.detach();
    listeners_.closeAll();
    relays_.closeAll();
    deferred_.close();
    tick_.close();
    mailbox_.close();
  }

  // A configuration reload (see Worker::reconfigure).
  void reconfigure(WorkerReload& reload) noexcept {
    server_.reconfigure(std::move(reload.options), std::move(reload.services), loop_.now());
    connections_.reconfigure(std::move(reload.tls), std::chrono::seconds(reload.tcp_idle_timeout));
    listeners_.setDtlsContext(std::move(reload.dtls));
  }
  void setDraining(bool draining) noexcept { server_.setDraining(draining); }
  // Issue 21 across an upgrade: at the freeze the kernel stops relaying this worker's
  // channels (what it relayed is credited before the snapshot), and the process that serves
  // on after the decision, new or old, fills the maps again.
  void uncacheFastPath() noexcept { server_.uncacheAll(); }
  void recacheFastPath() noexcept { server_.recacheAll(loop_.now()); }

  WorkerInventory inventory() const;
  std::size_t endAllocations(const core::AllocationMatch& match, metrics::AllocationEnd why) {
    return server_.endAllocations(match, why, loop_.now());
  }

 private:
  void onTick() noexcept {
    noteTick();
    const auto now = loop_.now();
    listeners_.onTick(connections_.idleTimeout());
    server_.setUnixTime(static_cast<std::int64_t>(std::time(nullptr)));
    if (!upgrade_.frozen()) server_.onTick(now);
    if (fast_path_ && !upgrade_.frozen()) fast_path_->onTick(server_, now);
    relays_.onTick(*worker_.counters_);
    if (!upgrade_.frozen()) connections_.closeIdle(now);
  }

  // Event-loop lag: the tick is due every kTickMs; how much later than that it ran is time the
  // loop spent busy or blocked. The time of the tick is the worker's heartbeat for /healthz.
  void noteTick() noexcept {
    const std::uint64_t now = uv_hrtime();
    if (last_tick_hr_ != 0) {
      const std::uint64_t period = now - last_tick_hr_;
      const std::uint64_t due = std::uint64_t{kTickMs} * 1'000'000;
      worker_.counters_->loop_lag_seconds.set(period > due ? static_cast<double>(period - due) / 1e9
                                                           : 0.0);
    }
    last_tick_hr_ = now;
    worker_.counters_->last_tick_ns.set(steadyNanoseconds());
    worker_.counters_->loop_handles.set(static_cast<std::int64_t>(loop_.handleCount()));
  }

  static constexpr std::uint64_t kTickMs = 1000;

  // Construction order matters: the parts refer to each other and to server_, which comes
  // last so that the outputs it calls exist before it and outlive it; a part uses those
  // references only once the loop runs.
  Worker& worker_;
  EventLoop loop_;  // declared first among the handle owners, so it is destroyed last
  Mailbox mailbox_;
  RepeatingTimer tick_;
  IoBatch io_batch_;
  DeferredDelete deferred_;  // after io_batch_: a connection deleted late still finds its batch
  WorkerLog log_;
  UsageLog usage_;
  ClientIngress ingress_;
  PeerDatagrams peer_datagrams_;
  RelaySockets relays_;
  ClientConnections connections_;
  PeerConnections peer_connections_;
  ClientListeners listeners_;
  WorkerHandOver hand_over_;
  std::optional<FastPathCache> fast_path_;  // with --fast-path; outlives server_, which calls it
  core::TurnServer server_;
  WorkerUpgrade upgrade_;
  std::uint64_t last_tick_hr_ = 0;
};

WorkerInventory Worker::Loop::inventory() const {
  WorkerInventory inventory;
  inventory.worker = worker_.index_;
  listeners_.forEach([&](ClientListeners::Kind kind, const wire::SocketAddress& local, int fd) {
    inventory.listeners.push_back({kind, local, fd});
  });
  relays_.forEach([&](core::RelayId id, const RelaySocket& relay) {
    inventory.relays.push_back({id, relay.protocol(), relay.localAddress(), relay.fd()});
  });
  connections_.forEach([&](const StreamConnection& c) {
    std::optional<core::ConnectionId> piped_to;
    if (c.piped()) piped_to = c.connectionId();
    inventory.client_connections.push_back({c.tuple(), c.fd(), piped_to});
  });
  peer_connections_.forEach([&](core::ConnectionId id, const StreamConnection& c) {
    inventory.peer_connections.push_back({id, c.tuple(), c.fd(), c.piped()});
  });
  const auto now = loop_.now();
  server_.forEachAllocation([&](const core::Allocation& a) {
    const auto remaining = a.expires() > now ? a.expires() - now : core::Clock::duration::zero();
    inventory.allocations.push_back(
        {a.tuple(),
         a.username(),
         {a.relays().begin(), a.relays().end()},
         std::chrono::duration_cast<std::chrono::milliseconds>(remaining),
         a.activePermissions(now),
         a.activeChannels(now),
         a.connections(),
         std::chrono::duration_cast<std::chrono::seconds>(now - a.created()),
         a.usage()});
  });
  return inventory;
}

Worker::Worker(unsigned index, const config::Settings& settings, WorkerSockets sockets,
               WorkerSetup setup)
    : index_(index),
      settings_(settings),
      sockets_(std::move(sockets)),
      setup_(std::move(setup)),
      counters_(std::make_unique<metrics::WorkerCounters>()) {
  setup_.options.worker_index = static_cast<std::uint8_t>(index);
  // Tickets sealed before an upgrade name old workers: they map onto this process's count.
  setup_.options.worker_count = static_cast<std::uint16_t>(settings.workers);
  counters_->last_tick_ns.set(steadyNanoseconds());  // healthy from birth; its loop ticks soon
}

Worker::~Worker() {
  if (held_) run(false);
  stop();
  join();
}

void Worker::run(bool go) {
  if (!held_) return;
  held_ = false;
  if (!std::exchange(rest_set_, true)) rest_.set_value(std::nullopt);
  go_.set_value(go);
}

std::future<void> Worker::applyRest(WorkerSockets rest) {
  if (!held_ || std::exchange(rest_set_, true)) {
    std::promise<void> none;
    none.set_exception(std::make_exception_ptr(std::runtime_error("worker is not held")));
    return none.get_future();
  }
  rest_.set_value(std::move(rest));
  return std::move(rest_applied_);
}

void Worker::launch(bool held) {
  held_ = held;
  std::promise<void> applied;
  rest_applied_ = applied.get_future();
  std::promise<void> started;
  started_ = started.get_future();
  thread_ = std::thread([this, p = std::move(started), a = std::move(applied)]() mutable {
    threadMain(std::move(p), std::move(a));
  });
}

void Worker::awaitStart() {
  try {
    started_.get();
  } catch (...) {
    held_ = false;  // its thread has returned without a loop: nothing waits for run()
    join();
    throw;
  }
}

void Worker::threadMain(std::promise<void> started, std::promise<void> rest_applied) noexcept {
  std::unique_ptr<Loop> loop;
  try {
    std::vector<RestoredAllocation> restored = std::move(sockets_.restored);
    loop = std::make_unique<Loop>(*this, std::move(sockets_));
    // Before the loop first runs: a client's first packet after the upgrade finds its allocation.
    loop->upgrade().restoreEarly(std::move(restored));
  } catch (...) {
    started.set_exception(std::current_exception());
    return;
  }
  {
    std::lock_guard lock(loop_mutex_);
    loop_ = loop.get();
  }
  std::future<bool> go = go_.get_future();
  std::future<std::optional<WorkerSockets>> rest = rest_.get_future();
  const bool held = held_;
  started.set_value();
  if (held) {
    if (std::optional<WorkerSockets> r = rest.get()) loop->upgrade().applyRest(std::move(*r));
    rest_applied.set_value();
    if (go.get()) {
      loop->recacheFastPath();
    } else {
      loop->stop();  // a held worker given up: close what it holds, read nothing
    }
  }
  try {
    loop->run();
  } catch (const std::exception& e) {
    log::error("worker loop failed", {{"worker", index_}, {"error", e.what()}});
    loop->stop();
  }
  {
    std::lock_guard lock(loop_mutex_);
    loop_ = nullptr;
  }
  clean_close_ = loop->closeLoop() == 0;
}

void Worker::stop() noexcept {
  std::lock_guard lock(loop_mutex_);
  if (loop_ != nullptr) {
    Loop* loop = loop_;
    loop->mailbox().post([loop] { loop->stop(); });
  }
}

void Worker::adoptConnection(std::shared_ptr<DetachedConnection> connection) {
  std::lock_guard lock(loop_mutex_);
  if (loop_ != nullptr) {
    Loop* loop = loop_;
    loop->mailbox().post([loop, connection = std::move(connection)] {
      loop->handOver().adoptConnection(*connection);
    });
  }
}

bool Worker::forwardRefresh(std::uint8_t from, const core::FiveTuple& tuple,
                            std::vector<std::uint8_t> request) {
  std::lock_guard lock(loop_mutex_);
  if (loop_ == nullptr) return false;
  Loop* loop = loop_;
  return loop->mailbox().post([loop, from, tuple, request = std::move(request)] {
    loop->handOver().onForwardedRefresh(from, tuple, request);
  });
}

bool Worker::adoptAllocation(std::shared_ptr<MovedAllocation> moved) {
  std::lock_guard lock(loop_mutex_);
  if (loop_ == nullptr) return false;
  Loop* loop = loop_;
  return loop->mailbox().post(
      [loop, moved = std::move(moved)] { loop->handOver().adoptAllocation(*moved); });
}

void Worker::reconfigure(WorkerReload reload) {
  std::lock_guard lock(loop_mutex_);
  if (loop_ != nullptr) {
    Loop* loop = loop_;
    loop->mailbox().post(
        [loop, reload = std::move(reload)]() mutable { loop->reconfigure(reload); });
  }
}

void Worker::setDraining(bool draining) {
  std::lock_guard lock(loop_mutex_);
  if (loop_ != nullptr) {
    Loop* loop = loop_;
    loop->mailbox().post([loop, draining] { loop->setDraining(draining); });
  }
}

std::future<OutgoingBundle> Worker::precopyBegin() {
  return ask<OutgoingBundle>([](Loop& loop) { return loop.upgrade().precopyBegin(); });
}

std::future<std::optional<OutgoingBundle>> Worker::precopySlice() {
  // A slice is a pause of this worker's calls: a few hundred allocations take well under a
  // millisecond to list.
  constexpr std::size_t kSlice = 256;
  return ask<std::optional<OutgoingBundle>>([](Loop& loop) { return loop.upgrade().precopySlice(kSlice); });
}

std::future<OutgoingBundle> Worker::freezeForUpgrade(std::shared_future<bool> decision) {
  auto promise = std::make_shared<std::promise<OutgoingBundle>>();
  auto future = promise->get_future();
  std::lock_guard lock(loop_mutex_);
  Loop* loop = loop_;
  const bool posted = loop != nullptr && loop->mailbox().post([loop, promise, decision] {
    try {
      // Relayed before the freeze: it leaves now, not after the hand-over (and never through
      // a socket the commit closed).
      loop->sendQueuedOutput();
      loop->uncacheFastPath();
      promise->set_value(loop->upgrade().freeze());
    } catch (...) {
      promise->set_exception(std::current_exception());
      loop->upgrade().thaw();
      loop->recacheFastPath();
      return;
    }
    // Parked: nothing is read from here on, so the new process may take over the sockets.
    bool handed_over = false;
    try {
      handed_over = decision.get();
    } catch (const std::future_error&) {
      // The upgrade ended without a word: the new process never heard COMMIT.
    }
    if (handed_over) {
      loop->upgrade().commit();  // closes what moved before this loop reads again
    } else {
      loop->upgrade().thaw();
      loop->recacheFastPath();
    }
  });
  if (!posted)
    promise->set_exception(std::make_exception_ptr(std::runtime_error("worker is not running")));
  return future;
}

void Worker::endUpgrade() {
  std::lock_guard lock(loop_mutex_);
  if (loop_ != nullptr) {
    Loop* loop = loop_;
    loop->mailbox().post([loop] {
      loop->upgrade().thaw();
      loop->recacheFastPath();
    });
  }
}

std::future<WorkerInventory> Worker::inventory() {
  return ask<WorkerInventory>([](Loop& loop) { return loop.inventory(); });
}

std::future<std::size_t> Worker::endAllocations(core::AllocationMatch match, metrics::AllocationEnd why) {
  return ask<std::size_t>([match = std::move(match), why](Loop& loop) { return loop.endAllocations(match, why); });
}

template <class T, class F>
std::future<T> Worker::ask(F f) {
  auto promise = std::make_shared<std::promise<T>>();
  auto future = promise->get_future();
  std::lock_guard lock(loop_mutex_);
  Loop* loop = loop_;
  const bool posted = loop != nullptr && loop->mailbox().post([loop, promise, f] {
    try {
      promise->set_value(f(*loop));
    } catch (...) {
      promise->set_exception(std::current_exception());
    }
  });
  if (!posted)
    promise->set_exception(std::make_exception_ptr(std::runtime_error("worker is not running")));
  return future;
}

std::int64_t steadyNanoseconds() noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

bool Worker::join() {
  if (thread_.joinable()) thread_.join();
  return clean_close_;
}

}  // namespace tern::io
