// io::UdpListener with IP_RECVERR on a real libuv loop on loopback (RFC 8656 §11.5): ICMP
// errors are read from the error queue and reported, a burst larger than one wakeup's budget
// is reported whole, the socket keeps receiving after libuv stopped its poll handle on
// POLLERR, and the send that Linux fails with a pending ICMP error is made again. Ends with
// every handle closed (uv_loop_close == 0).
#include <doctest/doctest.h>
#include <uv.h>

#include <chrono>
#include <vector>

#include "relay/io/io_batch.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/io/udp_listener.hpp"
#include "support/stun_socket.hpp"

using namespace tern;
using namespace std::chrono_literals;

namespace {

const wire::IpAddress kRelayHost = *wire::IpAddress::parse("127.0.0.1");
const wire::IpAddress kPeerHost = *wire::IpAddress::parse("127.0.0.2");

class Recorder final : public io::DatagramHandler {
 public:
  void onDatagram(io::UdpListener&, const wire::SocketAddress& from,
                  wire::Bytes data) noexcept override {
    datagrams.push_back({from, {data.begin(), data.end()}});
  }
  void onIcmpError(io::UdpListener&, const io::IcmpError& error) noexcept override {
    errors.push_back(error);
  }

  struct Datagram {
    wire::SocketAddress from;
    std::vector<std::uint8_t> bytes;
  };
  std::vector<Datagram> datagrams;
  std::vector<io::IcmpError> errors;
};

wire::SocketAddress closedUdpPort() {
  io::SocketOptions options;
  options.reuse_port = false;
  const io::FileDescriptor fd = io::openBoundSocket(io::SocketKind::kUdp, {kPeerHost, 0}, options);
  return io::localAddress(fd.get());
}

// A relay-like socket (receive_errors on) on its own loop; closes everything on destruction
// and checks that nothing was left open.
struct Fixture {
  Fixture() {
    REQUIRE(uv_loop_init(&loop) == 0);
    io::SocketOptions options;
    options.reuse_port = false;
    options.receive_errors = true;
    socket = std::make_unique<io::UdpListener>(
        &loop, io::openBoundSocket(io::SocketKind::kUdp, {kRelayHost, 0}, options), recorder, batch,
        7, 64);
  }
  ~Fixture() {
    socket.reset();
    uv_run(&loop, UV_RUN_DEFAULT);  // runs the close callbacks
    CHECK(uv_loop_close(&loop) == 0);
  }
  // Runs the loop until `done` or 2 s pass.
  template <class Done>
  bool runUntil(Done done) {
    const auto deadline = std::chrono::steady_clock::now() + 2s;
    while (!done() && std::chrono::steady_clock::now() < deadline) uv_run(&loop, UV_RUN_NOWAIT);
    return done();
  }

  uv_loop_t loop{};
  io::IoBatch batch;
  Recorder recorder;
  std::unique_ptr<io::UdpListener> socket;
};

bool send(io::UdpListener& socket, const wire::SocketAddress& to, std::vector<std::uint8_t> bytes) {
  return socket.send(to, wire::Bytes{bytes.data(), bytes.size()});
}

}  // namespace

TEST_CASE(
    "a datagram to a closed port is reported as ICMP port unreachable, and the socket keeps "
    "receiving") {
  Fixture f;
  const auto closed = closedUdpPort();
  REQUIRE(send(*f.socket, closed, {'x'}));
  REQUIRE(f.runUntil([&] { return !f.recorder.errors.empty(); }));
  const io::IcmpError& e = f.recorder.errors.front();
  CHECK(e.v4);
  CHECK(e.peer == closed);
  CHECK(e.type == 3);  // destination unreachable
  CHECK(e.code == 3);  // port unreachable
  REQUIRE(e.reporter.has_value());
  CHECK(*e.reporter == kPeerHost);
  // libuv stopped the poll handle on POLLERR; the socket must have started it again.
  auto peer = test::connectedSocket(false, {kPeerHost, 0}, f.socket->localAddress());
  test::sendRaw(peer.get(), {'h', 'i'});
  REQUIRE(f.runUntil([&] { return !f.recorder.datagrams.empty(); }));
  CHECK(f.recorder.datagrams.front().bytes == std::vector<std::uint8_t>{'h', 'i'});
  CHECK(f.recorder.errors.size() == 1);
}

TEST_CASE("the send Linux fails with a pending ICMP error is made again, not lost") {
  Fixture f;
  const auto closed = closedUdpPort();
  auto peer = test::connectedSocket(false, {kPeerHost, 0}, f.socket->localAddress());
  const auto live = io::localAddress(peer.get());
  // Outside a round both go out at once. On loopback the ICMP error is back before the second
  // send, which Linux fails with ECONNREFUSED (and so clears the error).
  REQUIRE(send(*f.socket, closed, {'x'}));
  CHECK(send(*f.socket, live, {'y'}));
  CHECK(test::receiveDatagram(peer.get(), 1000ms) == std::vector<std::uint8_t>{'y'});
  // The error itself is still queued and reported.
  REQUIRE(f.runUntil([&] { return !f.recorder.errors.empty(); }));
  CHECK(f.recorder.errors.front().peer == closed);
}

TEST_CASE("a burst of ICMP errors larger than one wakeup's budget is reported whole") {
  Fixture f;
  const auto closed = closedUdpPort();
  constexpr std::size_t kBurst = 30;  // more than UdpListener's 16 errors per wakeup (and under
  // Linux's burst of 50 ICMP messages)
  for (std::size_t i = 0; i < kBurst; ++i) {
    // Sends right behind an error may fail once and go again; none is refused for good.
    REQUIRE(send(*f.socket, closed, {static_cast<std::uint8_t>(i)}));
  }
  CHECK(f.runUntil([&] { return f.recorder.errors.size() == kBurst; }));
  CHECK(f.recorder.errors.size() == kBurst);
  auto peer = test::connectedSocket(false, {kPeerHost, 0}, f.socket->localAddress());
  test::sendRaw(peer.get(), {'o', 'k'});
  CHECK(f.runUntil([&] { return !f.recorder.datagrams.empty(); }));
}
