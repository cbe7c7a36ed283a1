// Upgrading a running relay in place (docs/upgrade.md): the running process (the old one)
// starts the binary now on disk with its own arguments and hands it, over a Unix socket,
// every listening socket, every UDP allocation with its relay sockets and the node's keys.
// This file is the conversation between the two; server.cpp decides when it happens.
//
//   new -> old  HELLO      configuration loaded: the new process can serve
//   old -> new  NODE       nonce key, worker count
//   old -> new  BUNDLE     several per old worker (upgrade_bundle.hpp), descriptors attached:
//                          its listeners, then its UDP allocations a slice at a time, sent while
//                          it serves on (the pre-copy)
//   old -> new  END
//   new -> old  PRECOPIED  all of it restored in held workers, nothing read
//   (the old process freezes its workers)
//   old -> new  NODE       counters so far
//   old -> new  BUNDLE     one per old worker: allocations new since the pre-copy, newer state
//                          of those that changed, those that ended, the TCP client connections
//   old -> new  END
//   new -> old  TAKEN      its workers hold everything, nothing read yet
//   old -> new  COMMIT     the old process let go; the metrics listener attached. Only now
//                          does the new process read its sockets.
//
// The old process stops reading only for the second round, whose size is what changed in
// the meantime, not the node's: the calls' gap is that round, not the whole hand-over. What
// arrives meanwhile waits in the kernel's socket buffers: nothing is lost. Until TAKEN it can
// take everything back; after it, it serves only what could not move and exits once that has
// ended. No socket ever has two readers: the new process reads nothing without COMMIT, and
// the old workers stay parked from the freeze until they have closed what moved (or, if the
// upgrade failed, until the new process is gone).
#pragma once

#include <sys/types.h>

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <future>
#include <optional>
#include <string>
#include <vector>

#include "metrics/worker_counters.hpp"
#include "relay/io/hand_over_channel.hpp"
#include "relay/io/upgrade_bundle.hpp"
#include "relay/io/worker.hpp"

namespace tern::app {

// The variable naming the inherited end of the channel in the new process.
inline constexpr const char* kHandOverFdVariable = "TERN_HAND_OVER_FD";
// The descriptor number the old process gives it.
inline constexpr int kHandOverFd = 3;

// What the node as a whole hands over besides the workers' bundles.
struct NodeState {
  std::array<std::uint8_t, 32> nonce_key{};  // nonces and RFC 8016 tickets stay valid
  std::uint32_t workers = 0;
  std::uint32_t old_pid = 0;
  // Every counter summed over the old process's workers (metrics/counter_snapshot.hpp).
  std::vector<std::uint64_t> counters;
};

struct UpgradeTimeouts {
  // From start to HELLO: the new process loads its configuration, secrets and certificates.
  std::chrono::milliseconds start{30'000};
  // From the first bundle sent to TAKEN.
  std::chrono::milliseconds take_over{30'000};
  // --upgrade-timeout: the same allowance for each step.
  static UpgradeTimeouts ofSeconds(unsigned seconds) noexcept {
    return {std::chrono::seconds(seconds), std::chrono::seconds(seconds)};
  }
};

// The new process's side. Any failure throws std::runtime_error: the process exits non-zero
// and the old one, seeing the channel close, serves on.
class UpgradeFromOld {
 public:
  // The channel the old process passed ($TERN_HAND_OVER_FD), removed from the environment;
  // nothing when this is an ordinary start.
  static std::optional<UpgradeFromOld> fromEnvironment();
  // A channel obtained otherwise: connected to the old process's hand-over socket.
  explicit UpgradeFromOld(io::HandOverChannel channel) : channel_(std::move(channel)) {}

  // HELLO, then everything the old process hands over.
  struct Received {
    NodeState node;
    std::vector<io::IncomingBundle> bundles;
  };
  Received receive(const UpgradeTimeouts& timeouts);
  // PRECOPIED, then what the old process listed once frozen.
  Received receiveRest(const UpgradeTimeouts& timeouts);
  // TAKEN, then the old process's COMMIT with its metrics listener (empty if it had none).
  io::FileDescriptor confirm(const UpgradeTimeouts& timeouts);

 private:
  Received receiveRound(std::chrono::steady_clock::time_point deadline);
  io::HandOverChannel channel_;
};

// The old process's side, run on a thread of its own (it blocks). From the freeze on the
// `workers` stay parked until `decision` is set (Worker::freezeForUpgrade): true once COMMIT
// is sent, false once the new process is gone.
struct HandOverOutcome {
  bool taken = false;   // TAKEN arrived: the new process serves everything that moved
  bool frozen = false;  // the workers froze (else Worker::endUpgrade drops the pre-copy)
  std::string problem;  // why not
  std::size_t allocations = 0;
  std::size_t descriptors = 0;
  std::chrono::steady_clock::time_point frozen_at{};
};
// `node` is asked before the pre-copy and again once the workers are frozen.
HandOverOutcome handOverToNew(io::HandOverChannel& channel, const std::vector<io::Worker*>& workers,
                              const std::function<NodeState()>& node, const UpgradeTimeouts& timeouts,
                              const std::shared_future<bool>& decision);
// After TAKEN and the workers' commit: COMMIT, with the metrics listener (-1 for none).
std::optional<std::string> sendCommit(io::HandOverChannel& channel, int metrics_fd);

// The new process, its held `workers` restored from the pre-copy: the rest (what the old
// process listed once frozen) applied by each worker on its thread, the old counters into
// `carried`. On failure every worker gives up (Worker::run(false)) and this throws.
void takeOverRest(UpgradeFromOld& from_old, const std::vector<io::Worker*>& workers,
                  metrics::WorkerCounters& carried, const UpgradeTimeouts& timeouts);

// The bundles of `old_count` old workers regrouped for `new_count` new ones (newWorkerOf).
std::vector<io::WorkerSockets> regroup(std::vector<io::IncomingBundle> bundles, unsigned new_count);

}  // namespace tern::app
