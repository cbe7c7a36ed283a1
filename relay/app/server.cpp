// Start-up, signals and shutdown of `tern serve`; see server.hpp.
#include "relay/app/server.hpp"

#include <csignal>
#include <memory>
#include <stdexcept>
#include <vector>

#include <ifaddrs.h>
#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <set>

#include "auth/authenticator.hpp"
#include "auth/credential_store.hpp"
#include "auth/crypto.hpp"
#include "auth/nonce.hpp"
#include "metrics/counter_collector.hpp"
#include "relay/core/cidr.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/io/port_pool.hpp"
#include "relay/io/shared_quota.hpp"
#include "relay/io/event_loop.hpp"
#include "relay/io/log.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/io/worker.hpp"

namespace tern::app {

namespace {

using io::FileDescriptor;
using io::SocketKind;

struct BoundAddress {
  wire::SocketAddress address;  // with the real port when port 0 was asked for
  std::vector<FileDescriptor> udp;  // one per worker
  std::vector<FileDescriptor> tcp;
};

// Binds `workers` sockets of one kind for a TLS-only (TCP) or DTLS (UDP) listener.
std::vector<FileDescriptor> bindSecureAddress(wire::SocketAddress& address, unsigned workers, SocketKind kind) {
  if (address.port != 0) io::ensureAddressFree(kind, address);
  std::vector<FileDescriptor> fds;
  for (unsigned w = 0; w < workers; ++w) {
    fds.push_back(io::openBoundSocket(kind, address, {}));
    if (address.port == 0) address.port = io::localAddress(fds.back().get()).port;
  }
  return fds;
}

// The kernel silently caps SO_RCVBUF/SO_SNDBUF at a sysctl; say so, since a capped listener
// buffer drops media under load. Linux reports twice the size it granted.
void warnIfBufferCapped(int fd, int option, std::uint32_t wanted, const char* setting, const char* sysctl) {
  if (wanted == 0) return;
  int granted = 0;
  socklen_t length = sizeof granted;
  if (::getsockopt(fd, SOL_SOCKET, option, &granted, &length) != 0) return;
  if (static_cast<std::uint32_t>(granted) / 2 >= wanted) return;
  io::log::warn("udp buffer smaller than configured",
                {{"setting", setting}, {"wanted", wanted}, {"granted", granted / 2}, {"raise", sysctl}});
}

// Binds `workers` UDP and TCP sockets to one address. With port 0 the first UDP socket picks
// the port and the rest follow it, so every worker and both transports share one port.
BoundAddress bindAddress(const wire::SocketAddress& wanted, const config::Settings& settings) {
  const io::SocketOptions udp_options{settings.udp_receive_buffer, settings.udp_send_buffer};
  if (wanted.port != 0) {
    io::ensureAddressFree(SocketKind::kUdp, wanted);
    io::ensureAddressFree(SocketKind::kTcp, wanted);
  }
  for (int attempt = 0;; ++attempt) {
    BoundAddress bound{wanted, {}, {}};
    try {
      for (unsigned w = 0; w < settings.workers; ++w) {
        bound.udp.push_back(io::openBoundSocket(SocketKind::kUdp, bound.address, udp_options));
        if (bound.address.port == 0) bound.address.port = io::localAddress(bound.udp.back().get()).port;
      }
      for (unsigned w = 0; w < settings.workers; ++w) {
        bound.tcp.push_back(io::openBoundSocket(SocketKind::kTcp, bound.address, {}));
      }
      warnIfBufferCapped(bound.udp.front().get(), SO_RCVBUF, settings.udp_receive_buffer, "udp-receive-buffer",
                         "net.core.rmem_max");
      warnIfBufferCapped(bound.udp.front().get(), SO_SNDBUF, settings.udp_send_buffer, "udp-send-buffer",
                         "net.core.wmem_max");
      return bound;
    } catch (const std::runtime_error&) {
      // A port picked for UDP may be taken for TCP; pick again a few times.
      if (wanted.port != 0 || attempt == 4) throw;
    }
  }
}

// The host's own addresses (getifaddrs), for wildcard listeners: what to relay on and what
// the peer policy must treat as the relay itself.
std::vector<wire::IpAddress> hostAddresses() {
  std::vector<wire::IpAddress> out;
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) return out;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr) continue;
    const int family = i->ifa_addr->sa_family;
    if (family != AF_INET && family != AF_INET6) continue;
    out.push_back(io::fromSockaddr(i->ifa_addr).ip);
  }
  ::freeifaddrs(list);
  return out;
}

