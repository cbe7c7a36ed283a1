// Start-up, signals, reload, drain and shutdown of `tern serve`; see server.hpp. Sockets come
// from listeners.hpp, what a reload builds from reload.hpp.
#include "relay/app/server.hpp"

#include "relay/app/listeners.hpp"
#include "relay/app/reload.hpp"
#include "relay/app/service_notifier.hpp"

#include <algorithm>
#include <array>
#include <chrono>
#include <csignal>
#include <memory>
#include <optional>
#include <vector>

#include "auth/crypto.hpp"
#include "metrics/counter_collector.hpp"
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

class SignalWatcher {
 public:
  SignalWatcher(io::EventLoop& loop, int signum, void (*on_signal)(uv_signal_t*, int), void* owner) {
    io::checkUv(uv_signal_init(loop.get(), handle_.get()), "uv_signal_init");
    handle_.initialized(owner);
    io::checkUv(uv_signal_start(handle_.get(), on_signal, signum), "uv_signal_start");
  }
  void close() noexcept { handle_.close(); }

 private:
  io::UvHandle<uv_signal_t> handle_;
};

class Server {
 public:
  Server(config::Settings settings, SettingsLoader loader)
      : settings_(std::move(settings)), loader_(std::move(loader)), node_collector_(node_state_, TERN_VERSION) {}

  int run() {
    prepareSharedState();
    Listeners listeners = bindListeners();
    live_relays_ = std::make_shared<core::LiveRelayPorts>(relay_ips_);
    relay_ports_ =
        std::make_shared<io::RelayPortRange>(settings_.relay_port_min, settings_.relay_port_max);
    const Reloadable shared = buildReloadable(settings_, nodeIdentity());
    createWorkers(listeners, shared);
    // Bound before any worker runs, like every other socket: a taken port stops start-up
    // cleanly. Until the end of start-up /readyz answers 503.
    node_state_.last_good_config_unix = unixNow();
    if (settings_.metrics_listen) startHttp(*settings_.metrics_listen);
    for (auto& worker : workers_) worker->start();
    logStart(listeners);
    watchSignals();
    announceReady(listeners.addresses.front().address);
    loop_.run();
    return joinAndClose();
  }

 private:
  // The client-facing sockets bound at start-up, one per worker for each address, until
  // createWorkers hands them out.
  struct Listeners {
    std::vector<BoundAddress> addresses;  // --listen: UDP and TCP
    std::vector<wire::SocketAddress> tls_addresses;
    std::vector<std::vector<FileDescriptor>> tls_fds;
    std::vector<wire::SocketAddress> dtls_addresses;
    std::vector<std::vector<FileDescriptor>> dtls_fds;
  };

  // What every worker shares and no reload rebuilds: descriptors, nonce key, quotas, limits.
  void prepareSharedState() {
    // Each allocation holds a socket: take every descriptor the system grants us.
    files_limit_ = io::raiseOpenFilesLimit();
    relay_ips_ = relayAddresses(settings_);
    auth::randomBytes(nonce_key_);  // nonces do not outlive the process; clients just get 438
    quota_ = std::make_shared<io::SharedQuota>(settings_.max_allocations, settings_.max_allocations_per_user);
    connection_limits_ =
        std::make_shared<io::ConnectionLimits>(settings_.max_tcp_connections_per_ip, totalConnectionLimit(settings_));
    dtls_limits_.handshakes->setLimits(settings_.max_dtls_handshakes_per_ip, 0);
    dtls_limits_.sessions->setLimits(settings_.max_dtls_sessions_per_ip, totalDtlsSessionLimit(settings_));
  }

