// Start-up, signals, reload, drain and shutdown of `tern serve`; see server.hpp. Sockets come
// from listeners.hpp, what a reload builds from reload.hpp.
#include "relay/app/server.hpp"

#include "relay/app/admin_api.hpp"
#include "relay/app/fast_path_start.hpp"
#include "relay/app/fleet_state.hpp"
#include "relay/app/hand_over_socket.hpp"
#include "relay/app/listeners.hpp"
#include "relay/app/reload.hpp"
#include "relay/app/service_notifier.hpp"
#include "relay/app/signal_watcher.hpp"
#include "relay/app/start_log.hpp"
#include "relay/app/upgrader.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <vector>

#include "auth/crypto.hpp"
#include "metrics/counter_collector.hpp"
#include "metrics/counter_snapshot.hpp"
#include "metrics/http_endpoint.hpp"
#include "metrics/node_state.hpp"
#include "relay/io/event_loop.hpp"
#include "relay/io/log.hpp"
#include "relay/io/port_pool.hpp"
#include "relay/io/shared_quota.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/io/worker.hpp"

namespace tern::app {

namespace {

using io::FileDescriptor;
using io::SocketKind;

std::string joined(const std::vector<std::string>& items, std::string_view separator) {
  std::string out;
  for (const auto& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

double unixNow() {
  return std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
}

class Server {
 public:
  Server(config::Settings settings, SettingsLoader loader, CommandLine command_line)
      : settings_(std::move(settings)),
        loader_(std::move(loader)),
        node_collector_(node_state_, TERN_VERSION),
        upgrader_(loop_, std::move(command_line), upgradeHooks(),
                  UpgradeTimeouts::ofSeconds(settings_.upgrade_timeout)) {}

  int run() {
    from_old_ = UpgradeFromOld::fromEnvironment();
    if (!from_old_ && !settings_.hand_over_socket.empty()) {
      from_old_ = connectToOld(settings_.hand_over_socket);
    }
    prepareSharedState();
    live_relays_ = std::make_shared<core::LiveRelayPorts>(relay_ips_);
    relay_ports_ =
        std::make_shared<io::RelayPortRange>(settings_.relay_port_min, settings_.relay_port_max);
    ClientSockets listeners;
    std::vector<io::WorkerSockets> sockets;
    if (from_old_) {
      sockets = takeOverSockets(listeners);
    } else {
      listeners = bindClientSockets(settings_);
      sockets = splitByWorker(listeners, settings_.workers);
      // Once the sockets are ours: the next process on the node takes over through it.
      if (!settings_.hand_over_socket.empty()) listenForTakeOver();
    }
    listener_ports_ = listeners.ports();
    const Reloadable shared = buildReloadable(settings_, nodeIdentity());
    createWorkers(std::move(sockets), shared);
    // Bound before any worker runs, like every other socket: a taken port stops start-up
    // cleanly. Until the end of start-up /readyz answers 503.
    node_state_.last_good_config_unix = unixNow();
    if (settings_.metrics_listen && !from_old_) startHttp(*settings_.metrics_listen);
    // All at once: an upgrade's workers restore their allocations in parallel.
    for (auto& worker : workers_) worker->launch(from_old_.has_value());
    for (auto& worker : workers_) worker->awaitStart();
    if (from_old_) {
      std::vector<io::Worker*> held;
      for (auto& w : workers_) held.push_back(w.get());
      takeOverRest(*from_old_, held, *carried_, UpgradeTimeouts::ofSeconds(settings_.upgrade_timeout));
      confirmTakeOver();
    }
    logStart(listeners);
    watchSignals();
    announceReady(listeners.plain.front().address);
    loop_.run();
    return joinAndClose();
  }

 private:
  // What every worker shares and no reload rebuilds: descriptors, nonce key, quotas, limits.
  void prepareSharedState() {
    // Each allocation holds a socket: take every descriptor the system grants us.
    files_limit_ = io::raiseOpenFilesLimit();
    relay_ips_ = relayAddresses(settings_);
    fast_path_ = startFastPath(settings_, relay_ips_);  // issue 21; null when off
    auth::randomBytes(nonce_key_);  // nonces do not outlive the process; clients just get 438
    quota_ = std::make_shared<io::SharedQuota>(settings_.max_allocations, settings_.max_allocations_per_user);
    connection_limits_ =
        std::make_shared<io::ConnectionLimits>(settings_.max_tcp_connections_per_ip, totalConnectionLimit(settings_));
    dtls_limits_.handshakes->setLimits(settings_.max_dtls_handshakes_per_ip, 0);
    dtls_limits_.sessions->setLimits(settings_.max_dtls_sessions_per_ip, totalDtlsSessionLimit(settings_));
    fleet_ = startFleetState(settings_, loop_, revocations_, workers_, node_state_);  // issue 22; null without --redis
    if (fleet_) {
      admin_api_.shareRevocationsThrough([this](const std::string& user, std::int64_t until) {
        main_mailbox_.post([this, user, until] { fleet_->shareRevocation(user, until); });
        return node_state_.redis_connected.load() == 1;
      });
    }
  }

  // The new process of an upgrade: the old one's sockets and allocations instead of binding.
  // What can fail here alone (a certificate, a secret file) is tried before the old process
  // is asked for anything, so a bad configuration leaves it serving untouched.
  std::vector<io::WorkerSockets> takeOverSockets(ClientSockets& listeners) {
    (void)buildReloadable(settings_, nodeIdentity());
    UpgradeFromOld::Received received =
        from_old_->receive(UpgradeTimeouts::ofSeconds(settings_.upgrade_timeout));
    nonce_key_ = received.node.nonce_key;
    carried_ = std::make_unique<metrics::WorkerCounters>();  // filled at the freeze (takeOverRest)
    if (settings_.workers > received.node.workers) {
      // A new member of a listener's SO_REUSEPORT group would move clients' 5-tuples to
      // sockets whose worker does not hold their allocation.
      io::log::warn("--workers grew; the listener groups keep their members, so this process runs "
                    "the old count until a restart",
                    {{"workers", received.node.workers}, {"configured", settings_.workers}});
      settings_.workers = received.node.workers;
    }
    std::vector<io::WorkerSockets> sockets = regroup(std::move(received.bundles), settings_.workers);
    listeners = describeReceived(sockets);
    io::log::info("taking over", {{"from_pid", received.node.old_pid}, {"old_workers", received.node.workers}});
    return sockets;
  }

  // The new process's workers are built, allocations restored, nothing read yet: the old
  // process may let go. Only its COMMIT lets them read, so two processes never read one
  // socket; without it (the old process gave up or died) this one exits having read nothing.
  void confirmTakeOver() {
    io::FileDescriptor metrics;
    try {
      metrics = from_old_->confirm(UpgradeTimeouts::ofSeconds(settings_.upgrade_timeout));
    } catch (...) {
      for (auto& worker : workers_) worker->run(false);
      throw;
    }
    from_old_.reset();
    for (auto& worker : workers_) worker->run(true);
    if (!settings_.hand_over_socket.empty()) {
      // This process serves everything now: failing here would drop every call.
      try {
        listenForTakeOver();
      } catch (const std::exception& e) {
        io::log::error(
            "cannot listen on the hand-over socket; the next start binds beside this one",
            {{"error", e.what()}});
      }
    }
    if (!settings_.metrics_listen) return;
    try {
      startHttp(*settings_.metrics_listen, metrics.release());
    } catch (const std::exception& e) {
      io::log::error("upgrade: cannot serve the metrics port", {{"error", e.what()}});
    }
  }

  // --hand-over-socket: a process that connects takes over, as a spawned child would.
  void listenForTakeOver() {
    hand_over_socket_.listen(settings_.hand_over_socket, [this](io::HandOverChannel peer) {
      (void)startUpgrade("hand-over socket", nullptr, std::move(peer));
    });
  }

  Upgrader::Hooks upgradeHooks() {
    Upgrader::Hooks hooks;
    hooks.workers = [this] {
      std::vector<io::Worker*> workers;
      for (auto& w : workers_) workers.push_back(w.get());
      return workers;
    };
    hooks.node = [this] {
      NodeState node{nonce_key_, static_cast<std::uint32_t>(workers_.size()), static_cast<std::uint32_t>(::getpid()), {}};
      // Read once the workers are frozen: what moved counts on in the new process only.
      // What stays here (TCP and TLS clients) is no longer counted in the totals.
      if (carried_) metrics::addCounterValues(*carried_, node.counters);
      for (auto& w : workers_) metrics::addCounterValues(w->counters(), node.counters);
      return node;
    };
    hooks.release_metrics = [this] { return http_ ? http_->releaseListener() : -1; };
    hooks.handed_over = [this](pid_t pid) { onHandedOver(pid); };
    hooks.environment = [this] {
      std::vector<std::string> env;
      if (!notifier_.environmentEntry().empty()) env.push_back(notifier_.environmentEntry());
      return env;
    };
    return hooks;
  }

  // SIGUSR2, POST /upgrade, or a `peer` on the hand-over socket (refused: the channel closes
  // and the peer exits). Why not, if it cannot begin.
  std::optional<std::string> startUpgrade(std::string_view source, Upgrader::Done done,
                                          std::optional<io::HandOverChannel> peer = std::nullopt) {
    if (stopping_) return std::string("the relay is stopping");
    // In a container whose init is tern, the container ends with this process, and the new
    // one with it (docs/upgrade.md); a peer on the hand-over socket lives in a container of its
    // own.
    if (!peer && ::getpid() == 1) {
      return std::string("tern runs as PID 1: the new process would end with this one");
    }
    // A drain empties the node; handing its calls to a new process would undo it.
    if (draining_) return std::string("the relay is draining");
    notifier_.reloading("upgrading: handing over to a new process");
    Upgrader::Done finished = [this, done = std::move(done)](bool upgraded,
                                                             const std::string& summary) {
      if (!upgraded) {
        notifier_.ready("ready: the last upgrade failed (see the log); this process serves on");
      }
      if (done) done(upgraded, summary);
    };
    auto refused = peer ? upgrader_.startWithPeer(std::move(*peer), source, std::move(finished))
                        : upgrader_.start(source, std::move(finished));
    if (refused) {
      notifier_.ready("ready");
      io::log::warn("upgrade refused", {{"source", source}, {"reason", *refused}});
    }
    return refused;
  }

  // Everything that could move serves from `pid` now. What could not (TCP and TLS clients'
  // connections and their allocations) is served here until it ends, as in a drain.
  void onHandedOver(pid_t pid) {
    if (pid > 0) notifier_.handOver(pid, "upgraded: the new process serves the unit");
    handed_over_ = true;
    beginDrain("upgrade");
  }

  // One worker per --workers, each with its sockets and its share of the relay port range;
  // the collector sums their counters.
  void createWorkers(std::vector<io::WorkerSockets> all, const Reloadable& shared) {
    auto directory = std::make_shared<io::WorkerDirectory>();
    for (unsigned w = 0; w < settings_.workers; ++w) {
      io::WorkerSockets sockets = std::move(all[w]);
      const auto [first, last] =
          io::PortPool::share(settings_.relay_port_min, settings_.relay_port_max, w, settings_.workers);
      io::WorkerSetup setup{shared.options, shared.services, relay_ips_,   first, last, relay_ports_,
                            live_relays_,   reservations_,  shared.tls, shared.dtls, directory,
                            connection_limits_, dtls_limits_, fast_path_, settings_.proxy_protocol_from};
      workers_.push_back(std::make_unique<io::Worker>(w, settings_, std::move(sockets), std::move(setup)));
      directory->workers.push_back(workers_.back().get());
    }
    for (auto& worker : workers_) collector_.addWorker(&worker->counters());
    if (carried_) collector_.addWorker(carried_.get());
  }

  // What the operator needs to know once the workers run (start_log.hpp).
  void logStart(const ClientSockets& listeners) const {
    app::logStart(settings_, listeners.addresses(), relay_ips_, files_limit_);
  }
  std::uint32_t totalConnectionLimit(const config::Settings& settings) const {
    return app::totalConnectionLimit(settings, files_limit_);
  }
  std::uint32_t totalDtlsSessionLimit(const config::Settings& settings) const {
    return app::totalDtlsSessionLimit(settings, files_limit_);
  }

  void watchSignals() {
    auto on_signal = [](uv_signal_t* h, int signum) {
      if (auto* self = io::ownerOf<Server>(h)) self->onSignal(signum);
    };
    sigint_.emplace(loop_, SIGINT, on_signal, this);
    sigterm_.emplace(loop_, SIGTERM, on_signal, this);
    sighup_.emplace(loop_, SIGHUP, on_signal, this);
    sigusr2_.emplace(loop_, SIGUSR2, on_signal, this);
  }

  void announceReady(const wire::SocketAddress& first_listener) {
    node_state_.ready = true;
    io::log::info("ready", {{"workers", settings_.workers},
                            {"try", "tern probe --server " + first_listener.toString()}});
    // Every socket is bound and every worker runs: `systemctl start` may return now.
    std::string status = "ready: ";
    status += std::to_string(settings_.workers);
    status += " workers, relaying on ";
    status += relayIpsText(relay_ips_);
    status += " ports ";
    status += relayPortsText(settings_);
    notifier_.ready(status);
  }

  // After the main loop ends: join the workers, then close the loop. 0 when every handle
  // closed cleanly.
  int joinAndClose() {
    node_state_.ready = false;
    bool clean = true;
    for (auto& worker : workers_) clean = worker->join() && clean;
    http_.reset();
    clean = loop_.close() == 0 && clean;
    io::log::info("stopped", {{"clean", clean ? "true" : "false"}});
    return clean ? 0 : 1;
  }

  NodeIdentity nodeIdentity() const {
    return {relay_ips_, nonce_key_, quota_, revocations_, listener_ports_, live_relays_};
  }

  void startHttp(const wire::SocketAddress& address, int listen_fd = -1) {
    metrics::HttpHooks hooks;
    hooks.health_problem = [this] { return healthProblem(); };
    hooks.not_ready_reason = [this]() -> std::string {
      if (node_state_.draining) return "draining";
      if (!node_state_.ready) return "not ready: starting or stopping";
      return {};
    };
    // From an HTTP thread: the drain itself runs on the main loop.
    hooks.drain = [this] { return main_mailbox_.post([this] { beginDrain("POST /drain"); }); };
    hooks.upgrade = [this](metrics::HttpHooks::UpgradeReply reply) {
      return main_mailbox_.post([this, reply] {
        auto refused = startUpgrade("POST /upgrade", [reply](bool upgraded, const std::string& summary) {
          reply(upgraded ? 200 : 500, summary + "\n");
        });
        if (refused) reply(409, *refused + "\n");
      });
    };
    hooks.admin = [this](const metrics::HttpHooks::AdminCall& call) { return admin_api_.handle(call); };
    hooks.admin_refused = [](std::string_view client, std::string_view result,
                             std::uint64_t suppressed) {
      io::log::warn("admin call refused",
                    {{"client", client}, {"result", result}, {"unlogged_before", suppressed}});
    };
    http_ = std::make_unique<metrics::HttpEndpoint>(
        address.toString(), std::vector<const prometheus::Collectable*>{&collector_, &node_collector_},
        std::move(hooks), listen_fd);
    http_->setAdminToken(settings_.admin_token);
    if (!settings_.admin_token) {
      io::log::warn(
          "no --admin-token-file: POST /drain and tern drain are refused (403); SIGTERM still "
          "drains");
    }
    const wire::SocketAddress bound{address.ip, static_cast<std::uint16_t>(http_->port())};
    io::log::info("listening", {{"transport", "http"}, {"paths", "/metrics /healthz /readyz /drain /upgrade /admin/"},
                                {"address", bound.toString()}});
  }

  // A worker whose loop has not ticked for 5 s (it ticks every second) is stuck: a blocking
  // call, a busy loop. Empty when all is well.
  std::string healthProblem() const {
    constexpr std::int64_t kStalledNs = 5'000'000'000;
    const std::int64_t now = io::steadyNanoseconds();
    std::string problem;
    for (const auto& worker : workers_) {
      const std::int64_t age = now - worker->counters().last_tick_ns.get();
      if (age <= kStalledNs) continue;
      if (problem.empty()) problem = "stalled:";
      problem += " worker ";
      problem += std::to_string(worker->index());
      problem += " has not ticked for ";
      problem += std::to_string(age / 1'000'000'000);
      problem += " s;";
    }
    return problem;
  }

  void onSignal(int signum) {
    switch (signum) {
      case SIGHUP: reload(); return;
      case SIGUSR2: (void)startUpgrade("SIGUSR2", nullptr); return;
      case SIGTERM:
        // Counted apart from drains started otherwise: Kubernetes runs a preStop `tern drain`
        // and then sends SIGTERM, which must not cut the calls the drain protects.
        if (++sigterms_ > 1 || awaiting_stop_) {
          stopNow(awaiting_stop_ ? "SIGTERM after the hand-over" : "second SIGTERM");
        } else {
          beginDrain("SIGTERM");
        }
        return;
      default: stopNow("SIGINT"); return;
    }
  }

  // SIGHUP: read the configuration again (the same flags, the --config file and secret files
  // anew) and apply what a running process can change: secrets, users, TLS certificate and
  // key, peer policy, quotas, limits, log level. A configuration with a problem changes
  // nothing. Allocations carry on either way.
  // systemd (Type=notify) sees the reload begin and end, so `systemctl reload` can tell.
  void reload() {
    notifier_.reloading("reloading the configuration");
    const bool applied = applyReload();
    notifier_.ready(applied ? "ready: configuration reloaded"
                            : "ready: the last reload was rejected (see the log); the running configuration stays");
  }

  bool applyReload() {
    auto loaded = loader_();
    if (!loaded) {
      ++node_state_.reloads_failed;
      io::log::error("configuration reload rejected; the running configuration stays in force",
                     {{"problems", joined(loaded.error(), "; ")}});
      return false;
    }
    config::Settings next = std::move(*loaded);
    const std::vector<std::string> restart_only = restartOnlyChanges(settings_, next);
    // Before anything is built from `next`: see keepRestartOnly.
    keepRestartOnly(next, settings_);
    Reloadable r;
    try {
      r = buildReloadable(next, nodeIdentity());
    } catch (const std::exception& e) {
      ++node_state_.reloads_failed;
      io::log::error("configuration reload rejected; the running configuration stays in force",
                     {{"problems", e.what()}});
      return false;
    }
    quota_->setLimits(next.max_allocations, next.max_allocations_per_user);
    connection_limits_->setLimits(next.max_tcp_connections_per_ip, totalConnectionLimit(next));
    dtls_limits_.handshakes->setLimits(next.max_dtls_handshakes_per_ip, 0);
    dtls_limits_.sessions->setLimits(next.max_dtls_sessions_per_ip, totalDtlsSessionLimit(next));
    io::log::configure(next.log_level, next.log_format);
    for (auto& worker : workers_) {
      worker->reconfigure(io::WorkerReload{r.options, r.services, r.tls, r.dtls, next.tcp_idle_timeout});
    }
    if (http_) http_->setAdminToken(next.admin_token);
    settings_ = std::move(next);
    ++node_state_.reloads_succeeded;
    node_state_.last_good_config_unix = unixNow();
    // Written whatever the new level: whoever sent SIGHUP wants the answer.
    io::log::write(io::log::LogLevel::kInfo, "configuration reloaded",
                   {{"secrets", settings_.auth_secrets.size()},
                    {"users", settings_.users.size()},
                    {"tls", settings_.hasTls() ? "reloaded" : "off"},
                    {"max_bps", settings_.max_bps},
                    {"max_bps_per_user", settings_.max_bps_per_user},
                    {"admin_token", settings_.admin_token ? "set" : "none"},
                    {"log_level", config::levelName(settings_.log_level)}});
    if (!restart_only.empty()) {
      io::log::warn("some changed settings need a restart; their running values stay",
                    {{"settings", joined(restart_only, ",")}});
    }
    return true;
  }

  // SIGTERM, POST /drain: stop taking new allocations (readiness fails, Allocate gets 300 or
  // 508), let the ones that exist run until they end or --drain-timeout passes, then stop.
  void beginDrain(std::string_view source) {
    if (draining_ || stopping_) return;
    draining_ = true;
    // A process started now binds beside this one instead of taking over what is ending.
    hand_over_socket_.close();
    node_state_.ready = false;
    node_state_.draining = true;
    for (auto& worker : workers_) worker->setDraining(true);
    drain_deadline_ = std::chrono::steady_clock::now() + std::chrono::seconds(settings_.drain_timeout);
    io::log::info("draining", {{"source", source},
                               {"allocations", activeAllocations()},
                               {"timeout_seconds", settings_.drain_timeout},
                               {"redirect", settings_.alternate_servers.empty() ? "none (508)" : "300 Try Alternate"}});
    // STOPPING=1 however the drain began: after a `tern drain`, systemd then treats the unit
    // as stopping (its TimeoutStopSec= runs) instead of restarting it when it exits.
    drain_status_allocations_ = activeAllocations();
    notifier_.stopping(drainStatus(drain_status_allocations_));
    // First check on the timer, not now: the workers learn of the drain through their
    // mailboxes, and an Allocate they take meanwhile must not be cut at once.
    drain_timer_.emplace(loop_, 250, [this] { checkDrain(); });
  }

  void checkDrain() {
    const std::int64_t left = activeAllocations();
    if (left != drain_status_allocations_) {
      drain_status_allocations_ = left;
      notifier_.status(drainStatus(left));
    }
    if (left == 0) {
      io::log::info("drained: every allocation has ended");
      if (!awaitStop()) stopNow("drained");
    } else if (std::chrono::steady_clock::now() >= drain_deadline_) {
      io::log::warn("drain timeout: ending the remaining allocations", {{"allocations", left}});
      stopNow("drain timeout");
    }
  }

  // A container's first process that handed its node over waits, empty, for its container to
  // be stopped: were it to exit, the kubelet would restart it (a DaemonSet's restartPolicy is
  // Always) and the restarted process would take the node back from the new pod. A SIGTERM
  // that came during the drain was that stop. (The drain timeout ends the process anyway.)
  bool awaitStop() {
    if (!handed_over_ || ::getpid() != 1 || sigterms_ > 0) return false;
    awaiting_stop_ = true;
    drain_timer_->close();
    io::log::info("handed over and drained; as PID 1, exiting on SIGTERM only");
    notifier_.status("handed over; exiting on SIGTERM");
    return true;
  }

  std::string drainStatus(std::int64_t allocations) const {
    std::string status = "draining: ";
    status += std::to_string(allocations);
    status += " allocations left, exiting when none is or ";
    status += std::to_string(settings_.drain_timeout);
    status += " s after the drain began";
    return status;
  }

  std::int64_t activeAllocations() const {
    std::int64_t n = 0;
    for (const auto& worker : workers_) n += worker->counters().activeAllocations();
    return n;
  }

  void stopNow(std::string_view why) {
    if (stopping_) return;
    stopping_ = true;
    node_state_.ready = false;
    io::log::info("stopping", {{"reason", why}});
    notifier_.stopping("stopping: " + std::string(why));
    for (auto& worker : workers_) worker->stop();
    sigint_->close();
    sigterm_->close();
    sighup_->close();
    sigusr2_->close();
    upgrader_.close();
    hand_over_socket_.close();
    if (drain_timer_) drain_timer_->close();
    if (fleet_) fleet_->stop();  // its sockets and retry timer would keep the loop running
    main_mailbox_.close();
  }

  config::Settings settings_;  // the running configuration; a reload replaces it
  SettingsLoader loader_;
  std::uint64_t files_limit_ = 0;
  std::vector<wire::IpAddress> relay_ips_;
  std::shared_ptr<const io::FastPath> fast_path_;
  // Shared by every worker: the relay port range (a worker borrows past its share) and the
  // relayed addresses open now (the peer policy's view of the relay's own ports).
  std::shared_ptr<io::RelayPortRange> relay_ports_;
  std::shared_ptr<core::LiveRelayPorts> live_relays_;
  std::vector<std::uint16_t> listener_ports_;  // resolved at start-up, for the peer policy
  std::array<std::uint8_t, 32> nonce_key_{};
  std::shared_ptr<io::SharedQuota> quota_;
  std::shared_ptr<io::RevocationList> revocations_ = std::make_shared<io::RevocationList>();
  std::shared_ptr<io::ConnectionLimits> connection_limits_;
  io::DtlsLimits dtls_limits_;
  std::shared_ptr<io::ReservationRegistry> reservations_ = std::make_shared<io::ReservationRegistry>();
  io::EventLoop loop_;
  io::Mailbox main_mailbox_{loop_};
  metrics::NodeState node_state_;
  metrics::CounterCollector collector_;
  metrics::NodeCollector node_collector_;
  std::vector<std::unique_ptr<io::Worker>> workers_;
  AdminApi admin_api_{workers_, revocations_};
  std::unique_ptr<FleetState> fleet_;
  // After an upgrade: what the processes before this one counted, so counters continue.
  std::unique_ptr<metrics::WorkerCounters> carried_;
  std::optional<SignalWatcher> sigint_, sigterm_, sighup_, sigusr2_;
  // Set in the new process of an upgrade until it has taken over.
  std::optional<UpgradeFromOld> from_old_;
  std::optional<io::RepeatingTimer> drain_timer_;
  bool draining_ = false;
  unsigned sigterms_ = 0;
  bool handed_over_ = false;
  bool awaiting_stop_ = false;  // see awaitStop
  bool stopping_ = false;
  std::chrono::steady_clock::time_point drain_deadline_{};
  std::int64_t drain_status_allocations_ = -1;  // the count the last STATUS= line named
  ServiceNotifier notifier_ = ServiceNotifier::fromEnvironment();
  Upgrader upgrader_;  // after the loop, the workers and the notifier it uses
  HandOverSocket hand_over_socket_{loop_};
  // Last: destroyed first, so no HTTP thread runs while what it reads goes away.
  std::unique_ptr<metrics::HttpEndpoint> http_;
};

}  // namespace

int runServer(const config::Settings& settings, SettingsLoader reload, CommandLine command_line) {
  // A client that vanishes mid-write must cost an error code, not the process.
  std::signal(SIGPIPE, SIG_IGN);
  Server server(settings, std::move(reload), std::move(command_line));
  return server.run();
}

}  // namespace tern::app