bool isLoopbackOrLinkLocal(const wire::IpAddress& ip) {
  const std::uint8_t* b = ip.data();
  if (ip.isV4()) return b[0] == 127 || (b[0] == 169 && b[1] == 254);
  static constexpr std::array<std::uint8_t, 16> kLoopback6{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
  return std::equal(kLoopback6.begin(), kLoopback6.end(), b) || (b[0] == 0xfe && (b[1] & 0xc0) == 0x80);
}

// --relay-ip, or else the specific --listen addresses, or else (wildcard listeners) the
// host's routable addresses.
std::vector<wire::IpAddress> relayAddresses(const config::Settings& settings) {
  if (!settings.relay_ips.empty()) return settings.relay_ips;
  std::vector<wire::IpAddress> out;
  bool wildcard = false;
  for (const auto& a : settings.listen) {
    if (a.ip.isUnspecified()) {
      wildcard = true;
    } else if (std::find(out.begin(), out.end(), a.ip) == out.end()) {
      out.push_back(a.ip);
    }
  }
  if (wildcard) {
    for (const auto& ip : hostAddresses()) {
      if (!isLoopbackOrLinkLocal(ip) && std::find(out.begin(), out.end(), ip) == out.end()) out.push_back(ip);
    }
  }
  if (out.empty()) throw std::runtime_error("no address to relay on: set --relay-ip");
  return out;
}

struct SharedServices {
  core::ServerOptions options;
  core::ServerServices services;
  std::vector<wire::IpAddress> relay_ips;
  std::shared_ptr<io::ReservationRegistry> reservations = std::make_shared<io::ReservationRegistry>();
  std::shared_ptr<const io::TlsContext> tls;
  std::shared_ptr<const io::TlsContext> dtls;
};

SharedServices buildServices(const config::Settings& settings) {
  SharedServices shared;
  shared.relay_ips = relayAddresses(settings);
  if (settings.hasTls()) {
    shared.tls = io::TlsContext::load(settings.cert, settings.key);
    shared.dtls = io::TlsContext::load(settings.cert, settings.key, io::TlsContext::Kind::kDtls);
  }

  auth::CredentialOptions credentials;
  credentials.realm = settings.realm;
  credentials.rest_secrets = settings.auth_secrets;
  for (const auto& u : settings.users) credentials.static_users.push_back({u.name, u.password});
  std::array<std::uint8_t, 32> nonce_key{};
  auth::randomBytes(nonce_key);  // nonces do not outlive the process; clients just get 438
  auto store = std::make_shared<const auth::CredentialStore>(std::move(credentials));
  auto nonces = std::make_shared<const auth::NonceIssuer>(nonce_key, std::chrono::seconds(settings.nonce_lifetime));
  shared.services.authenticator = std::make_shared<const auth::Authenticator>(store, nonces);

  core::PeerPolicyOptions policy;
  for (const auto& text : settings.allow_peers) policy.allow.push_back(*core::Cidr::parse(text));
  for (const auto& text : settings.deny_peers) policy.deny.push_back(*core::Cidr::parse(text));
  std::set<wire::IpAddress> own(shared.relay_ips.begin(), shared.relay_ips.end());
  for (const auto& e : settings.external_ips) {
    own.insert(e.public_ip);
    if (e.private_ip) own.insert(*e.private_ip);
  }
  for (const auto& a : settings.listen) {
    if (!a.ip.isUnspecified()) {
      own.insert(a.ip);
    } else {
      for (const auto& ip : hostAddresses()) own.insert(ip);
    }
  }
  policy.own_addresses.assign(own.begin(), own.end());
  policy.relay_port_min = settings.relay_port_min;
  policy.relay_port_max = settings.relay_port_max;
  shared.services.peer_policy = std::make_shared<const core::PeerPolicy>(std::move(policy));
  shared.services.quota = std::make_shared<io::SharedQuota>(settings.max_allocations, settings.max_allocations_per_user);

  shared.options.software = settings.software;
  shared.options.max_lifetime = std::chrono::seconds(settings.max_lifetime);
  shared.options.max_permissions_per_allocation = settings.max_permissions_per_allocation;
  shared.options.max_channels_per_allocation = settings.max_channels_per_allocation;
  shared.options.max_connections_per_allocation = settings.max_connections_per_allocation;
  for (const auto& e : settings.external_ips) shared.options.external_ips.push_back({e.public_ip, e.private_ip});
  return shared;
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
  explicit Server(const config::Settings& settings) : settings_(settings) {}

  int run() {
    // Each allocation holds a socket: take every descriptor the system grants us.
    files_limit_ = io::raiseOpenFilesLimit();
    const SharedServices shared = buildServices(settings_);
    std::vector<BoundAddress> addresses;
    for (const auto& a : settings_.listen) addresses.push_back(bindAddress(a, settings_));
    std::vector<wire::SocketAddress> tls_addresses = settings_.tls_listen;
    std::vector<std::vector<FileDescriptor>> tls_fds;
    for (auto& a : tls_addresses) tls_fds.push_back(bindSecureAddress(a, settings_.workers, SocketKind::kTcp));
    std::vector<wire::SocketAddress> dtls_addresses = settings_.dtls_listen;
    std::vector<std::vector<FileDescriptor>> dtls_fds;
    for (auto& a : dtls_addresses) dtls_fds.push_back(bindSecureAddress(a, settings_.workers, SocketKind::kUdp));

    auto directory = std::make_shared<io::WorkerDirectory>();
    for (unsigned w = 0; w < settings_.workers; ++w) {
      io::WorkerSockets sockets;
      for (auto& bound : addresses) {
        sockets.udp.push_back(std::move(bound.udp[w]));
        sockets.tcp.push_back(std::move(bound.tcp[w]));
      }
      for (auto& fds : tls_fds) sockets.tls.push_back(std::move(fds[w]));
      for (auto& fds : dtls_fds) sockets.dtls.push_back(std::move(fds[w]));
      const auto [first, last] =
          io::PortPool::share(settings_.relay_port_min, settings_.relay_port_max, w, settings_.workers);
      io::WorkerSetup setup{shared.options, shared.services, shared.relay_ips, first, last, shared.reservations,
                            shared.tls, shared.dtls, directory};
      workers_.push_back(std::make_unique<io::Worker>(w, settings_, std::move(sockets), std::move(setup)));
      directory->workers.push_back(workers_.back().get());
    }
    for (auto& worker : workers_) {
      worker->start();
      collector_.addWorker(&worker->counters());
    }
    for (const auto& bound : addresses) {
      for (const char* transport : {"udp", "tcp"}) {
        io::log::info("listening", {{"transport", transport}, {"address", bound.address.toString()}});
      }
    }
    // Appends, not operator+ chains: GCC 12 at -O3 raises a false -Wrestrict on those.
    for (const auto& a : tls_addresses) {
      io::log::info("listening", {{"transport", "tls"}, {"address", a.toString()}});
    }
    for (const auto& a : dtls_addresses) {
      io::log::info("listening", {{"transport", "dtls"}, {"address", a.toString()}});
    }
    std::string relay_ips;
    for (const auto& ip : shared.relay_ips) {
      if (!relay_ips.empty()) relay_ips += ',';
      relay_ips += ip.toString();
    }
    std::string ports = std::to_string(settings_.relay_port_min);
    ports += '-';
    ports += std::to_string(settings_.relay_port_max);
    io::log::info("relaying", {{"relay_ips", relay_ips}, {"ports", ports}, {"realm", settings_.realm}});
    warnIfFilesLimitCapsAllocations(shared.relay_ips.size());
    if (!settings_.hasCredentials()) {
      io::log::warn("no credentials configured: every TURN request is refused with 401; set "
                    "--auth-secret-file, TERN_AUTH_SECRET or --user (STUN Binding still works)");
    }
    io::log::info("ready", {{"workers", settings_.workers},
                            {"try", "tern probe --server " + addresses.front().address.toString()}});

    auto on_signal = [](uv_signal_t* h, int signum) {
      if (auto* self = io::ownerOf<Server>(h)) self->onSignal(signum);
    };
    sigint_.emplace(loop_, SIGINT, on_signal, this);
    sigterm_.emplace(loop_, SIGTERM, on_signal, this);
    sighup_.emplace(loop_, SIGHUP, on_signal, this);
    loop_.run();

    bool clean = true;
    for (auto& worker : workers_) clean = worker->join() && clean;
    clean = loop_.close() == 0 && clean;
    io::log::info("stopped", {{"clean", clean ? "true" : "false"}});
    return clean ? 0 : 1;
  }

 private:
  void onSignal(int signum) {
    if (signum == SIGHUP) {
      reloadTls();
      return;
    }
    io::log::info("stopping", {{"signal", signum == SIGINT ? "SIGINT" : "SIGTERM"}});
    for (auto& worker : workers_) worker->stop();
    sigint_->close();
    sigterm_->close();
    sighup_->close();
  }

  // SIGHUP: load the certificate chain and key again (renewed certificates keep their paths);
  // new TLS connections use them, calls in progress keep theirs. A file that does not load
  // leaves the current certificate in force. Other settings are not reloaded yet.
  void reloadTls() {
    if (!settings_.hasTls()) {
      io::log::info("SIGHUP: nothing to reload (no --cert); other settings are not reloaded yet");
      return;
    }
    try {
      auto tls = io::TlsContext::load(settings_.cert, settings_.key);
      auto dtls = io::TlsContext::load(settings_.cert, settings_.key, io::TlsContext::Kind::kDtls);
      for (auto& worker : workers_) worker->updateTls(tls, dtls);
      io::log::info("tls certificate reloaded", {{"cert", settings_.cert}});
    } catch (const std::exception& e) {
      io::log::error("tls certificate reload failed; the current certificate stays in force",
                     {{"error", e.what()}});
    }
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

  const config::Settings& settings_;
  std::uint64_t files_limit_ = 0;
  io::EventLoop loop_;
  metrics::CounterCollector collector_;
  std::vector<std::unique_ptr<io::Worker>> workers_;
  std::optional<SignalWatcher> sigint_, sigterm_, sighup_;
};

}  // namespace

int runServer(const config::Settings& settings) {
  // A client that vanishes mid-write must cost an error code, not the process.
  std::signal(SIGPIPE, SIG_IGN);
  Server server(settings);
  return server.run();
}

}  // namespace tern::app
