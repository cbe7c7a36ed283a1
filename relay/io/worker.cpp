// The worker thread and everything on it; see worker.hpp.
#include "relay/io/worker.hpp"

#include <unordered_map>

#include "relay/io/event_loop.hpp"
#include "relay/io/log.hpp"
#include "relay/io/stream_connection.hpp"
#include "relay/io/tcp_listener.hpp"
#include "relay/io/udp_listener.hpp"

namespace tern::io {

namespace {

struct StreamKey {
  wire::SocketAddress client;
  wire::SocketAddress server;
  friend bool operator==(const StreamKey&, const StreamKey&) noexcept = default;
};

struct StreamKeyHash {
  static std::size_t hashAddress(const wire::SocketAddress& a) noexcept {
    // FNV-1a over the address bytes and port: cheap, and keys are not attacker-chosen in bulk
    // (one per accepted connection).
    std::size_t h = 1469598103934665603ull;
    for (std::size_t i = 0; i < a.ip.size(); ++i) h = (h ^ a.ip.data()[i]) * 1099511628211ull;
    return (h ^ a.port) * 1099511628211ull;
  }
  std::size_t operator()(const StreamKey& k) const noexcept {
    return hashAddress(k.client) * 31 + hashAddress(k.server);
  }
};

}  // namespace

class Worker::Loop final : public DatagramHandler,
                           public ConnectionAcceptor,
                           public StreamHandler,
                           public core::ServerOutput {
 public:
  Loop(Worker& worker, WorkerSockets sockets)
      : worker_(worker),
        mailbox_(loop_),
        tick_(loop_, 1000, [this] { onTick(); }),
        server_(core::ServerOptions{worker.settings_.software}, *this, *worker.counters_) {
    for (auto& fd : sockets.udp) {
      udp_.push_back(std::make_unique<UdpListener>(loop_.get(), std::move(fd), *this, receive_buffer_));
    }
    for (auto& fd : sockets.tcp) {
      tcp_.push_back(std::make_unique<TcpListener>(loop_.get(), std::move(fd), *this));
    }
  }

  Mailbox& mailbox() noexcept { return mailbox_; }
  void run() { loop_.run(); }
  int closeLoop() noexcept { return loop_.close(); }

  // Closes every handle; the loop returns once their close callbacks have run.
  void stop() noexcept {
    auto connections = std::move(connections_);
    connections_.clear();
    for (auto& [key, connection] : connections) connection->close("server stopping");
    closed_.clear();
    for (auto& u : udp_) u->close();
    for (auto& t : tcp_) t->close();
    tick_.close();
    mailbox_.close();
  }

  // --- DatagramHandler
  void onDatagram(UdpListener& socket, const wire::SocketAddress& from,
                  wire::Bytes data) noexcept override {
    server_.onClientPacket({core::Transport::kUdp, from, socket.localAddress()}, data, loop_.now());
  }

  // --- ConnectionAcceptor
  void onConnection(TcpListener& listener) noexcept override {
    try {
      auto connection = std::make_unique<StreamConnection>(loop_.get(), listener.stream(), *this,
                                                           core::Transport::kTcp, loop_.now());
      StreamKey key{connection->tuple().client, connection->tuple().server};
      connections_[key] = std::move(connection);
    } catch (const std::exception& e) {
      // Accept can fail when the client has already gone (ECONNABORTED) or fds run out.
      log::warn("tcp accept failed", {{"worker", worker_.index_}, {"error", e.what()}});
    }
  }

  // --- StreamHandler
  void onFrame(StreamConnection& connection, wire::Bytes frame) noexcept override {
    server_.onClientPacket(connection.tuple(), frame, loop_.now());
  }
  void onClosed(StreamConnection& connection) noexcept override {
    auto it = connections_.find({connection.tuple().client, connection.tuple().server});
    if (it == connections_.end()) return;
    // The connection may be inside its own callback: destroy it on the next tick.
    closed_.push_back(std::move(it->second));
    connections_.erase(it);
  }

  // --- core::ServerOutput
  bool sendToClient(const core::FiveTuple& tuple, wire::Bytes bytes) noexcept override {
    if (tuple.transport == core::Transport::kUdp) {
      for (auto& u : udp_) {
        if (u->localAddress() == tuple.server) return u->send(tuple.client, bytes);
      }
      return false;
    }
    auto it = connections_.find({tuple.client, tuple.server});
    return it != connections_.end() && it->second->send(bytes);
  }

 private:
  void onTick() noexcept {
    closed_.clear();
    const auto now = loop_.now();
    const auto idle_limit = std::chrono::seconds(worker_.settings_.tcp_idle_timeout);
    std::vector<StreamConnection*> idle;
    for (auto& [key, connection] : connections_) {
      if (now - connection->lastActivity() > idle_limit) idle.push_back(connection.get());
    }
    for (auto* connection : idle) connection->close("idle timeout");
  }

  Worker& worker_;
  EventLoop loop_;  // declared first among the handle owners, so it is destroyed last
  Mailbox mailbox_;
  RepeatingTimer tick_;
  ReceiveBuffer receive_buffer_;
  core::TurnServer server_;
  std::vector<std::unique_ptr<UdpListener>> udp_;
  std::vector<std::unique_ptr<TcpListener>> tcp_;
  std::unordered_map<StreamKey, std::unique_ptr<StreamConnection>, StreamKeyHash> connections_;
  std::vector<std::unique_ptr<StreamConnection>> closed_;
};

Worker::Worker(unsigned index, const config::Settings& settings, WorkerSockets sockets)
    : index_(index),
      settings_(settings),
      sockets_(std::move(sockets)),
      counters_(std::make_unique<metrics::WorkerCounters>()) {}

Worker::~Worker() {
  stop();
  join();
}

void Worker::start() {
  std::promise<void> started;
  auto ready = started.get_future();
  thread_ = std::thread([this, p = std::move(started)]() mutable { threadMain(std::move(p)); });
  try {
    ready.get();
  } catch (...) {
    join();
    throw;
  }
}

void Worker::threadMain(std::promise<void> started) noexcept {
  std::unique_ptr<Loop> loop;
  try {
    loop = std::make_unique<Loop>(*this, std::move(sockets_));
  } catch (...) {
    started.set_exception(std::current_exception());
    return;
  }
  {
    std::lock_guard lock(loop_mutex_);
    loop_ = loop.get();
  }
  started.set_value();
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

bool Worker::join() {
  if (thread_.joinable()) thread_.join();
  return clean_close_;
}

}  // namespace tern::io