  // Binds every listener (port 0 resolved) and records the ports for the peer policy.
  Listeners bindListeners() {
    Listeners l;
    for (const auto& a : settings_.listen) l.addresses.push_back(bindAddress(a, settings_));
    l.tls_addresses = settings_.tls_listen;
    for (auto& a : l.tls_addresses)
      l.tls_fds.push_back(bindSecureAddress(a, settings_.workers, SocketKind::kTcp));
    l.dtls_addresses = settings_.dtls_listen;
    for (auto& a : l.dtls_addresses)
      l.dtls_fds.push_back(bindSecureAddress(a, settings_.workers, SocketKind::kUdp));
    for (const auto& bound : l.addresses) listener_ports_.push_back(bound.address.port);
    for (const auto* list : {&l.tls_addresses, &l.dtls_addresses}) {
      for (const auto& a : *list) listener_ports_.push_back(a.port);
    }
    return l;
  }

  // One worker per --workers, each with its own socket of every listener and its share of
  // the relay port range; the collector sums their counters.
  void createWorkers(Listeners& listeners, const Reloadable& shared) {
    auto directory = std::make_shared<io::WorkerDirectory>();
    for (unsigned w = 0; w < settings_.workers; ++w) {
      io::WorkerSockets sockets;
      for (auto& bound : listeners.addresses) {
        sockets.udp.push_back(std::move(bound.udp[w]));
        sockets.tcp.push_back(std::move(bound.tcp[w]));
      }
      for (auto& fds : listeners.tls_fds) sockets.tls.push_back(std::move(fds[w]));
      for (auto& fds : listeners.dtls_fds) sockets.dtls.push_back(std::move(fds[w]));
      const auto [first, last] =
          io::PortPool::share(settings_.relay_port_min, settings_.relay_port_max, w, settings_.workers);
      io::WorkerSetup setup{shared.options, shared.services, relay_ips_,   first, last, relay_ports_,
                            live_relays_,   reservations_,  shared.tls, shared.dtls, directory,
                            connection_limits_, dtls_limits_};
      workers_.push_back(std::make_unique<io::Worker>(w, settings_, std::move(sockets), std::move(setup)));
      directory->workers.push_back(workers_.back().get());
    }
    for (auto& worker : workers_) collector_.addWorker(&worker->counters());
  }

  // What the operator needs to know once the workers run: where tern listens and relays,
  // its abuse limits, and settings that will refuse or cap clients.
  void logStart(const Listeners& listeners) const {
    for (const auto& bound : listeners.addresses) {
      for (const char* transport : {"udp", "tcp"}) {
        io::log::info("listening", {{"transport", transport}, {"address", bound.address.toString()}});
      }
    }
    for (const auto& a : listeners.tls_addresses) {
      io::log::info("listening", {{"transport", "tls"}, {"address", a.toString()}});
    }
    for (const auto& a : listeners.dtls_addresses) {
      io::log::info("listening", {{"transport", "dtls"}, {"address", a.toString()}});
    }
    io::log::info(
        "relaying",
        {{"relay_ips", relayIpsText()}, {"ports", relayPortsText()}, {"realm", settings_.realm}});
    // Each worker keeps its own buckets and the kernel spreads a source's ports over the
    // workers, so a source with many ports (a NAT, or a spoofer) gets up to workers x rate.
    io::log::info("abuse limits",
                  {{"unauthenticated_per_second_per_worker", settings_.unauthenticated_rate},
                   {"unauthenticated_burst_per_worker", settings_.unauthenticated_burst},
                   {"unauthenticated_per_second_at_most", std::uint64_t{settings_.unauthenticated_rate} * settings_.workers},
                   {"tcp_connections_per_ip", settings_.max_tcp_connections_per_ip},
                   {"tcp_connections", totalConnectionLimit(settings_)},
                   {"dtls_handshakes_per_ip", settings_.max_dtls_handshakes_per_ip},
                   {"dtls_sessions_per_ip", settings_.max_dtls_sessions_per_ip},
                   {"dtls_sessions", totalDtlsSessionLimit(settings_)}});
    warnIfFilesLimitCapsAllocations(relay_ips_.size());
    if (!settings_.hasCredentials()) {
      io::log::warn("no credentials configured: every TURN request is refused with 401; set "
                    "--auth-secret-file, TERN_AUTH_SECRET or --user (STUN Binding still works)");
    }
  }

