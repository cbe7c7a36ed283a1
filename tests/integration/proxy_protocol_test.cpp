// tern behind a real HAProxy (Debian's haproxy, mode tcp) that puts a PROXY protocol header
// (HAProxy's doc/proxy-protocol.txt, v2 with send-proxy-v2, v1 with send-proxy) ahead of each
// connection: tern must see the client's own address, not the proxy's, and must accept the
// header only from --proxy-protocol-from sources. The client is 127.0.0.2, HAProxy and its
// connections to tern are 127.0.0.1.
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/socket.h>

#include <string>
#include <thread>

#include "haproxy.hpp"
#include "relay/client/binding.hpp"
#include "relay/wire/builder.hpp"
#include "support/process.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/test_certificates.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using test::TernServer;

namespace {

constexpr const char* kSecret = "proxy-secret";
constexpr const char* kClientHost = "127.0.0.2";
constexpr const char* kPeerHost = "127.0.0.3";

std::string secretFile() {
  static const std::string path = test::temporaryFile(std::string(kSecret) + "\n");
  return path;
}

// tern with a plain TCP and a TLS listener, the metrics port, and HAProxy's address listed.
std::vector<std::string> ternArgs(const char* proxy_from = "127.0.0.1/32") {
  const auto& certs = test::testCertificates();
  return {"--listen",
          "127.0.0.1:0",
          "--tls-listen",
          "127.0.0.1:0",
          "--cert",
          certs.chain,
          "--key",
          certs.key,
          "--relay-ip",
          "127.0.0.1",
          "--allow-peer",
          "127.0.0.0/8",
          "--auth-secret-file",
          secretFile(),
          "--metrics-listen",
          "127.0.0.1:0",
          "--proxy-protocol-from",
          proxy_from};
}

// The mapped address tern answers a Binding over `fd` with; nothing if it does not answer.
std::optional<wire::SocketAddress> mappedOver(
    int fd, std::vector<std::uint8_t> request = client::makeBindingRequest(true)) {
  auto response = test::exchange(fd, true, std::move(request), std::chrono::milliseconds(1500));
  if (!response) return std::nullopt;
  auto view = wire::MessageView::parse(*response);
  REQUIRE(view.has_value());
  auto result = client::interpretBindingResponse(*view);
  REQUIRE(std::holds_alternative<client::BindingSuccess>(result));
  return std::get<client::BindingSuccess>(result).mapped;
}

std::vector<std::uint8_t> bytes(std::string_view text) { return {text.begin(), text.end()}; }

// An unauthenticated Allocate (RFC 8656 §7.2): tern answers it with a 401 when it reads it.
std::vector<std::uint8_t> allocateRequest() {
  wire::TransactionId tid{};
  tid[0] = 0x77;
  std::vector<std::uint8_t> buf(128);
  wire::MessageBuilder b(buf, wire::Method::kAllocate, wire::MessageClass::kRequest, tid);
  b.addRaw(0x0019, std::vector<std::uint8_t>{17, 0, 0, 0});  // REQUESTED-TRANSPORT: UDP
  b.addFingerprint();
  buf.resize(b.finish()->size());
  return buf;
}

std::uint64_t rejected(const TernServer& server, const char* reason) {
  return test::metricValue(
      server, std::string("tern_proxy_protocol_rejected_total{reason=\"") + reason + "\"}");
}

}  // namespace

