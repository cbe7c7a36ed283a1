// io::Worker in-process: real sockets on loopback, SO_REUSEPORT sharding across workers, a
// shutdown that closes every handle (join() is true only if uv_loop_close() returned 0), and
// the inventory of everything a worker owns.
#include <doctest/doctest.h>

#include <algorithm>

#include "relay/client/binding.hpp"
#include "relay/io/worker.hpp"
#include "support/core_services.hpp"
#include "support/stun_socket.hpp"
#include "support/turn_test_client.hpp"

using namespace tern;

namespace {

const wire::SocketAddress kAnyLoopback{*wire::IpAddress::parse("127.0.0.1"), 0};

config::Settings settings() {
  auto s = config::validate(config::Config{}, 1);
  REQUIRE(s.has_value());
  s->tcp_idle_timeout = 60;
  return *s;
}

struct Sockets {
  std::vector<io::WorkerSockets> per_worker;
  wire::SocketAddress address;
};

// Binds `workers` UDP and TCP sockets to one loopback port, as the server does.
Sockets bindShared(unsigned workers) {
  Sockets out{std::vector<io::WorkerSockets>(workers), kAnyLoopback};
  for (unsigned w = 0; w < workers; ++w) {
    out.per_worker[w].udp.push_back(io::openBoundSocket(io::SocketKind::kUdp, out.address, {}));
    if (out.address.port == 0) out.address.port = io::localAddress(out.per_worker[w].udp.back().get()).port;
  }
  for (unsigned w = 0; w < workers; ++w) {
    out.per_worker[w].tcp.push_back(io::openBoundSocket(io::SocketKind::kTcp, out.address, {}));
  }
  return out;
}

io::WorkerSetup setup(unsigned index, unsigned count) {
  io::WorkerSetup s;
  s.services = test::makeServices();
  s.relay_ips = {*wire::IpAddress::parse("127.0.0.1")};
  s.relay_port_first = static_cast<std::uint16_t>(43000 + 100 * index);
  s.relay_port_last = static_cast<std::uint16_t>(43000 + 100 * index + 99);
  (void)count;
  return s;
}

bool bindingWorks(bool tcp, const wire::SocketAddress& server) {
  auto fd = test::connectedSocket(tcp, kAnyLoopback, server);
  const auto bound = io::localAddress(fd.get());
  auto response = test::exchange(fd.get(), tcp, client::makeBindingRequest(true));
  if (!response) return false;
  auto view = wire::MessageView::parse(*response);
  if (!view) return false;
  auto result = client::interpretBindingResponse(*view);
  auto* ok = std::get_if<client::BindingSuccess>(&result);
  return ok && ok->mapped == bound;
}

std::uint64_t bindingSuccesses(const io::Worker& w) {
  return w.counters().responses[metrics::idx(metrics::RequestMethod::kBinding)]
                               [metrics::responseCodeIndex(200)].get();
}

}  // namespace

TEST_CASE("a worker answers Binding over UDP and TCP and closes every handle on stop") {
  auto sockets = bindShared(1);
  io::Worker worker(0, settings(), std::move(sockets.per_worker[0]), setup(0, 1));
  worker.start();
  CHECK(bindingWorks(false, sockets.address));
  CHECK(bindingWorks(true, sockets.address));
  worker.stop();
  CHECK(worker.join());
  CHECK(bindingSuccesses(worker) == 2);
}

TEST_CASE("a worker stopped with a connection open and a partial frame pending closes cleanly") {
  auto sockets = bindShared(1);
  io::Worker worker(0, settings(), std::move(sockets.per_worker[0]), setup(0, 1));
  worker.start();
  auto fd = test::connectedSocket(true, kAnyLoopback, sockets.address);
  test::sendRaw(fd.get(), {0x00, 0x01, 0x00, 0x08, 0x21, 0x12});
  CHECK(bindingWorks(true, sockets.address));
  worker.stop();
  worker.stop();  // idempotent
  CHECK(worker.join());
  CHECK(test::closedByPeer(fd.get(), std::chrono::milliseconds(2000)));
}

TEST_CASE("a worker stopped before any traffic closes cleanly") {
  auto sockets = bindShared(1);
  io::Worker worker(0, settings(), std::move(sockets.per_worker[0]), setup(0, 1));
  worker.start();
  worker.stop();
  CHECK(worker.join());
}