  // "192.0.2.1,2001:db8::1" and "49152-65535", for the start-up log and systemd's status.
  // Appends, not operator+ chains: GCC 12 at -O3 raises a false -Wrestrict on those.
  std::string relayIpsText() const {
    std::string relay_ips;
    for (const auto& ip : relay_ips_) {
      if (!relay_ips.empty()) relay_ips += ',';
      relay_ips += ip.toString();
    }
    return relay_ips;
  }
  std::string relayPortsText() const {
    std::string ports = std::to_string(settings_.relay_port_min);
    ports += '-';
    ports += std::to_string(settings_.relay_port_max);
    return ports;
  }

  void watchSignals() {
    auto on_signal = [](uv_signal_t* h, int signum) {
      if (auto* self = io::ownerOf<Server>(h)) self->onSignal(signum);
    };
    sigint_.emplace(loop_, SIGINT, on_signal, this);
    sigterm_.emplace(loop_, SIGTERM, on_signal, this);
    sighup_.emplace(loop_, SIGHUP, on_signal, this);
  }

  void announceReady(const wire::SocketAddress& first_listener) {
    node_state_.ready = true;
    io::log::info("ready", {{"workers", settings_.workers},
                            {"try", "tern probe --server " + first_listener.toString()}});
    // Every socket is bound and every worker runs: `systemctl start` may return now.
    std::string status = "ready: ";
    status += std::to_string(settings_.workers);
    status += " workers, relaying on ";
    status += relayIpsText();
    status += " ports ";
    status += relayPortsText();
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
    return {relay_ips_, nonce_key_, quota_, listener_ports_, live_relays_};
  }

