// STUN Binding against a real `tern serve` process on loopback (RFC 8489 §3), with coturn's
// turnutils_stunclient, with tern's own client code over UDP and TCP, and with bad input.
#include <doctest/doctest.h>
#include <signal.h>

#include <regex>

#include "relay/client/binding.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "support/process.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"

using namespace tern;
using test::TernServer;

namespace {

wire::SocketAddress loopback(std::string_view ip) { return {*wire::IpAddress::parse(ip), 0}; }

// The mapped address our own client learns for a socket bound to `local`.
wire::SocketAddress bindingFrom(bool tcp, const wire::SocketAddress& local,
                                const wire::SocketAddress& server, wire::SocketAddress* bound = nullptr) {
  auto fd = test::connectedSocket(tcp, local, server);
  if (bound) *bound = io::localAddress(fd.get());
  auto response = test::exchange(fd.get(), tcp, client::makeBindingRequest(true));
  REQUIRE(response.has_value());
  auto view = wire::MessageView::parse(*response);
  REQUIRE(view.has_value());
  CHECK(view->fingerprintMatches());
  auto result = client::interpretBindingResponse(*view);
  REQUIRE(std::holds_alternative<client::BindingSuccess>(result));
  return std::get<client::BindingSuccess>(result).mapped;
}

std::vector<std::uint8_t> requestWith(std::uint16_t attribute_type, std::size_t length) {
  wire::TransactionId tid{};
  tid[0] = 0x42;
  tid[11] = static_cast<std::uint8_t>(attribute_type);
  std::vector<std::uint8_t> buf(256);
  wire::MessageBuilder b(buf, wire::Method::kBinding, wire::MessageClass::kRequest, tid);
  b.addRaw(attribute_type, std::vector<std::uint8_t>(length, 0x11));
  b.addFingerprint();
  buf.resize(b.finish()->size());
  return buf;
}

}  // namespace

