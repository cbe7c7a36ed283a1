// Start-up, signals and shutdown of `tern serve`; see server.hpp.
#include "relay/app/server.hpp"

#include <csignal>
#include <memory>
#include <stdexcept>
#include <vector>

#include "metrics/counter_collector.hpp"
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
      return bound;
    } catch (const std::runtime_error&) {
      // A port picked for UDP may be taken for TCP; pick again a few times.
      if (wanted.port != 0 || attempt == 4) throw;
    }
  }
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
    std::vector<BoundAddress> addresses;
    for (const auto& a : settings_.listen) addresses.push_back(bindAddress(a, settings_));

    for (unsigned w = 0; w < settings_.workers; ++w) {
      io::WorkerSockets sockets;
      for (auto& bound : addresses) {
        sockets.udp.push_back(std::move(bound.udp[w]));
        sockets.tcp.push_back(std::move(bound.tcp[w]));
      }
      workers_.push_back(std::make_unique<io::Worker>(w, settings_, std::move(sockets)));
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
      // Reloading arrives with hot reload; until then SIGHUP must not kill the relay.
      io::log::warn("SIGHUP ignored: configuration reload is not supported by this version");
      return;
    }
    io::log::info("stopping", {{"signal", signum == SIGINT ? "SIGINT" : "SIGTERM"}});
    for (auto& worker : workers_) worker->stop();
    sigint_->close();
    sigterm_->close();
    sighup_->close();
  }

  const config::Settings& settings_;
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
