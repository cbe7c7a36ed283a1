// DTLS sessions that stay with the old process of an upgrade (relay/io/dtls_forwarding.hpp):
// the frame on the forwarding socket pair, the new process's table of addresses to pass on,
// and the bundle's DTLS section that carries the sessions and the socket pair's end.
#include "relay/io/dtls_forwarding.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include "relay/io/upgrade_bundle.hpp"

using namespace tern;

namespace {

wire::SocketAddress addr(const char* text) { return *wire::SocketAddress::parse(text); }

std::vector<std::uint8_t> frameOf(const io::ForwardHeader& header, std::vector<std::uint8_t> payload) {
  std::array<std::uint8_t, io::kMaxForwardHeader> head{};
  const std::size_t n = io::encodeForwardHeader(header, head);
  std::vector<std::uint8_t> frame(head.begin(), head.begin() + static_cast<std::ptrdiff_t>(n));
  frame.insert(frame.end(), payload.begin(), payload.end());
  return frame;
}

ino_t inodeOf(int fd) {
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  return st.st_ino;
}

}  // namespace

TEST_CASE("A forwarded DTLS datagram's frame carries its listener, source and bytes, IPv4 and IPv6") {
  for (const char* client : {"192.0.2.7:40000", "[2001:db8::7]:40001"}) {
    const io::ForwardHeader header{io::ForwardKind::kDatagram, {3, addr(client)}};
    const auto frame = frameOf(header, {0x17, 0xfe, 0xfd, 0x00});
    const auto decoded = io::decodeForwardFrame(frame);
    REQUIRE(decoded.has_value());
    CHECK(decoded->header.kind == io::ForwardKind::kDatagram);
    CHECK(decoded->header.session == io::DtlsSessionRef{3, addr(client)});
    CHECK(std::vector<std::uint8_t>(decoded->payload.begin(), decoded->payload.end()) ==
          std::vector<std::uint8_t>{0x17, 0xfe, 0xfd, 0x00});
  }
  const auto forget = io::decodeForwardFrame(frameOf({io::ForwardKind::kForget, {1, addr("[::1]:9")}}, {}));
  REQUIRE(forget.has_value());
  CHECK(forget->header.kind == io::ForwardKind::kForget);
  CHECK(forget->payload.empty());
}

TEST_CASE("A forwarding frame that is cut short, of an unknown kind, or a forget with bytes is refused") {
  const auto frame = frameOf({io::ForwardKind::kDatagram, {0, addr("[2001:db8::7]:40001")}}, {0x16});
  for (std::size_t cut = 0; cut < frame.size(); ++cut) {
    CHECK_FALSE(io::decodeForwardFrame(wire::Bytes(frame.data(), cut)).has_value());
  }
  auto unknown = frame;
  unknown[0] = 9;
  CHECK_FALSE(io::decodeForwardFrame(unknown).has_value());
  auto family = frame;
  family[2] = 5;
  CHECK_FALSE(io::decodeForwardFrame(family).has_value());
  CHECK_FALSE(io::decodeForwardFrame(frameOf({io::ForwardKind::kForget, {0, addr("192.0.2.1:1")}}, {1})).has_value());
}

TEST_CASE("The forwarding table finds exactly the old process's sessions, per listener socket, and forgets them") {
  io::ForwardTable table;
  table.add({1, addr("192.0.2.1:5000"), 0, 0});
  table.add({0, addr("192.0.2.1:5000"), 0, 1});
  table.add({1, addr("[2001:db8::1]:5000"), 0, 0});
  table.add({2, addr("192.0.2.9:7000"), 1, 1});
  table.seal();
  const auto* e = table.find(1, addr("192.0.2.1:5000"));
  REQUIRE(e != nullptr);
  CHECK(e->channel == 0);
  REQUIRE(table.find(0, addr("192.0.2.1:5000")) != nullptr);
  CHECK(table.find(0, addr("192.0.2.1:5000"))->channel == 1);
  // Another port, another listener socket: the new process's.
  CHECK(table.find(1, addr("192.0.2.1:5001")) == nullptr);
  CHECK(table.find(3, addr("192.0.2.1:5000")) == nullptr);
  // The old process says a session ended: only that channel's entry goes.
  CHECK_FALSE(table.forget(1, {0, addr("[2001:db8::1]:5000")}));
  CHECK(table.forget(0, {0, addr("[2001:db8::1]:5000")}));
  CHECK(table.find(1, addr("[2001:db8::1]:5000")) == nullptr);
  CHECK(table.find(1, addr("192.0.2.1:5000")) != nullptr);
  // Its socket pair closed: every session it carried is the new process's.
  CHECK(table.forgetChannel(1) == 2);
  CHECK(table.find(2, addr("192.0.2.9:7000")) == nullptr);
  CHECK(table.size() == 1);
}

TEST_CASE("A bundle's DTLS section brings the sessions that stay and the socket pair's end, after everything else") {
  int pipes[2][2];
  for (auto& p : pipes) REQUIRE(::pipe(p) == 0);
  io::OutgoingBundle b;
  b.worker = 0;
  b.listeners = {{io::ClientListeners::Kind::kDtls, pipes[0][0]}};
  b.dtls_sessions = {{0, addr("192.0.2.1:5000")}, {0, addr("[2001:db8::1]:6000")}};
  b.dtls_channel = pipes[1][0];
  const io::EncodedBundle encoded = io::encodeBundle(b);
  CHECK(encoded.fds == std::vector<int>{pipes[0][0], pipes[1][0]});
  std::vector<io::FileDescriptor> fds;
  for (int fd : encoded.fds) fds.emplace_back(::dup(fd));
  auto decoded = io::decodeBundle(encoded.payload, std::move(fds));
  REQUIRE(decoded.has_value());
  REQUIRE(decoded->sockets.dtls_forward.size() == 1);
  const io::DtlsForward& f = decoded->sockets.dtls_forward[0];
  CHECK(inodeOf(f.channel.get()) == inodeOf(pipes[1][0]));
  REQUIRE(f.sessions.size() == 2);
  CHECK(f.sessions[1].socket == 0);
  CHECK(f.sessions[1].session == io::DtlsSessionRef{0, addr("[2001:db8::1]:6000")});

  // A session on a listener the bundle does not carry is refused.
  b.dtls_sessions = {{1, addr("192.0.2.1:5000")}};
  const io::EncodedBundle bad = io::encodeBundle(b);
  std::vector<io::FileDescriptor> more;
  for (int fd : bad.fds) more.emplace_back(::dup(fd));
  CHECK_FALSE(io::decodeBundle(bad.payload, std::move(more)).has_value());

  // Without sessions, no section and no descriptor: the bundle ends as before.
  b.dtls_sessions.clear();
  CHECK(io::encodeBundle(b).fds.size() == 1);
  for (auto& p : pipes) {
    ::close(p[0]);
    ::close(p[1]);
  }
}