TEST_CASE("turnutils_stunclient gets its reflexive address from tern over UDP") {
  TernServer server;
  const auto port = std::to_string(server.udp().port);
  auto result = test::runCommand({"/usr/bin/turnutils_stunclient", "-p", port, "127.0.0.1"});
  INFO(result.output);
  CHECK(result.status == 0);
  std::smatch m;
  const std::regex reflexive(R"(UDP reflexive addr: 127\.0\.0\.1:(\d+))");
  REQUIRE(std::regex_search(result.output, m, reflexive));
  const int mapped_port = std::stoi(m[1]);
  CHECK(mapped_port > 0);
  CHECK(mapped_port != server.udp().port);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("tern's own client sees its exact source address over UDP and TCP, IPv4 and IPv6") {
  TernServer server({"--listen", "127.0.0.1:0", "--listen", "[::1]:0"});
  for (bool tcp : {false, true}) {
    for (std::size_t family : {0u, 1u}) {
      CAPTURE(tcp);
      CAPTURE(family);
      const auto target = tcp ? server.tcp(family) : server.udp(family);
      const auto local = loopback(family == 0 ? "127.0.0.1" : "::1");
      wire::SocketAddress bound;
      CHECK(bindingFrom(tcp, local, target, &bound) == bound);
    }
  }
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("tern probe reports the mapped address over UDP and TCP") {
  TernServer server;
  for (const char* transport : {"udp", "tcp"}) {
    std::vector<std::string> argv{test::ternBinary(), "probe", "--server", server.udp().toString()};
    if (std::string_view(transport) == "tcp") argv.push_back("--tcp");
    auto result = test::runCommand(argv);
    INFO(result.output);
    CHECK(result.status == 0);
    CHECK(result.output.find("mapped address 127.0.0.1:") != std::string::npos);
    CHECK(result.output.find(std::string("(") + transport) != std::string::npos);
  }
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("tern probe fails clearly when nothing answers") {
  // Bind a UDP port, never read it: the probe must time out with a message and exit 1.
  auto silent = io::openBoundSocket(io::SocketKind::kUdp, loopback("127.0.0.1"), {});
  const auto address = io::localAddress(silent.get());
  auto result = test::runCommand({test::ternBinary(), "probe", "--server", address.toString(), "--timeout", "1"});
  CHECK(result.status == 1);
  CHECK(result.output.find("no answer from " + address.toString()) != std::string::npos);
}

TEST_CASE("tern probe says so when the port is closed") {
  std::uint16_t closed_port = 0;
  {
    auto fd = io::openBoundSocket(io::SocketKind::kUdp, loopback("127.0.0.1"), {});
    closed_port = io::localAddress(fd.get()).port;
  }
  auto result = test::runCommand({test::ternBinary(), "probe", "--server",
                                  "127.0.0.1:" + std::to_string(closed_port), "--timeout", "2"});
  CHECK(result.status == 1);
  CHECK(result.output.find("port unreachable") != std::string::npos);
}

TEST_CASE("unknown comprehension-required attribute over UDP gets 420 (RFC 8489 §6.3.1)") {
  TernServer server;
  auto fd = test::connectedSocket(false, loopback("127.0.0.1"), server.udp());
  auto response = test::exchange(fd.get(), false, requestWith(0x7F01, 4));
  REQUIRE(response.has_value());
  auto view = wire::MessageView::parse(*response);
  REQUIRE(view.has_value());
  CHECK(view->get<wire::attr::ErrorCode>()->code == 420);
  auto unknown = view->get<wire::attr::UnknownAttributes>();
  REQUIRE(unknown.has_value());
  REQUIRE(unknown->types.size() == 1);
  CHECK(unknown->types[0] == 0x7F01);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("a request with a malformed known attribute over TCP gets 400") {
  TernServer server;
  auto fd = test::connectedSocket(true, loopback("127.0.0.1"), server.tcp());
  auto request = requestWith(0x8022, 4);
  request[20 + 3] = 0xF0;  // SOFTWARE now claims to run past the message
  auto response = test::exchange(fd.get(), true, request);
  REQUIRE(response.has_value());
  auto view = wire::MessageView::parse(*response);
  REQUIRE(view.has_value());
  CHECK(view->get<wire::attr::ErrorCode>()->code == 400);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("garbage loses nothing: other clients are still served") {
  TernServer server;
  auto udp = test::connectedSocket(false, loopback("127.0.0.1"), server.udp());
  for (int i = 0; i < 200; ++i) {
    std::vector<std::uint8_t> junk(static_cast<std::size_t>(1 + i * 7 % 1400), static_cast<std::uint8_t>(i));
    test::sendRaw(udp.get(), junk);
  }
  auto tcp_garbage = test::connectedSocket(true, loopback("127.0.0.1"), server.tcp());
  test::sendRaw(tcp_garbage.get(), std::vector<std::uint8_t>(64, 0xFF));
  CHECK(test::closedByPeer(tcp_garbage.get(), std::chrono::milliseconds(3000)));

  wire::SocketAddress bound;
  CHECK(bindingFrom(false, loopback("127.0.0.1"), server.udp(), &bound) == bound);
  CHECK(bindingFrom(true, loopback("127.0.0.1"), server.tcp(), &bound) == bound);
  CHECK(server.process().running());
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("a TCP client that sends half a frame and stalls is disconnected") {
  TernServer server({"--tcp-idle-timeout", "1"});
  auto fd = test::connectedSocket(true, loopback("127.0.0.1"), server.tcp());
  auto request = client::makeBindingRequest(false);
  request.resize(10);
  test::sendRaw(fd.get(), request);
  CHECK(test::closedByPeer(fd.get(), std::chrono::milliseconds(5000)));
  CHECK(server.process().waitForLine("reason=\"idle timeout\"").has_value());
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("SIGTERM and SIGINT stop the server cleanly, with open connections") {
  for (int signum : {SIGTERM, SIGINT}) {
    TernServer server;
    auto open_connection = test::connectedSocket(true, loopback("127.0.0.1"), server.tcp());
    wire::SocketAddress bound;
    bindingFrom(true, loopback("127.0.0.1"), server.tcp(), &bound);
    CHECK(server.process().stop(signum) == 0);
    CHECK(server.process().output().find("stopped clean=true") != std::string::npos);
  }
}

TEST_CASE("SIGHUP does not kill the server") {
  TernServer server;
  ::kill(server.process().pid(), SIGHUP);
  CHECK(server.process().waitForLine("configuration reloaded").has_value());
  wire::SocketAddress bound;
  CHECK(bindingFrom(false, loopback("127.0.0.1"), server.udp(), &bound) == bound);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("an address another tern already serves is a clear start-up error") {
  TernServer first;
  // SO_REUSEPORT alone would let this second process share the port and split the clients.
  auto result = test::runCommand({test::ternBinary(), "serve", "--listen", first.udp().toString(),
                                  "--relay-ports", "61000-65535"});
  INFO(result.output);
  CHECK(result.status == 1);
  CHECK(result.output.find("already in use by another process") != std::string::npos);
  wire::SocketAddress bound;
  CHECK(bindingFrom(false, loopback("127.0.0.1"), first.udp(), &bound) == bound);
  CHECK(first.process().stop(SIGTERM) == 0);
}