TEST_CASE(
    "A STUN Binding through HAProxy send-proxy-v2 maps the client's own address, not HAProxy's") {
  TernServer server(ternArgs());
  test::Haproxy haproxy(server.tcp(), "send-proxy-v2");
  auto fd = test::connectedSocket(true, test::socketAddress(kClientHost, 0), haproxy.address());
  const wire::SocketAddress bound = io::localAddress(fd.get());
  CHECK(mappedOver(fd.get()) == bound);
  CHECK(rejected(server, "missing") == 0);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("A STUN Binding through HAProxy send-proxy (PROXY v1) maps the client's own address") {
  TernServer server(ternArgs());
  test::Haproxy haproxy(server.tcp(), "send-proxy");
  auto fd = test::connectedSocket(true, test::socketAddress(kClientHost, 0), haproxy.address());
  const wire::SocketAddress bound = io::localAddress(fd.get());
  CHECK(mappedOver(fd.get()) == bound);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "turnutils_uclient over TCP through HAProxy send-proxy-v2 relays with zero loss, logged as the "
    "client") {
  TernServer server(ternArgs());
  test::Haproxy haproxy(server.tcp(), "send-proxy-v2");
  test::EchoPeer peer(kPeerHost);
  auto r = test::runUclient({"-t",
                             "-L",
                             kClientHost,
                             "-W",
                             kSecret,
                             "-u",
                             "behind-lb",
                             "-e",
                             kPeerHost,
                             "-r",
                             std::to_string(peer.port()),
                             "-p",
                             std::to_string(haproxy.address().port),
                             "-n",
                             "100",
                             "-m",
                             "2",
                             "-l",
                             "161",
                             "-z",
                             "5",
                             "127.0.0.1"});
  INFO(r.output);
  CHECK(r.lost == 0);
  CHECK(r.sent == 200);
  CHECK(r.received == 200);
  CHECK(server.process().stop(SIGTERM) == 0);
  // The usage records name the client, and the proxy's address is no allocation's.
  const std::string log = server.process().output();
  INFO(log);
  // uclient allocates once to probe, then once per call leg.
  CHECK(test::countOf(log, "allocation created") >= 2);
  CHECK(test::countOf(log, "allocation created client=127.0.0.2:") ==
        test::countOf(log, "allocation created"));
  CHECK(test::countOf(log, "allocation ended client=127.0.0.2:") ==
        test::countOf(log, "allocation ended"));
}

TEST_CASE("turnutils_uclient over TLS passed through HAProxy send-proxy-v2 is seen as the client") {
  TernServer server(ternArgs());
  test::Haproxy haproxy(server.tls(), "send-proxy-v2");
  test::EchoPeer peer(kPeerHost);
  auto r = test::runUclient({"-t",       "-S",
                             "-L",       kClientHost,
                             "-W",       kSecret,
                             "-u",       "tls-behind-lb",
                             "-e",       kPeerHost,
                             "-r",       std::to_string(peer.port()),
                             "-p",       std::to_string(haproxy.address().port),
                             "-n",       "100",
                             "-m",       "2",
                             "-l",       "161",
                             "-z",       "5",
                             "127.0.0.1"});
  INFO(r.output);
  CHECK(r.lost == 0);
  CHECK(r.received == 200);
  CHECK(server.process().stop(SIGTERM) == 0);
  const std::string log = server.process().output();
  INFO(log);
  CHECK(test::countOf(log, "allocation created client=127.0.0.2:") >= 2);
  CHECK(test::countOf(log, "allocation created client=127.0.0.2:") ==
        test::countOf(log, "allocation created"));
  CHECK(test::countOf(log, "transport=tls") >= 2);
}

TEST_CASE(
    "A --proxy-protocol-from source without a PROXY header is closed unanswered and counted") {
  TernServer server(ternArgs());
  // Straight from 127.0.0.1, HAProxy's address, but no header: a STUN request first.
  auto fd = test::connectedSocket(true, test::socketAddress("127.0.0.1", 0), server.tcp());
  CHECK_FALSE(mappedOver(fd.get()));
  CHECK(test::closedByPeer(fd.get(), std::chrono::seconds(2)));
  CHECK(rejected(server, "missing") == 1);
  // Silent: closed at the deadline (5 s, checked each second).
  auto silent = test::connectedSocket(true, test::socketAddress("127.0.0.1", 0), server.tls());
  CHECK(test::closedByPeer(silent.get(), std::chrono::seconds(9)));
  CHECK(rejected(server, "timeout") == 1);
  CHECK(server.process().waitForLine("must start with a PROXY protocol header").has_value());
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "A PROXY header from a source not in --proxy-protocol-from is not believed and allocates "
    "nothing") {
  TernServer server(ternArgs());
  // v1: its bytes read as ChannelData framing, so the Allocate behind it is never read.
  auto v1 = test::connectedSocket(true, test::socketAddress(kClientHost, 0), server.tcp());
  test::sendRaw(v1.get(), bytes("PROXY TCP4 203.0.113.7 127.0.0.1 4444 3478\r\n"));
  CHECK_FALSE(test::exchange(v1.get(), true, allocateRequest(), std::chrono::milliseconds(1500)));
  // v2: not STUN framing at all, closed.
  std::vector<std::uint8_t> v2 = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49,
                                  0x54, 0x0A, 0x21, 0x11, 0x00, 0x0C, 203,  0,    113,  7,
                                  127,  0,    0,    1,    0x11, 0x5C, 0x0D, 0x96};
  auto spoofed_v2 = test::connectedSocket(true, test::socketAddress(kClientHost, 0), server.tcp());
  test::sendRaw(spoofed_v2.get(), v2);
  CHECK_FALSE(
      test::exchange(spoofed_v2.get(), true, allocateRequest(), std::chrono::milliseconds(1500)));
  // On the TLS port neither is a ClientHello.
  auto tls = test::connectedSocket(true, test::socketAddress(kClientHost, 0), server.tls());
  test::sendRaw(tls.get(), v2);
  CHECK(test::closedByPeer(tls.get(), std::chrono::seconds(2)));
  // The same client without a header is served as itself.
  auto plain = test::connectedSocket(true, test::socketAddress(kClientHost, 0), server.tcp());
  CHECK(mappedOver(plain.get()) == io::localAddress(plain.get()));
  CHECK(server.process().stop(SIGTERM) == 0);
  const std::string log = server.process().output();
  INFO(log);
  CHECK(log.find("203.0.113.7") == std::string::npos);
  CHECK(log.find("allocation created") == std::string::npos);
}

