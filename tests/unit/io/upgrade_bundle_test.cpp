// A worker's bundle for an upgrade (relay/io/upgrade_bundle.hpp): its payload names each
// descriptor's role, and decoding gives each back in its place; a bundle that does not match
// itself or its descriptors is refused and leaks no descriptor.
#include "relay/io/upgrade_bundle.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

using namespace tern;

namespace {

core::AllocationSnapshot snapshotOf(const char* user, std::size_t relays) {
  core::AllocationSnapshot s;
  s.worker = 1;
  s.tuple = {core::Transport::kUdp, *wire::SocketAddress::parse("192.0.2.1:5000"),
             *wire::SocketAddress::parse("127.0.0.1:3478")};
  s.username = user;
  s.key = {1, 2, 3};
  s.expires_in_ns = 600'000'000'000;
  for (std::size_t i = 0; i < relays; ++i) {
    s.relays.push_back({static_cast<core::RelayId>(i + 7), *wire::SocketAddress::parse(i == 0 ? "127.0.0.1:50000" : "[::1]:50002")});
  }
  return s;
}

// What the kernel does to descriptors sent over SCM_RIGHTS: new numbers, same files.
std::vector<io::FileDescriptor> duplicates(const std::vector<int>& fds) {
  std::vector<io::FileDescriptor> out;
  for (int fd : fds) out.emplace_back(::dup(fd));
  return out;
}

ino_t inodeOf(int fd) {
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  return st.st_ino;
}

std::size_t openDescriptors() {
  return static_cast<std::size_t>(std::distance(std::filesystem::directory_iterator("/proc/self/fd"),
                                                std::filesystem::directory_iterator{}));
}

struct Pipes {
  Pipes() {
    for (auto& p : fds) REQUIRE(::pipe(p.data()) == 0);
  }
  ~Pipes() {
    for (auto& p : fds) {
      ::close(p[0]);
      ::close(p[1]);
    }
  }
  std::array<std::array<int, 2>, 5> fds{};
  int at(std::size_t i) const { return fds[i][0]; }
};

io::OutgoingBundle bundleOf(const Pipes& p) {
  io::OutgoingBundle b;
  b.worker = 1;
  b.listeners = {{io::ClientListeners::Kind::kUdp, p.at(0)}, {io::ClientListeners::Kind::kTls, p.at(1)}};
  b.allocations = {snapshotOf("alice", 1), snapshotOf("bob", 2)};
  b.relay_fds = {{p.at(2)}, {p.at(3), p.at(4)}};
  b.reservations = {{0x0102030405060708, *wire::SocketAddress::parse("127.0.0.1:50001"), std::chrono::milliseconds(29'500)},
                    {0xfedcba9876543210, *wire::SocketAddress::parse("[::1]:50003"), std::chrono::milliseconds(1)}};
  return b;
}

}  // namespace

TEST_CASE("A worker's bundle decodes with every descriptor in its place") {
  Pipes p;
  const io::EncodedBundle encoded = io::encodeBundle(bundleOf(p));
  CHECK(encoded.fds == std::vector<int>{p.at(0), p.at(1), p.at(2), p.at(3), p.at(4)});
  auto decoded = io::decodeBundle(encoded.payload, duplicates(encoded.fds));
  REQUIRE(decoded.has_value());
  CHECK(decoded->worker == 1);
  const io::WorkerSockets& s = decoded->sockets;
  REQUIRE(s.udp.size() == 1);
  REQUIRE(s.tls.size() == 1);
  CHECK(s.tcp.empty());
  CHECK(s.dtls.empty());
  CHECK(inodeOf(s.udp[0].get()) == inodeOf(p.at(0)));
  CHECK(inodeOf(s.tls[0].get()) == inodeOf(p.at(1)));
  REQUIRE(s.restored.size() == 2);
  CHECK(s.restored[0].snapshot.username == "alice");
  CHECK(s.restored[1].snapshot.username == "bob");
  REQUIRE(s.restored[1].relay_sockets.size() == 2);
  CHECK(inodeOf(s.restored[0].relay_sockets[0].get()) == inodeOf(p.at(2)));
  CHECK(inodeOf(s.restored[1].relay_sockets[1].get()) == inodeOf(p.at(4)));
}

TEST_CASE("A bundle cut short, or with descriptors missing or left over, is refused without a leak") {
  Pipes p;
  const io::EncodedBundle encoded = io::encodeBundle(bundleOf(p));
  const std::size_t before = openDescriptors();
  for (std::size_t cut = 0; cut < encoded.payload.size(); ++cut) {
    const wire::Bytes prefix(encoded.payload.data(), cut);
    CHECK_FALSE(io::decodeBundle(prefix, duplicates(encoded.fds)).has_value());
  }
  std::vector<int> fewer = encoded.fds;
  fewer.pop_back();
  CHECK_FALSE(io::decodeBundle(encoded.payload, duplicates(fewer)).has_value());
  std::vector<int> more = encoded.fds;
  more.push_back(p.at(0));
  const auto extra = io::decodeBundle(encoded.payload, duplicates(more));
  REQUIRE_FALSE(extra.has_value());
  CHECK(extra.error() == "descriptors left over");
  std::vector<std::uint8_t> trailing = encoded.payload;
  trailing.push_back(0);
  CHECK_FALSE(io::decodeBundle(trailing, duplicates(encoded.fds)).has_value());
  CHECK(openDescriptors() == before);
}

TEST_CASE("Unclaimed EVEN-PORT reservations travel in the bundle: token, address, hold left (RFC 8656 §7.2)") {
  Pipes p;
  const io::EncodedBundle encoded = io::encodeBundle(bundleOf(p));
  // They hold no socket: the descriptors are the listeners' and relays' alone.
  CHECK(encoded.fds.size() == 5);
  auto decoded = io::decodeBundle(encoded.payload, duplicates(encoded.fds));
  REQUIRE(decoded.has_value());
  const auto& r = decoded->sockets.reservations;
  REQUIRE(r.size() == 2);
  CHECK(r[0].token == 0x0102030405060708);
  CHECK(r[0].address.toString() == "127.0.0.1:50001");
  CHECK(r[0].remaining == std::chrono::milliseconds(29'500));
  CHECK(r[1].token == 0xfedcba9876543210);
  CHECK(r[1].address.toString() == "[::1]:50003");
  CHECK(r[1].remaining == std::chrono::milliseconds(1));
}

TEST_CASE("A handed-over reservation without a token, or held past 30 seconds, is refused") {
  Pipes p;
  io::OutgoingBundle b = bundleOf(p);
  const auto address = *wire::SocketAddress::parse("127.0.0.1:50001");
  b.reservations = {{0, address, std::chrono::milliseconds(1000)}};
  const io::EncodedBundle zero = io::encodeBundle(b);
  const auto refused = io::decodeBundle(zero.payload, duplicates(zero.fds));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error() == "a reservation without a token");
  // The encoder clamps to 30 s; a payload that says more was not written by tern.
  b.reservations = {{7, address, std::chrono::milliseconds(30'000)}};
  io::EncodedBundle longer = io::encodeBundle(b);
  // The hold is the reservations section's last byte; the RFC 6062 count (4 bytes) follows.
  std::uint8_t& hold = longer.payload[longer.payload.size() - 5];
  hold = static_cast<std::uint8_t>(hold + 1);
  const auto too_long = io::decodeBundle(longer.payload, duplicates(longer.fds));
  REQUIRE_FALSE(too_long.has_value());
  CHECK(too_long.error() == "a reservation held past 30 seconds");
}

TEST_CASE(
    "RFC 6062 connections cross after the rest of the bundle, a bound one with its data "
    "connection") {
  Pipes p;
  Pipes q;
  io::OutgoingBundle b = bundleOf(p);
  core::TcpConnectionSnapshot waiting;
  waiting.id = 0x01000007;
  waiting.control = {core::Transport::kTcp, *wire::SocketAddress::parse("192.0.2.1:5000"),
                     *wire::SocketAddress::parse("127.0.0.1:3478")};
  waiting.peer = *wire::SocketAddress::parse("192.0.2.9:80");
  waiting.deadline_in_ns = 20'000'000'000;
  core::TcpConnectionSnapshot bound = waiting;
  bound.id = 0x01000008;
  bound.bound = true;
  const core::FiveTuple data{core::Transport::kTcp, *wire::SocketAddress::parse("192.0.2.1:5002"),
                             *wire::SocketAddress::parse("127.0.0.1:3478")};
  b.peer_connections = {{waiting, q.at(0), std::nullopt, -1},
                        {bound, q.at(1), core::ConnectionSnapshot{data, {}}, q.at(2)}};
  const io::EncodedBundle encoded = io::encodeBundle(b);
  CHECK(encoded.fds ==
        std::vector<int>{p.at(0), p.at(1), p.at(2), p.at(3), p.at(4), q.at(0), q.at(1), q.at(2)});
  auto decoded = io::decodeBundle(encoded.payload, duplicates(encoded.fds));
  REQUIRE(decoded.has_value());
  const auto& peers = decoded->sockets.peer_connections;
  REQUIRE(peers.size() == 2);
  CHECK(peers[0].snapshot == waiting);
  CHECK_FALSE(peers[0].data.has_value());
  CHECK(inodeOf(peers[0].peer_fd.get()) == inodeOf(q.at(0)));
  CHECK(peers[1].snapshot == bound);
  REQUIRE(peers[1].data.has_value());
  CHECK(peers[1].data->tuple == data);
  CHECK(inodeOf(peers[1].peer_fd.get()) == inodeOf(q.at(1)));
  CHECK(inodeOf(peers[1].data_fd.get()) == inodeOf(q.at(2)));

  // Cut anywhere, short of a descriptor, or a bound connection without its data connection:
  // refused, and every received descriptor closed.
  const std::size_t before = openDescriptors();
  for (std::size_t cut = 0; cut < encoded.payload.size(); ++cut) {
    CHECK_FALSE(io::decodeBundle(wire::Bytes(encoded.payload.data(), cut), duplicates(encoded.fds))
                    .has_value());
  }
  std::vector<int> fewer = encoded.fds;
  fewer.pop_back();
  CHECK_FALSE(io::decodeBundle(encoded.payload, duplicates(fewer)).has_value());
  b.peer_connections[1].data.reset();
  const io::EncodedBundle lying = io::encodeBundle(b);
  const auto refused = io::decodeBundle(lying.payload, duplicates(lying.fds));
  REQUIRE_FALSE(refused.has_value());
  CHECK(refused.error().find("bound without a data connection") != std::string::npos);
  CHECK(openDescriptors() == before);
}
