// The worker's output batch (relay/io/io_batch.hpp) against a real `tern serve`: frames a TCP
// client writes in one go leave for their peers in sendmmsg calls with UDP segmentation
// offload trains, and a peer's burst reaches UDP and TCP clients coalesced. Whatever the
// batching does, every datagram must arrive whole, alone, in order, at the right peer.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/socket.h>

#include <ctime>
#include <utility>
#include <vector>

#include "auth/rest_credentials.hpp"
#include "relay/client/turn_session.hpp"
#include "relay/wire/channel_data.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/turn_test_client.hpp"

using namespace tern;
using Outcome = client::TurnSession::Outcome;

namespace {

constexpr const char* kSecret = "batch-secret";
const wire::SocketAddress kClientAddress{*wire::IpAddress::parse("127.0.0.1"), 0};
const wire::SocketAddress kPeerAddress{*wire::IpAddress::parse("127.0.0.2"), 0};

test::TernServer startServer(const char* segmentation = "true") {
  return test::TernServer({"--realm", "tern.test", "--auth-secret", kSecret, "--relay-ip", "127.0.0.1",
                           "--relay-ports", "62000-62999", "--allow-peer", "127.0.0.0/8",
                           "--udp-segmentation", segmentation});
}

test::TurnTestClient allocatedClient(const test::TernServer& server, bool tcp) {
  const auto credential = auth::mintRestCredential(kSecret, "batch", std::time(nullptr), 600);
  test::TurnTestClient turn(kClientAddress, tcp ? server.tcp() : server.udp(), credential.username,
                            credential.password, tcp);
  REQUIRE(turn.transact([&] { return turn.session.allocate({}); }) == Outcome::kSuccess);
  return turn;
}

// Payload number `index` of `size` bytes: the index, then a byte pattern derived from it.
std::vector<std::uint8_t> payload(std::size_t index, std::size_t size) {
  std::vector<std::uint8_t> p(size, static_cast<std::uint8_t>(0xA0 ^ index));
  if (size > 0) p[0] = static_cast<std::uint8_t>(index >> 8);
  if (size > 1) p[1] = static_cast<std::uint8_t>(index);
  return p;
}

using test::receiveDatagram;

struct Frame {
  std::uint16_t channel;
  std::size_t size;
};

// Trains of equal sizes, a shorter datagram ending one, sizes above the offload's segment
// limit, and two peers interleaved.
std::vector<Frame> mixedFrames(std::uint16_t a, std::uint16_t b) {
  std::vector<Frame> frames;
  const auto add = [&](std::uint16_t channel, std::size_t size, int count) {
    for (int i = 0; i < count; ++i) frames.push_back({channel, size});
  };
  add(a, 200, 30);
  add(a, 120, 1);
  add(a, 200, 10);
  add(a, 1300, 5);
  add(a, 1500, 3);
  for (int i = 0; i < 10; ++i) {
    add(a, 64, 1);
    add(b, 64, 1);
  }
  add(b, 80, 20);
  add(a, 1, 3);
  return frames;
}

}  // namespace

TEST_CASE("frames a TCP client writes at once reach their peers as separate datagrams, whole and in order") {
  // With segmentation offload (the default) and without (--udp-segmentation false).
  for (const char* segmentation : {"true", "false"}) {
    INFO("--udp-segmentation " << segmentation);
    auto server = startServer(segmentation);
    auto turn = allocatedClient(server, true);
    io::FileDescriptor peers[] = {test::connectedSocket(false, kPeerAddress, *turn.session.relayed()),
                                  test::connectedSocket(false, kPeerAddress, *turn.session.relayed())};
    const std::uint16_t channels[] = {0x4000, 0x4001};
    for (int k = 0; k < 2; ++k) {
      REQUIRE(turn.transact([&] {
        return turn.session.channelBind(channels[k], io::localAddress(peers[k].get()));
      }) == Outcome::kSuccess);
    }
    const auto frames = mixedFrames(channels[0], channels[1]);
    std::vector<std::uint8_t> stream;
    std::vector<std::pair<std::size_t, std::size_t>> expected[2];  // (index, size) per peer
    for (std::size_t i = 0; i < frames.size(); ++i) {
      const auto framed = client::TurnSession::channelData(frames[i].channel, payload(i, frames[i].size), true);
      stream.insert(stream.end(), framed.begin(), framed.end());
      expected[frames[i].channel == channels[0] ? 0 : 1].emplace_back(i, frames[i].size);
    }
    test::sendRaw(turn.fd.get(), stream);  // one write: tern reads the frames in one go

    for (int k = 0; k < 2; ++k) {
      for (const auto& [index, size] : expected[k]) {
        const auto datagram = receiveDatagram(peers[k].get(), std::chrono::milliseconds(2000));
        INFO("peer " << k << ", frame " << index);
        REQUIRE(datagram.size() == size);
        CHECK(datagram == payload(index, size));
      }
      CHECK(receiveDatagram(peers[k].get(), std::chrono::milliseconds(100)).empty());
    }
    CHECK(server.process().stop(SIGTERM) == 0);
  }
}

TEST_CASE("a peer's burst reaches a UDP client and a TCP client message by message, in order") {
  auto server = startServer();
  for (const bool tcp : {false, true}) {
    INFO((tcp ? "TCP client" : "UDP client"));
    auto turn = allocatedClient(server, tcp);
    auto peer = test::connectedSocket(false, kPeerAddress, *turn.session.relayed());
    REQUIRE(turn.transact([&] { return turn.session.channelBind(0x4000, io::localAddress(peer.get())); }) ==
            Outcome::kSuccess);
    std::vector<std::size_t> sizes(40, 300);
    sizes.push_back(100);
    sizes.insert(sizes.end(), 10, 1000);
    sizes.insert(sizes.end(), 5, 1450);
    for (std::size_t i = 0; i < sizes.size(); ++i) test::sendRaw(peer.get(), payload(i, sizes[i]));

    for (std::size_t i = 0; i < sizes.size(); ++i) {
      INFO("datagram " << i);
      std::vector<std::uint8_t> message;
      if (tcp) {
        // Over TCP every ChannelData message is padded to 4 bytes (RFC 8656 §12.5).
        const std::size_t padded = (wire::kChannelDataHeaderSize + sizes[i] + 3) & ~std::size_t{3};
        message = test::readBytes(turn.fd.get(), padded, std::chrono::milliseconds(2000));
        REQUIRE(message.size() == padded);
        message.resize(wire::kChannelDataHeaderSize + sizes[i]);
      } else {
        message = receiveDatagram(turn.fd.get(), std::chrono::milliseconds(2000));
      }
      const auto view = wire::ChannelDataView::parse(message);
      REQUIRE(view.has_value());
      CHECK(view->channel == 0x4000);
      CHECK(std::vector<std::uint8_t>(view->data.begin(), view->data.end()) == payload(i, sizes[i]));
    }
  }
  CHECK(server.process().stop(SIGTERM) == 0);
}
