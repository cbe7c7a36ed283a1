// Floods against a real `tern serve` (DESIGN.md §4): while a well-behaved caller relays a
// voice-like stream (160 bytes at 50 packets/s through a channel to an echo peer and back),
// another host floods, bounded in count and time: Allocates without credentials from many
// ports, signed Allocates past the per-user quota, malformed input of every class, TCP
// connections past the per-address limit, and spoofable DTLS ClientHellos. The call must
// lose under 1 %, its allocation must keep working, and tern's metrics must show what it
// refused. The flooder has an address of its own (127.0.0.3), as it would on the internet.
#include <doctest/doctest.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <set>
#include <thread>

#include "auth/message_integrity.hpp"
#include "auth/rest_credentials.hpp"
#include "relay/app/http_request.hpp"
#include "relay/io/tls.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "relay/wire/channel_data.hpp"
#include "relay/wire/stream_framer.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/test_certificates.hpp"
#include "support/turn_test_client.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using namespace std::chrono_literals;
using test::TernServer;
using Clock = std::chrono::steady_clock;
using Outcome = client::TurnSession::Outcome;

namespace {

constexpr const char* kSecret = "abuse-secret";
constexpr const char* kPeerHost = "127.0.0.2";
constexpr const char* kCallerHost = "127.0.0.1";
constexpr const char* kFloodHost = "127.0.0.3";

std::string secretFile() {
  static const std::string path = test::temporaryFile(std::string(kSecret) + "\n");
  return path;
}

auth::RestCredential credential(const std::string& user) {
  return auth::mintRestCredential(kSecret, user, static_cast<std::int64_t>(std::time(nullptr)),
                                  3600);
}

std::vector<std::string> relayArgs(std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--realm",      "tern.test",   "--auth-secret-file", secretFile(),
                                "--relay-ip",   "127.0.0.1",   "--relay-ports",      "64500-64999",
                                "--allow-peer", "127.0.0.0/8", "--metrics-listen",   "127.0.0.1:0"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

std::string metricsOf(TernServer& server) {
  auto r = app::httpRequest(*server.http(), "GET", "/metrics", 5s);
  REQUIRE(r.ok());
  REQUIRE(r.status == 200);
  return r.body;
}

// The value of the sample line that starts with `series` (name and labels), or 0.
double sample(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return 0;
  return std::stod(text.substr(at + series.size() + 2));
}

double dropped(const std::string& text, const char* reason) {
  return sample(text, std::string("tern_dropped_packets_total{reason=\"") + reason + "\"}");
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

wire::SocketAddress on(const char* host, std::uint16_t port = 0) {
  return test::socketAddress(host, port);
}

// Sends the i-th of a flood no earlier than `rate` a second allows: bounded in time as well
// as count, so the flood measures tern's limits, not the loopback's buffers.
class Pacer {
 public:
  explicit Pacer(double per_second) : per_second_(per_second) {}
  void wait(std::size_t i) const {
    std::this_thread::sleep_until(
        start_ + std::chrono::duration_cast<Clock::duration>(
                     std::chrono::duration<double>(static_cast<double>(i) / per_second_)));
  }
  double elapsedSeconds() const {
    return std::chrono::duration<double>(Clock::now() - start_).count();
  }

 private:
  double per_second_;
  Clock::time_point start_ = Clock::now();
};

// A real DTLS ClientHello, from OpenSSL's DTLS client over memory BIOs.
std::vector<std::uint8_t> dtlsClientHello() {
  std::unique_ptr<SSL_CTX, io::SslCtxFree> ctx(SSL_CTX_new(DTLS_client_method()));
  REQUIRE(ctx);
  std::unique_ptr<SSL, io::SslFree> ssl(SSL_new(ctx.get()));
  BIO* in = BIO_new(BIO_s_mem());
  BIO* out = BIO_new(BIO_s_mem());
  SSL_set_bio(ssl.get(), in, out);
  SSL_set_connect_state(ssl.get());
  (void)SSL_do_handshake(ssl.get());
  std::vector<std::uint8_t> hello(static_cast<std::size_t>(BIO_ctrl_pending(out)));
  REQUIRE(BIO_read(out, hello.data(), static_cast<int>(hello.size())) ==
          static_cast<int>(hello.size()));
  REQUIRE(hello.size() > 100);
  return hello;
}

// relayArgs with a DTLS listener on the test certificate.
std::vector<std::string> dtlsRelayArgs() {
  const auto& certs = test::testCertificates();
  return relayArgs({"--dtls-listen", "127.0.0.1:0", "--cert", certs.chain, "--key", certs.key});
}

// A request built by hand: `type`, a transaction id made of `n`, and the attributes `add` writes.
std::vector<std::uint8_t> request(std::uint16_t type, std::uint32_t n,
                                  const std::function<void(wire::MessageBuilder&)>& add = {}) {
  wire::TransactionId tid{};
  tid.fill(0xAB);
  wire::storeU32(tid.data(), n);
  std::vector<std::uint8_t> buf(70'000);
  wire::MessageBuilder b(buf, static_cast<wire::Method>(type & 0x3EEF),
                         wire::MessageClass::kRequest, tid);
  if (add) add(b);
  buf.resize(b.finish()->size());
  // The class bits of `type` (responses, indications) go in as they are.
  wire::storeU16(buf.data(), type);
  return buf;
}

// Datagrams waiting on `sockets`, read until none has arrived for `quiet`.
std::size_t drainDatagrams(const std::vector<io::FileDescriptor>& sockets,
                           std::chrono::milliseconds quiet) {
  std::size_t n = 0;
  auto last = Clock::now();
  std::vector<pollfd> polls;
  for (const auto& s : sockets) polls.push_back({s.get(), POLLIN, 0});
  std::uint8_t buf[2048];
  while (Clock::now() - last < quiet) {
    if (::poll(polls.data(), polls.size(), 20) <= 0) continue;
    for (auto& p : polls) {
      if ((p.revents & POLLIN) == 0) continue;
      while (::recv(p.fd, buf, sizeof buf, MSG_DONTWAIT) > 0) ++n;
      last = Clock::now();
    }
  }
  return n;
}

std::vector<io::FileDescriptor> udpSockets(const char* host, std::size_t n,
                                           const wire::SocketAddress& server) {
  std::vector<io::FileDescriptor> sockets;
  for (std::size_t i = 0; i < n; ++i)
    sockets.push_back(test::connectedSocket(false, on(host), server));
  return sockets;
}

// The well-behaved caller: an allocation with a channel bound to an echo peer, and a stream
// of 160-byte packets at 50 a second through it, each numbered, counted when it comes back.
class VoiceCall {
 public:
  static constexpr std::uint16_t kChannel = 0x4000;

  VoiceCall(const wire::SocketAddress& server, std::uint16_t peer_port)
      : credential_(credential("caller")),
        client_(on(kCallerHost), server, credential_.username, credential_.password, false),
        peer_(on(kPeerHost, peer_port)) {
    REQUIRE(client_.transact([&] { return client_.session.allocate({}); }) == Outcome::kSuccess);
    const wire::SocketAddress peers[] = {peer_};
    REQUIRE(client_.transact([&] { return client_.session.createPermission(peers); }) ==
            Outcome::kSuccess);
    REQUIRE(client_.transact([&] { return client_.session.channelBind(kChannel, peer_); }) ==
            Outcome::kSuccess);
  }
  ~VoiceCall() {
    if (thread_.joinable()) thread_.join();
  }

  void start(std::uint32_t packets) {
    sent_ = packets;
    thread_ = std::thread([this] { run(); });
  }
  // Waits for the stream to end; returns the packets lost.
  std::uint32_t finish() {
    thread_.join();
    return sent_ - static_cast<std::uint32_t>(received_.size());
  }
  // Signed requests on the allocation, after the flood: they were never limited.
  void checkAllocationWorks() {
    CHECK(client_.transact([&] { return client_.session.refresh(600); }) == Outcome::kSuccess);
    const wire::SocketAddress peers[] = {peer_};
    CHECK(client_.transact([&] { return client_.session.createPermission(peers); }) ==
          Outcome::kSuccess);
  }

 private:
  void run() {
    const auto start = Clock::now();
    std::uint8_t buf[2048];
    const auto collect = [&](Clock::time_point until) {
      while (Clock::now() < until) {
        const auto wait =
            std::chrono::duration_cast<std::chrono::milliseconds>(until - Clock::now());
        pollfd p{client_.fd.get(), POLLIN, 0};
        if (::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(wait.count(), 0))) <= 0) continue;
        const ssize_t n = ::recv(client_.fd.get(), buf, sizeof buf, MSG_DONTWAIT);
        if (n <= 0) continue;
        const auto data =
            wire::ChannelDataView::parse(wire::Bytes{buf, static_cast<std::size_t>(n)});
        if (!data || data->channel != kChannel || data->data.size() != 160) continue;
        received_.insert(wire::loadU32(data->data.data()));
      }
    };
    std::vector<std::uint8_t> payload(160, 0x5A);
    for (std::uint32_t i = 0; i < sent_; ++i) {
      wire::storeU32(payload.data(), i);
      const auto packet = client::TurnSession::channelData(kChannel, payload, false);
      (void)::send(client_.fd.get(), packet.data(), packet.size(), 0);
      collect(start + (i + 1) * 20ms);
    }
    collect(Clock::now() + 1s);
  }

  auth::RestCredential credential_;
  test::TurnTestClient client_;
  wire::SocketAddress peer_;
  std::uint32_t sent_ = 0;
  std::set<std::uint32_t> received_;
  std::thread thread_;
};

// The voice stream lost under 1 % of its packets.
void checkCallHeld(VoiceCall& call, std::uint32_t packets) {
  const std::uint32_t lost = call.finish();
  INFO("the voice stream lost " << lost << " of " << packets << " packets");
  CHECK(lost * 100 < packets);
  call.checkAllocationWorks();
}

std::vector<std::uint8_t> allocateWithoutCredentials(std::uint32_t n) {
  return request(0x0003, n,
                 [](wire::MessageBuilder& b) { b.add(wire::attr::RequestedTransport{}); });
}

}  // namespace

TEST_CASE(
    "Allocates without credentials flooded from many ports are mostly dropped, and a call loses "
    "nothing") {
  // Small limits, so a flood of a few thousand shows them: 100 answers at once and 50 a
  // second per worker.
  TernServer server(relayArgs({"--unauthenticated-rate", "50", "--unauthenticated-burst", "100"}));
  test::EchoPeer peer(kPeerHost);
  VoiceCall call(server.udp(), peer.port());
  constexpr std::uint32_t kPackets = 250;  // 5 s
  call.start(kPackets);

  // A reflection attack aims at one IP and varies the ports: 64 sockets on one address.
  const auto sockets = udpSockets(kFloodHost, 64, server.udp());
  constexpr std::size_t kFlood = 3000;
  const Pacer pacer(1000);
  std::size_t answers = 0;
  for (std::size_t i = 0; i < kFlood; ++i) {
    pacer.wait(i);
    const auto bytes = allocateWithoutCredentials(static_cast<std::uint32_t>(i));
    (void)::send(sockets[i % sockets.size()].get(), bytes.data(), bytes.size(), 0);
    if (i % 500 == 499) answers += drainDatagrams(sockets, 0ms);
  }
  const double seconds = pacer.elapsedSeconds();
  answers += drainDatagrams(sockets, 500ms);
  checkCallHeld(call, kPackets);

  // Each of the two workers answered at most its burst and its rate over the flood.
  CAPTURE(answers);
  CAPTURE(seconds);
  CHECK(answers >= 100);
  CHECK(static_cast<double>(answers) <= 2 * (100 + 50 * (seconds + 1)));
  const std::string metrics = metricsOf(server);
  const double limited = dropped(metrics, "rate_limited");
  // Every request of the flood was either answered (401) or dropped and counted; the
  // caller's own Allocate earned one 401 too.
  CHECK(limited + static_cast<double>(answers) == doctest::Approx(kFlood).epsilon(0.01));
  CHECK(sample(metrics, "tern_requests_total{method=\"allocate\",code=\"401\"}") ==
        static_cast<double>(answers + 1));
  // The operator hears of it once per worker and source, not once per packet.
  const std::string log = server.process().output();
  CHECK(count(log, "source over the unauthenticated request limit") >= 1);
  CHECK(count(log, "source over the unauthenticated request limit") <= 2);
  CHECK(log.find("source=127.0.0.3 transport=udp") != std::string::npos);
  // Another address is not disturbed: a new caller gets its 401 and allocates.
  const auto other = credential("other");
  test::TurnTestClient newcomer(on(kCallerHost), server.udp(), other.username, other.password,
                                false);
  CHECK(newcomer.transact([&] { return newcomer.session.allocate({}); }) == Outcome::kSuccess);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("signed Allocates flooded past the per-user quota get 486, and a call loses nothing") {
  TernServer server(relayArgs({"--max-allocations-per-user", "10"}));
  test::EchoPeer peer(kPeerHost);
  VoiceCall call(server.udp(), peer.port());
  constexpr std::uint32_t kPackets = 250;
  call.start(kPackets);

  // The flooder holds a valid credential: one 401 teaches it a nonce (bound to its address,
  // not its port), and every socket then sends signed Allocates.
  const auto flood = credential("flood");
  client::TurnSession session(flood.username, flood.password);
  const auto sockets = udpSockets(kFloodHost, 40, server.udp());
  {
    auto first = test::exchange(sockets[0].get(), false, session.allocate({}));
    REQUIRE(first.has_value());
    REQUIRE(session.onResponse(*wire::MessageView::parse(*first)) == Outcome::kRetry);
  }
  std::size_t granted = 0, over_quota = 0;
  // Every socket allocates, then the refused ones try twice more: 130 Allocates.
  for (int round = 0; round < 3; ++round) {
    for (std::size_t i = 0; i < sockets.size(); ++i) {
      if (round > 0 && i < 10) continue;  // these hold the ten allocations
      auto answer = test::exchange(sockets[i].get(), false, session.allocate({}));
      REQUIRE(answer.has_value());
      const auto outcome = session.onResponse(*wire::MessageView::parse(*answer));
      if (outcome == Outcome::kSuccess) ++granted;
      if (session.lastErrorCode() == 486) ++over_quota;
    }
  }
  checkCallHeld(call, kPackets);
  CHECK(granted == 10);
  CHECK(over_quota == 30 + 2 * 30);
  const std::string metrics = metricsOf(server);
  CHECK(sample(metrics, "tern_quota_rejections_total{quota=\"user_allocations\"}") == 90);
  CHECK(sample(metrics, "tern_requests_total{method=\"allocate\",code=\"486\"}") == 90);
  CHECK(sample(metrics, "tern_allocations_active{transport=\"udp\",family=\"ipv4\"}") == 11);
  // Other users are not held to the flooder's quota.
  const auto other = credential("other");
  test::TurnTestClient newcomer(on(kCallerHost), server.udp(), other.username, other.password,
                                false);
  CHECK(newcomer.transact([&] { return newcomer.session.allocate({}); }) == Outcome::kSuccess);
  CHECK(server.process().output().find("code=486") != std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "malformed and hostile input of every class gets its answer or a counted drop, and a call "
    "loses nothing") {
  TernServer server(relayArgs());
  test::EchoPeer peer(kPeerHost);
  VoiceCall call(server.udp(), peer.port());
  constexpr std::uint32_t kPackets = 300;
  call.start(kPackets);

  // The flooder's own allocation, for the classes that need one.
  const auto flood = credential("flood");
  test::TurnTestClient flooder(on(kFloodHost), server.udp(), flood.username, flood.password, false);
  REQUIRE(flooder.transact([&] { return flooder.session.allocate({}); }) == Outcome::kSuccess);
  const auto before = metricsOf(server);

  // A signed request with a comprehension-required attribute tern does not know: what a
  // client with an extension tern lacks sends. Authenticated, so it earns a signed 420.
  const auto key = auth::longTermKey(auth::PasswordAlgorithmId::kMd5, flood.username, "tern.test",
                                     flood.password);
  const auto signed_unknown = [&](std::uint32_t n) {
    return request(0x0004, n, [&](wire::MessageBuilder& b) {
      b.addRaw(0x0077, std::vector<std::uint8_t>(4, 9));
      b.add(wire::attr::Username{flood.username})
          .add(wire::attr::Realm{"tern.test"})
          .add(wire::attr::Nonce{flooder.session.nonce()});
      auth::addIntegrity(b, wire::AttributeType::kMessageIntegrity, key);
    });
  };

  struct Class {
    const char* name;
    std::function<std::vector<std::uint8_t>(std::uint32_t)> make;
    bool from_allocation;      // sent on the flooder's allocated 5-tuple
    std::size_t answers_each;  // 1: answered, 0: dropped
  };
  const wire::SocketAddress unpermitted = on("127.0.0.9", 9);
  const std::vector<Class> classes = {
      {"a STUN header cut short (12 of its 20 bytes)",
       [](std::uint32_t n) {
         auto m = request(0x0001, n);
         m.resize(12);
         return m;
       },
       false, 0},
      {"a STUN message shorter than its header says (400: its transaction id is readable)",
       [](std::uint32_t n) {
         auto m = request(0x0001, n);
         m[3] = 8;
         m.resize(24);
         return m;
       },
       false, 1},
      {"neither STUN nor ChannelData (an RTP header)",
       [](std::uint32_t n) {
         std::vector<std::uint8_t> rtp(172, 0);
         rtp[0] = 0x80;
         wire::storeU32(rtp.data() + 4, n);
         return rtp;
       },
       false, 0},
      {"a bad FINGERPRINT",
       [](std::uint32_t n) {
         auto m = request(0x0001, n, [](wire::MessageBuilder& b) { b.addFingerprint(); });
         m.back() ^= 0x01;
         return m;
       },
       false, 0},
      {"an unknown comprehension-required attribute in a Binding (420)",
       [](std::uint32_t n) {
         return request(0x0001, n, [](wire::MessageBuilder& b) {
           b.addRaw(0x0077, std::vector<std::uint8_t>(4, 1));
         });
       },
       false, 1},
      {"an attribute that runs past the message (400)",
       [](std::uint32_t n) {
         auto m = request(0x0003, n,
                          [](wire::MessageBuilder& b) { b.add(wire::attr::RequestedTransport{}); });
         m[20 + 3] = 64;
         return m;
       },
       false, 1},
      {"a signed Refresh with an unknown comprehension-required attribute (420)", signed_unknown,
       true, 1},
      {"ChannelData on a channel never bound",
       [](std::uint32_t n) {
         std::vector<std::uint8_t> payload(160, 0x33);
         wire::storeU32(payload.data(), n);
         return client::TurnSession::channelData(0x4321, payload, false);
       },
       true, 0},
      {"ChannelData without an allocation",
       [](std::uint32_t) {
         return client::TurnSession::channelData(0x4000, std::vector<std::uint8_t>(160, 1), false);
       },
       false, 0},
      {"a Send indication to a peer without a permission",
       [&](std::uint32_t) {
         return client::TurnSession::sendIndication(unpermitted, std::vector<std::uint8_t>(160, 2));
       },
       true, 0},
      {"a success response sent to the server", [](std::uint32_t n) { return request(0x0101, n); },
       false, 0},
  };
  constexpr std::uint32_t kEach = 100;
  const Pacer pacer(800);
  std::size_t sent = 0;
  std::vector<io::FileDescriptor> sockets;  // one per class not sent on the allocation
  for (std::size_t k = 0; k < classes.size(); ++k)
    sockets.push_back(test::connectedSocket(false, on(kFloodHost), server.udp()));
  for (std::uint32_t n = 0; n < kEach; ++n) {
    for (std::size_t k = 0; k < classes.size(); ++k) {
      pacer.wait(sent++);
      const auto bytes = classes[k].make(n);
      const int fd = classes[k].from_allocation ? flooder.fd.get() : sockets[k].get();
      (void)::send(fd, bytes.data(), bytes.size(), 0);
    }
  }

  // Over TCP: framing that is not STUN or ChannelData closes the connection; the largest
  // frame a stream can carry (a 64 KiB Binding) is read whole and answered.
  std::size_t closed = 0, oversized_answered = 0;
  for (int i = 0; i < 10; ++i) {
    auto bad_first_byte = test::connectedSocket(true, on(kFloodHost), server.tcp());
    test::sendRaw(bad_first_byte.get(), std::vector<std::uint8_t>(64, 0xFF));
    closed += test::closedByPeer(bad_first_byte.get(), 3s) ? 1u : 0u;
    auto bad_length = test::connectedSocket(true, on(kFloodHost), server.tcp());
    auto m = request(0x0001, 1);
    m[3] = 2;  // RFC 8489 §5: a STUN length is a multiple of 4
    test::sendRaw(bad_length.get(), m);
    closed += test::closedByPeer(bad_length.get(), 3s) ? 1u : 0u;
    auto oversized = test::connectedSocket(true, on(kFloodHost), server.tcp());
    const auto huge = request(0x0001, static_cast<std::uint32_t>(i), [](wire::MessageBuilder& b) {
      b.addRaw(0x8077, std::vector<std::uint8_t>(wire::kMaxStreamFrameSize - 24, 0xEE));
    });
    REQUIRE(huge.size() == wire::kMaxStreamFrameSize);
    auto answer = test::exchange(oversized.get(), true, huge);
    oversized_answered += answer && wire::MessageView::parse(*answer)->messageClass() ==
                                        wire::MessageClass::kSuccessResponse
                              ? 1u
                              : 0u;
  }
  CHECK(closed == 20);
  CHECK(oversized_answered == 10);

  // Answers: exactly the classes that earn one, once per request.
  for (std::size_t k = 0; k < classes.size(); ++k) {
    if (classes[k].from_allocation) continue;
    const std::string name = classes[k].name;
    CAPTURE(name);
    std::vector<io::FileDescriptor> one;
    one.push_back(std::move(sockets[k]));
    CHECK(drainDatagrams(one, 300ms) == classes[k].answers_each * kEach);
  }
  checkCallHeld(call, kPackets);

  const auto after = metricsOf(server);
  const auto delta = [&](const char* reason) {
    return dropped(after, reason) - dropped(before, reason);
  };
  CHECK(delta("malformed") == 2 * kEach);
  CHECK(delta("bad_fingerprint") == kEach);
  CHECK(delta("no_channel") == kEach);
  CHECK(delta("no_allocation") == kEach);
  CHECK(delta("no_permission") >= kEach);
  CHECK(delta("unexpected_class") == kEach);
  CHECK(delta("rate_limited") == 0);
  CHECK(sample(after, "tern_requests_total{method=\"binding\",code=\"420\"}") == kEach);
  CHECK(sample(after, "tern_requests_total{method=\"refresh\",code=\"420\"}") == kEach);
  CHECK(sample(after, "tern_requests_total{method=\"allocate\",code=\"400\"}") == kEach);
  CHECK(sample(after, "tern_requests_total{method=\"binding\",code=\"400\"}") == kEach);
  CHECK(sample(after, "tern_requests_total{method=\"binding\",code=\"200\"}") == 10);
  // The flooder's own allocation is no worse for it.
  CHECK(flooder.transact([&] { return flooder.session.refresh(0); }) == Outcome::kSuccess);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "TCP connections flooded past the per-address and total limits are reset at accept, and a call "
    "loses nothing") {
  TernServer server(
      relayArgs({"--max-tcp-connections-per-ip", "16", "--max-tcp-connections", "40"}));
  test::EchoPeer peer(kPeerHost);
  VoiceCall call(server.udp(), peer.port());
  // A TCP caller holds one connection from the start.
  const auto tcp_caller = credential("tcp-caller");
  test::TurnTestClient over_tcp(on(kCallerHost), server.tcp(), tcp_caller.username,
                                tcp_caller.password, true);
  REQUIRE(over_tcp.transact([&] { return over_tcp.session.allocate({}); }) == Outcome::kSuccess);
  constexpr std::uint32_t kPackets = 250;
  call.start(kPackets);

  const auto open = [&](const char* host, std::size_t n) {
    std::vector<io::FileDescriptor> connections;
    const Pacer pacer(400);
    for (std::size_t i = 0; i < n; ++i) {
      pacer.wait(i);
      connections.push_back(test::connectedSocket(true, on(host), server.tcp()));
    }
    return connections;
  };
  // How many of `connections` tern kept open: the others were reset.
  const auto stillOpen = [](const std::vector<io::FileDescriptor>& connections) {
    std::this_thread::sleep_for(500ms);
    std::size_t n = 0;
    std::uint8_t byte = 0;
    for (const auto& c : connections) {
      const ssize_t got = ::recv(c.get(), &byte, 1, MSG_DONTWAIT);
      if (got < 0 && errno == EAGAIN) ++n;
    }
    return n;
  };
  auto flood = open(kFloodHost, 200);
  CHECK(stillOpen(flood) == 16);
  // Two more addresses: the second reaches the total (40 with the caller's connection).
  auto second = open("127.0.0.5", 16);
  auto third = open("127.0.0.6", 16);
  CHECK(stillOpen(second) == 16);
  CHECK(stillOpen(third) == 40 - 1 - 16 - 16);
  checkCallHeld(call, kPackets);

  std::string metrics = metricsOf(server);
  CHECK(sample(metrics, "tern_tcp_connections_refused_total{limit=\"per_ip\"}") == 200 - 16);
  CHECK(sample(metrics, "tern_tcp_connections_refused_total{limit=\"total\"}") == 16 - 7);
  CHECK(sample(metrics, "tern_tcp_connections_open") == 40);
  // The TCP caller's connection and allocation still work.
  CHECK(over_tcp.transact([&] { return over_tcp.session.refresh(600); }) == Outcome::kSuccess);
  // One log line per refused source, however many connections it tried.
  const std::string log = server.process().output();
  CHECK(count(log, "tcp connection refused") == 2);
  CHECK(count(log, "client=127.0.0.3 limit=max-tcp-connections-per-ip") == 1);
  // Once the flood lets go, its address may connect again.
  flood.clear();
  second.clear();
  const auto give_up = Clock::now() + 5s;
  while (Clock::now() < give_up && sample(metricsOf(server), "tern_tcp_connections_open") > 1 + 7) {
    std::this_thread::sleep_for(50ms);
  }
  test::TurnTestClient again(on(kFloodHost), server.tcp(), tcp_caller.username, tcp_caller.password,
                             true);
  CHECK(again.transact([&] { return again.session.allocate({}); }) == Outcome::kSuccess);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "a DTLS ClientHello from a spoofable address earns a HelloVerifyRequest smaller than itself "
    "(RFC 6347 §4.2.1)") {
  TernServer server(dtlsRelayArgs());
  const auto hello = dtlsClientHello();

  // A spoofer sends it once and never answers: what reaches the victim in 3 s (a whole
  // flight, retransmitted, without the cookie exchange)?
  const auto victim = test::connectedSocket(false, on(kFloodHost), server.dtls());
  test::sendRaw(victim.get(), hello);
  std::size_t bytes = 0, datagrams = 0;
  const auto give_up = Clock::now() + 3s;
  while (Clock::now() < give_up) {
    const auto d = test::receiveDatagram(victim.get(), 100ms);
    if (d.empty()) continue;
    bytes += d.size();
    ++datagrams;
  }
  CAPTURE(hello.size());
  CHECK(datagrams == 1);
  CHECK(bytes < hello.size());
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE(
    "DTLS ClientHellos from thousands of spoofable ports hold no handshake: a DTLS call started "
    "right after relays with zero loss") {
  TernServer server(dtlsRelayArgs());
  test::EchoPeer peer(kPeerHost);
  const auto hello = dtlsClientHello();
  // More ClientHellos than both workers' handshake slots hold (1024 each, for 10 s), each from
  // a port that never answers: what a spoofer sends. Without the cookie exchange done
  // statelessly, each would hold a slot and the call below would find none.
  constexpr int kHellos = 3000;
  const Pacer pacer(3000);
  for (int i = 0; i < kHellos; ++i) {
    pacer.wait(static_cast<std::size_t>(i));
    const auto spoofed = test::connectedSocket(false, on(kFloodHost), server.dtls());
    test::sendRaw(spoofed.get(), hello);
  }
  // clang-format off
  const std::vector<std::string> args = {
      "-X", "-S", "-W", kSecret, "-u", "dtls-caller", "-e", kPeerHost,
      "-r", std::to_string(peer.port()), "-p", std::to_string(server.dtls().port),
      "-n", "100", "-m", "2", "-l", "161", "-z", "5", "127.0.0.1"};
  // clang-format on
  const auto r = test::runUclient(args);
  INFO(r.output);
  CHECK(r.sent == 200);
  CHECK(r.lost == 0);
  CHECK(server.process().stop(SIGTERM) == 0);
}