TEST_CASE("SO_REUSEPORT spreads flows over every worker on one port") {
  constexpr unsigned kWorkers = 2;
  constexpr int kFlows = 64;
  auto sockets = bindShared(kWorkers);
  std::vector<std::unique_ptr<io::Worker>> workers;
  for (unsigned w = 0; w < kWorkers; ++w) {
    workers.push_back(std::make_unique<io::Worker>(w, settings(), std::move(sockets.per_worker[w]), setup(w, kWorkers)));
    workers.back()->start();
  }
  int answered = 0;
  for (int i = 0; i < kFlows; ++i) answered += bindingWorks(false, sockets.address) ? 1 : 0;
  CHECK(answered == kFlows);
  std::uint64_t total = 0;
  for (auto& w : workers) {
    w->stop();
    CHECK(w->join());
    // 64 flows hashed to 2 workers: each gets some unless the kernel does not shard.
    CHECK(bindingSuccesses(*w) > 0);
    total += bindingSuccesses(*w);
  }
  CHECK(total == kFlows);
}

// The inventory the hand-over to a new process and the kernel fast path build on: every
// socket and allocation of a worker, listed from one place, each socket by a descriptor that
// really is that socket, and nothing that has ended.
TEST_CASE("a worker's inventory lists its listeners, relay sockets, connections and allocations") {
  using Outcome = client::TurnSession::Outcome;
  auto sockets = bindShared(1);
  auto worker_setup = setup(0, 1);
  test::ServicesOptions services;
  services.allow_peers = {"192.0.2.0/24"};
  worker_setup.services = test::makeServices(services);
  io::Worker worker(0, settings(), std::move(sockets.per_worker[0]), std::move(worker_setup));
  worker.start();

  test::TurnTestClient udp(kAnyLoopback, sockets.address, test::kTestUser, test::kTestPassword, false);
  REQUIRE(udp.transact([&] { return udp.session.allocate({}); }) == Outcome::kSuccess);
  const wire::SocketAddress peer{*wire::IpAddress::parse("192.0.2.10"), 5000};
  REQUIRE(udp.transact([&] { return udp.session.createPermission({&peer, 1}); }) == Outcome::kSuccess);
  REQUIRE(udp.transact([&] { return udp.session.channelBind(0x4000, peer); }) == Outcome::kSuccess);
  test::TurnTestClient tcp(kAnyLoopback, sockets.address, test::kTestUser, test::kTestPassword, true);
  REQUIRE(tcp.transact([&] { return tcp.session.allocate({}); }) == Outcome::kSuccess);

  io::WorkerInventory inventory = worker.inventory().get();
  CHECK(inventory.worker == 0);
  REQUIRE(inventory.listeners.size() == 2);
  CHECK(inventory.listeners[0].kind == io::ClientListeners::Kind::kUdp);
  CHECK(inventory.listeners[1].kind == io::ClientListeners::Kind::kTcp);
  for (const auto& listener : inventory.listeners) {
    CHECK(listener.local == sockets.address);
    CHECK(io::localAddress(listener.fd) == listener.local);
  }
  REQUIRE(inventory.relays.size() == 2);
  std::vector<wire::SocketAddress> relayed;
  for (const auto& relay : inventory.relays) {
    CHECK(relay.protocol == core::RelayProtocol::kUdp);
    CHECK(io::localAddress(relay.fd) == relay.local);
    relayed.push_back(relay.local);
  }
  CHECK(std::count(relayed.begin(), relayed.end(), *udp.session.relayed()) == 1);
  CHECK(std::count(relayed.begin(), relayed.end(), *tcp.session.relayed()) == 1);
  REQUIRE(inventory.client_connections.size() == 1);
  const auto& connection = inventory.client_connections[0];
  CHECK(connection.tuple.client == io::localAddress(tcp.fd.get()));
  CHECK(io::localAddress(connection.fd) == sockets.address);
  CHECK_FALSE(connection.piped_to.has_value());
  CHECK(inventory.peer_connections.empty());

  REQUIRE(inventory.allocations.size() == 2);
  for (const auto& a : inventory.allocations) {
    CHECK(a.username == test::kTestUser);
    REQUIRE(a.relays.size() == 1);
    CHECK(a.remaining > std::chrono::minutes(9));
    CHECK(a.remaining <= std::chrono::minutes(10));
    const bool over_udp = a.tuple.transport == core::Transport::kUdp;
    CHECK(a.tuple.client == io::localAddress(over_udp ? udp.fd.get() : tcp.fd.get()));
    CHECK(a.relays[0].relayed == (over_udp ? *udp.session.relayed() : *tcp.session.relayed()));
    CHECK(a.permissions == (over_udp ? 1U : 0U));
    CHECK(a.channels == (over_udp ? 1U : 0U));
  }

  // An allocation that ended is gone from the list, with its relay socket.
  REQUIRE(udp.transact([&] { return udp.session.refresh(0); }) == Outcome::kSuccess);
  inventory = worker.inventory().get();
  REQUIRE(inventory.allocations.size() == 1);
  CHECK(inventory.allocations[0].tuple.transport == core::Transport::kTcp);
  REQUIRE(inventory.relays.size() == 1);
  CHECK(inventory.relays[0].local == *tcp.session.relayed());

  worker.stop();
  CHECK(worker.join());
  CHECK_THROWS(worker.inventory().get());
}
