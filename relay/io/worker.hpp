// One worker = one thread = one libuv loop (../shared/DESIGN.md §1.2). It owns its sockets
// (listeners and relay sockets), its connections, its share of the relay port range, its
// TurnServer and its counters; other threads reach it only through its mailbox. Listening
// sockets arrive already bound (SO_REUSEPORT), so start-up errors surface in the main thread
// before any worker runs.
#pragma once

#include <future>
#include <memory>
#include <thread>
#include <vector>

#include "metrics/worker_counters.hpp"
#include "relay/config/config.hpp"
#include "relay/core/allocation_match.hpp"
#include "relay/io/worker_inventory.hpp"
#include "relay/io/upgrade_bundle.hpp"
#include "relay/io/worker_setup.hpp"

namespace tern::io {

// The steady clock in nanoseconds: workers' heartbeats (WorkerCounters::last_tick_ns).
std::int64_t steadyNanoseconds() noexcept;

class Worker {
 public:
  Worker(unsigned index, const config::Settings& settings, WorkerSockets sockets, WorkerSetup setup);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread and waits until its loop is built; rethrows a set-up failure. With
  // `held` (the new process of an upgrade) the loop, its restored allocations included, waits
  // unread until run(): the old process still owns the sockets until it lets go.
  void start(bool held = false) {
    launch(held);
    awaitStart();
  }
  // The same in two halves, so that several workers build their loops (and restore what an
  // upgrade handed them) at once.
  void launch(bool held);
  void awaitStart();
  // A held worker starts reading (true) or gives up without reading anything (false).
  void run(bool go);
  // Before run(): a held worker applies, on its thread, what the old process listed when it
  // froze (WorkerUpgrade::applyRest). Ready once applied.
  std::future<void> applyRest(WorkerSockets rest);
  // Asks the loop to end every allocation, close every handle and return; safe from any
  // thread, idempotent.
  void stop() noexcept;
  // Waits for the thread. True if the loop closed with no handle left open.
  bool join();
  // New requests, TLS connections and DTLS sessions use the reloaded settings from now on;
  // allocations and connections keep theirs. Thread-safe.
  void reconfigure(WorkerReload reload);
  // Refuse or redirect new allocations (draining), or accept them again. Thread-safe.
  void setDraining(bool draining);
  // Takes over a client connection another worker detached (see WorkerDirectory); the socket
  // closes if this worker is not running. Thread-safe.
  void adoptConnection(std::shared_ptr<DetachedConnection> connection);

  // RFC 8016 across workers, both thread-safe and false if this worker is not running. A
  // Refresh with a MOBILITY-TICKET of this worker that worker `from` received from `tuple`:
  bool forwardRefresh(std::uint8_t from, const core::FiveTuple& tuple, std::vector<std::uint8_t> request);
  // The allocation that Refresh moved here, from the worker that owned it:
  bool adoptAllocation(std::shared_ptr<MovedAllocation> moved);

  // Everything the worker owns now (see worker_inventory.hpp), listed on its thread. Thread-
  // safe; the future holds an exception if the worker is not running.
  std::future<WorkerInventory> inventory();
  // Ends this worker's allocations that `match` names (an operator's call, a revocation),
  // reported with `why`; the future holds how many. Thread-safe, like inventory().
  std::future<std::size_t> endAllocations(core::AllocationMatch match, metrics::AllocationEnd why);

  // An upgrade (docs/upgrade.md, worker_upgrade.hpp), all thread-safe. The pre-copy, while
  // the worker serves on: its listeners, then its UDP allocations a slice at a time (each
  // slice a short stop of the loop; nothing once all are sent).
  std::future<OutgoingBundle> precopyBegin();
  std::future<std::optional<OutgoingBundle>> precopySlice();
  // Freezes and lists what moves that is new or changed since the pre-copy, then parks the
  // worker's thread (it reads and expires nothing) until `decision` is known: true once the
  // new process was told to serve (this worker forgets what moved, before it reads again),
  // false or a broken promise if the upgrade failed (it serves on).
  std::future<OutgoingBundle> freezeForUpgrade(std::shared_future<bool> decision);
  // Drops a pre-copy that never reached the freeze.
  void endUpgrade();

  unsigned index() const noexcept { return index_; }
  const metrics::WorkerCounters& counters() const noexcept { return *counters_; }

 private:
  class Loop;  // everything that lives on the worker's thread
  void threadMain(std::promise<void> started, std::promise<void> rest_applied) noexcept;
  // What `f(Loop&)` returns, computed on the worker's thread; the future holds an exception
  // if the worker is not running.
  template <class T, class F>
  std::future<T> ask(F f);

  unsigned index_;
  config::Settings settings_;
  WorkerSockets sockets_;
  WorkerSetup setup_;
  std::unique_ptr<metrics::WorkerCounters> counters_;
  std::thread thread_;
  std::future<void> started_;
  bool held_ = false;
  std::promise<bool> go_;  // a held worker's run(); set once
  std::promise<std::optional<WorkerSockets>> rest_;  // set once, by applyRest or run
  bool rest_set_ = false;
  std::future<void> rest_applied_;
  std::mutex loop_mutex_;
  Loop* loop_ = nullptr;  // guarded by loop_mutex_; set while the loop runs
  bool clean_close_ = false;
};

}  // namespace tern::io