  void startHttp(const wire::SocketAddress& address) {
    metrics::HttpHooks hooks;
    hooks.health_problem = [this] { return healthProblem(); };
    hooks.not_ready_reason = [this]() -> std::string {
      if (node_state_.draining) return "draining";
      if (!node_state_.ready) return "not ready: starting or stopping";
      return {};
    };
    // From an HTTP thread: the drain itself runs on the main loop.
    hooks.drain = [this] { return main_mailbox_.post([this] { beginDrain("POST /drain"); }); };
    hooks.admin_refused = [](std::string_view client, std::string_view result,
                             std::uint64_t suppressed) {
      io::log::warn("admin call refused",
                    {{"client", client}, {"result", result}, {"unlogged_before", suppressed}});
    };
    http_ = std::make_unique<metrics::HttpEndpoint>(
        address.toString(), std::vector<const prometheus::Collectable*>{&collector_, &node_collector_},
        std::move(hooks));
    http_->setAdminToken(settings_.admin_token);
    if (!settings_.admin_token) {
      io::log::warn(
          "no --admin-token-file: POST /drain and tern drain are refused (403); SIGTERM still "
          "drains");
    }
    const wire::SocketAddress bound{address.ip, static_cast<std::uint16_t>(http_->port())};
    io::log::info("listening", {{"transport", "http"}, {"paths", "/metrics /healthz /readyz /drain"},
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
      case SIGTERM:
        // Counted apart from drains started otherwise: Kubernetes runs a preStop `tern drain`
        // and then sends SIGTERM, which must not cut the calls the drain protects.
        if (++sigterms_ > 1) {
          stopNow("second SIGTERM");
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
      stopNow("drained");
    } else if (std::chrono::steady_clock::now() >= drain_deadline_) {
      io::log::warn("drain timeout: ending the remaining allocations", {{"allocations", left}});
      stopNow("drain timeout");
    }
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
    if (drain_timer_) drain_timer_->close();
    main_mailbox_.close();
  }

  // --max-tcp-connections auto: half the descriptors this process may open, so a flood of
  // connections leaves the other half for relay sockets (one per UDP allocation).
  std::uint32_t totalConnectionLimit(const config::Settings& settings) const {
    return settings.max_tcp_connections ? *settings.max_tcp_connections : halfFilesLimit();
  }
  // --max-dtls-sessions auto: the same half. A session holds no descriptor itself, but one
  // that serves a call holds a relay socket, so a node sized for its descriptors is sized
  // for that many sessions, and a flood cannot hold more memory than real callers would.
  std::uint32_t totalDtlsSessionLimit(const config::Settings& settings) const {
    return settings.max_dtls_sessions ? *settings.max_dtls_sessions : halfFilesLimit();
  }
  std::uint32_t halfFilesLimit() const {
    return static_cast<std::uint32_t>(std::clamp<std::uint64_t>(files_limit_ / 2, 1, 10'000'000));
  }

  // The relay range offers more allocations than descriptors allow: say so at start-up
  // rather than through 508s under load.
  void warnIfFilesLimitCapsAllocations(std::size_t relay_ip_count) const {
    constexpr std::uint64_t kHeadroom = 1024;  // listeners, client TCP connections, files
    const std::uint64_t ports = std::uint64_t{settings_.relay_port_max} - settings_.relay_port_min + 1;
    const std::uint64_t offered = ports * relay_ip_count;
    if (files_limit_ >= offered + kHeadroom) return;
    io::log::warn("open files limit caps allocations below the relay range",
                  {{"open_files_limit", files_limit_},
                   {"allocations_at_most", files_limit_ > kHeadroom ? files_limit_ - kHeadroom : 0},
                   {"relay_range_offers", offered},
                   {"raise", "LimitNOFILE= (systemd) or ulimit -n"}});
  }

  config::Settings settings_;  // the running configuration; a reload replaces it
  SettingsLoader loader_;
  std::uint64_t files_limit_ = 0;
  std::vector<wire::IpAddress> relay_ips_;
  // Shared by every worker: the relay port range (a worker borrows past its share) and the
  // relayed addresses open now (the peer policy's view of the relay's own ports).
  std::shared_ptr<io::RelayPortRange> relay_ports_;
  std::shared_ptr<core::LiveRelayPorts> live_relays_;
  std::vector<std::uint16_t> listener_ports_;  // resolved at start-up, for the peer policy
  std::array<std::uint8_t, 32> nonce_key_{};
  std::shared_ptr<io::SharedQuota> quota_;
  std::shared_ptr<io::ConnectionLimits> connection_limits_;
  io::DtlsLimits dtls_limits_;
  std::shared_ptr<io::ReservationRegistry> reservations_ = std::make_shared<io::ReservationRegistry>();
  io::EventLoop loop_;
  io::Mailbox main_mailbox_{loop_};
  metrics::NodeState node_state_;
  metrics::CounterCollector collector_;
  metrics::NodeCollector node_collector_;
  std::vector<std::unique_ptr<io::Worker>> workers_;
  std::optional<SignalWatcher> sigint_, sigterm_, sighup_;
  std::optional<io::RepeatingTimer> drain_timer_;
  bool draining_ = false;
  unsigned sigterms_ = 0;
  bool stopping_ = false;
  std::chrono::steady_clock::time_point drain_deadline_{};
  std::int64_t drain_status_allocations_ = -1;  // the count the last STATUS= line named
  ServiceNotifier notifier_ = ServiceNotifier::fromEnvironment();
  // Last: destroyed first, so no HTTP thread runs while what it reads goes away.
  std::unique_ptr<metrics::HttpEndpoint> http_;
};

}  // namespace

int runServer(const config::Settings& settings, SettingsLoader reload) {
  // A client that vanishes mid-write must cost an error code, not the process.
  std::signal(SIGPIPE, SIG_IGN);
  Server server(settings, std::move(reload));
  return server.run();
}

}  // namespace tern::app
