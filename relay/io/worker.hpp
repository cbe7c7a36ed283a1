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
#include "relay/core/allocation.hpp"
#include "relay/core/server_options.hpp"
#include "relay/core/live_relay_ports.hpp"
#include "relay/io/connection_limits.hpp"
#include "relay/io/port_pool.hpp"
#include "relay/io/reservations.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/io/tls.hpp"

namespace tern::io {

class Worker;
struct DetachedConnection;

// RFC 8016: an allocation on its way to the worker that serves its client's new 5-tuple,
// with its relay sockets, still open, in relay order (see core::AllocationHandOver).
struct MovedAllocation {
  core::AllocationHandOver hand_over;
  std::vector<FileDescriptor> relay_sockets;
};

// Every worker of the process, for the messages workers send each other: an RFC 6062 data
// connection, or an RFC 8016 Refresh from a client's new 5-tuple, that the kernel gave to a
// worker other than the one owning its peer connection or allocation.
// Filled before any worker starts; read-only afterwards.
struct WorkerDirectory {
  std::vector<Worker*> workers;
};

struct WorkerSockets {
  std::vector<FileDescriptor> udp;
  std::vector<FileDescriptor> tcp;
  std::vector<FileDescriptor> tls;   // --tls-listen: TCP, TLS required
  std::vector<FileDescriptor> dtls;  // --dtls-listen: UDP, DTLS (RFC 7350)
};

// What a worker needs beyond its sockets: the core's settings and shared services, and where
// it may open relay sockets.
struct WorkerSetup {
  core::ServerOptions options;
  core::ServerServices services;
  std::vector<wire::IpAddress> relay_ips;
  std::uint16_t relay_port_first = 0;  // this worker's share of --relay-ports
  std::uint16_t relay_port_last = 0;
  // The whole --relay-ports range, shared by all workers: a worker whose share is used up
  // borrows from it. Null: a range of the worker's share alone.
  std::shared_ptr<RelayPortRange> relay_ports;
  // Relayed addresses open now, recorded for the peer policy (may be null in tests).
  std::shared_ptr<core::LiveRelayPorts> live_relays;
  // EVEN-PORT reservations, shared by all workers (the paired Allocate may land elsewhere).
  std::shared_ptr<ReservationRegistry> reservations = std::make_shared<ReservationRegistry>();
  // With a certificate: TLS on --tls-listen ports, and on --listen TCP ports by first byte.
  std::shared_ptr<const TlsContext> tls;
  std::shared_ptr<const TlsContext> dtls;
  std::shared_ptr<const WorkerDirectory> directory = std::make_shared<WorkerDirectory>();
  // TCP and TLS client connections per source and in all, shared by all workers.
  std::shared_ptr<ConnectionLimits> connection_limits = std::make_shared<ConnectionLimits>(0, 0);
  DtlsLimits dtls_limits;  // shared by all workers too
};

// What a configuration reload changes in a running worker; allocations keep their state.
struct WorkerReload {
  core::ServerOptions options;
  core::ServerServices services;
  std::shared_ptr<const TlsContext> tls;
  std::shared_ptr<const TlsContext> dtls;
  unsigned tcp_idle_timeout = 300;
};

// The steady clock in nanoseconds: workers' heartbeats (WorkerCounters::last_tick_ns).
std::int64_t steadyNanoseconds() noexcept;

class Worker {
 public:
  Worker(unsigned index, const config::Settings& settings, WorkerSockets sockets, WorkerSetup setup);
  ~Worker();
  Worker(const Worker&) = delete;
  Worker& operator=(const Worker&) = delete;

  // Starts the thread and waits until its loop runs; rethrows a set-up failure.
  void start();
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

  unsigned index() const noexcept { return index_; }
  const metrics::WorkerCounters& counters() const noexcept { return *counters_; }

 private:
  class Loop;  // everything that lives on the worker's thread
  void threadMain(std::promise<void> started) noexcept;

  unsigned index_;
  config::Settings settings_;
  WorkerSockets sockets_;
  WorkerSetup setup_;
  std::unique_ptr<metrics::WorkerCounters> counters_;
  std::thread thread_;
  std::mutex loop_mutex_;
  Loop* loop_ = nullptr;  // guarded by loop_mutex_; set while the loop runs
  bool clean_close_ = false;
};

}  // namespace tern::io