TEST_CASE(
    "PROXY v1 and v2 headers from a --proxy-protocol-from source set the address STUN reports, "
    "LOCAL keeps it") {
  TernServer server(ternArgs("127.0.0.0/30"));
  const auto request = client::makeBindingRequest(true);
  // The mapped address for a connection from 127.0.0.1 that starts with `header`, sent
  // together with the request in one write (as a proxy that has both sends them) or a byte
  // at a time.
  auto mappedAfter = [&](std::vector<std::uint8_t> header, bool bytewise) {
    auto fd = test::connectedSocket(true, test::socketAddress("127.0.0.1", 0), server.tcp());
    const wire::SocketAddress own = io::localAddress(fd.get());
    if (bytewise) {
      for (std::uint8_t b : header) {
        test::sendRaw(fd.get(), {b});
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
      }
    } else {
      header.insert(header.end(), request.begin(), request.end());
    }
    auto mapped = bytewise ? mappedOver(fd.get(), request) : std::optional<wire::SocketAddress>{};
    if (!bytewise) {
      test::sendRaw(fd.get(), header);
      auto response = test::readStreamMessage(fd.get(), std::chrono::milliseconds(1500));
      REQUIRE(response.has_value());
      auto view = wire::MessageView::parse(*response);
      REQUIRE(view.has_value());
      auto result = client::interpretBindingResponse(*view);
      REQUIRE(std::holds_alternative<client::BindingSuccess>(result));
      mapped = std::get<client::BindingSuccess>(result).mapped;
    }
    return std::make_pair(mapped, own);
  };
  CHECK(mappedAfter(bytes("PROXY TCP4 203.0.113.7 127.0.0.1 4444 3478\r\n"), false).first ==
        test::socketAddress("203.0.113.7", 4444));
  CHECK(mappedAfter(bytes("PROXY TCP6 2001:db8::7 ::1 4445 3478\r\n"), true).first ==
        test::socketAddress("2001:db8::7", 4445));
  // v2 LOCAL (a health check): the connection's own address stands.
  const std::vector<std::uint8_t> local = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51,
                                           0x55, 0x49, 0x54, 0x0A, 0x20, 0x00, 0x00, 0x00};
  const auto [mapped, own] = mappedAfter(local, false);
  CHECK(mapped == own);
  CHECK(server.process().stop(SIGTERM) == 0);
  CHECK(server.process().output().find("2001:db8::7") != std::string::npos);
}

TEST_CASE("Through HAProxy, --max-tcp-connections-per-ip counts each client, not the proxy") {
  auto args = ternArgs();
  for (const char* a : {"--max-tcp-connections-per-ip", "1"}) args.push_back(a);
  TernServer server(args);
  test::Haproxy haproxy(server.tcp(), "send-proxy-v2");
  auto first = test::connectedSocket(true, test::socketAddress(kClientHost, 0), haproxy.address());
  CHECK(mappedOver(first.get()) == io::localAddress(first.get()));
  // The same client again: over its limit, reset once its header names it.
  auto second = test::connectedSocket(true, test::socketAddress(kClientHost, 0), haproxy.address());
  CHECK_FALSE(mappedOver(second.get()));
  // Another client through the same proxy is served: the proxy's address holds no place.
  auto other = test::connectedSocket(true, test::socketAddress(kPeerHost, 0), haproxy.address());
  CHECK(mappedOver(other.get()) == io::localAddress(other.get()));
  CHECK(test::metricValue(server, "tern_tcp_connections_refused_total{limit=\"per_ip\"}") == 1);
  CHECK(server.process().stop(SIGTERM) == 0);
}
