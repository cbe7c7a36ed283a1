// A TurnServer on a fake clock with a recording output, and TURN clients that talk to it
// through relay/client's TurnSession: the shared setup of the tests/unit/core/turn_server_*
// tests (RFC 8656 §7-§12). No sockets, no real clock.
#pragma once

#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "auth/message_integrity.hpp"
#include "metrics/worker_counters.hpp"
#include "relay/client/turn_session.hpp"
#include "relay/core/turn_server.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "support/core_services.hpp"
#include "support/recording_output.hpp"

namespace tern::test {

// These throw rather than REQUIRE: tests also call them for file-scope constants, before
// doctest runs.
inline wire::SocketAddress socketAddress(std::string_view text) {
  auto a = wire::SocketAddress::parse(text);
  if (!a) throw std::invalid_argument("not a transport address: " + std::string(text));
  return *a;
}

inline wire::IpAddress ipAddress(std::string_view text) {
  auto a = wire::IpAddress::parse(text);
  if (!a) throw std::invalid_argument("not an IP address: " + std::string(text));
  return *a;
}

inline core::FiveTuple udpTuple(std::string_view client,
                                std::string_view server = "198.51.100.1:3478") {
  return {core::Transport::kUdp, socketAddress(client), socketAddress(server)};
}

inline core::FiveTuple tcpTuple(std::string_view client,
                                std::string_view server = "198.51.100.1:3478") {
  return {core::Transport::kTcp, socketAddress(client), socketAddress(server)};
}

inline wire::Bytes bytesOf(const std::vector<std::uint8_t>& v) { return {v.data(), v.size()}; }

inline std::vector<std::uint8_t> payloadOf(std::size_t size, std::uint8_t seed = 0x10) {
  std::vector<std::uint8_t> out(size);
  for (std::size_t i = 0; i < size; ++i) out[i] = static_cast<std::uint8_t>(seed + i);
  return out;
}

// One STUN message the server sent, owning its bytes.
class Reply {
 public:
  explicit Reply(std::vector<std::uint8_t> bytes) : bytes_(std::move(bytes)) {}

  wire::MessageView view() const {
    auto v = wire::MessageView::parse(bytes_);
    REQUIRE(v.has_value());
    return *v;
  }
  bool success() const { return view().messageClass() == wire::MessageClass::kSuccessResponse; }
  // 0 for a success response, else the ERROR-CODE.
  std::uint16_t code() const {
    const auto v = view();
    if (v.messageClass() == wire::MessageClass::kSuccessResponse) return 0;
    auto e = v.get<wire::attr::ErrorCode>();
    REQUIRE(e.has_value());
    return e->code;
  }
  std::string reason() const {
    auto e = view().get<wire::attr::ErrorCode>();
    return e ? std::string(e->reason) : std::string();
  }
  template <class A>
  std::optional<A> get() const {
    // The attribute borrows bytes_, which lives as long as this Reply.
    return view().get<A>();
  }
  bool has(wire::AttributeType type) const { return view().has(type); }
  const std::vector<std::uint8_t>& bytes() const noexcept { return bytes_; }

 private:
  std::vector<std::uint8_t> bytes_;
};

// The server under test with everything it talks to. Time starts at 1000 s on the steady
// clock and at 1'700'000'000 on the Unix clock, and moves only through advance().
class TurnHarness {
 public:
  explicit TurnHarness(core::ServerOptions options = {},
                       const ServicesOptions& services_options = {})
      : services(makeServices(services_options)),
        quota(static_cast<CountingQuota&>(*services.quota)),
        server(std::move(options), services, output, counters) {
    output.live_relays = services_options.live_relays;
    server.setUnixTime(unix_now);
  }
  // Another worker of the same process as `sibling`: it shares the sibling's services, so
  // the quota and each user's bandwidth buckets are common to both. Its clocks start equal.
  TurnHarness(core::ServerOptions options, const TurnHarness& sibling)
      : services(sibling.services),
        quota(static_cast<CountingQuota&>(*services.quota)),
        now(sibling.now),
        unix_now(sibling.unix_now),
        server(std::move(options), services, output, counters) {
    output.live_relays = sibling.output.live_relays;
    server.setUnixTime(unix_now);
  }

  // Moves both clocks and runs the worker's tick, as the io layer does once a second.
  void advance(std::chrono::seconds by) {
    now += by;
    unix_now += by.count();
    server.setUnixTime(unix_now);
    server.onTick(now);
  }
  void fromClient(const core::FiveTuple& tuple, wire::Bytes packet) {
    server.onClientPacket(tuple, packet, now);
  }
  void fromPeer(core::RelayId relay, const wire::SocketAddress& peer, wire::Bytes payload) {
    server.onPeerPacket(relay, peer, payload, now);
  }

  std::uint64_t dropped(metrics::DropReason reason) const {
    return counters.dropped[metrics::idx(reason)].get();
  }
  std::uint64_t relayedPackets(metrics::Direction d,
                               core::Transport t = core::Transport::kUdp) const {
    return counters.relayed_packets[metrics::idx(d)][metrics::idx(core::counterTransport(t))].get();
  }
  std::uint64_t relayedBytes(metrics::Direction d,
                             core::Transport t = core::Transport::kUdp) const {
    return counters.relayed_bytes[metrics::idx(d)][metrics::idx(core::counterTransport(t))].get();
  }
  std::uint64_t authResults(metrics::AuthResult r) const {
    return counters.auth_results[metrics::idx(r)].get();
  }
  std::uint64_t ended(metrics::AllocationEnd why) const {
    return counters.allocations_ended[metrics::idx(why)].get();
  }

  RecordingOutput output;
  metrics::WorkerCounters counters;
  core::ServerServices services;
  CountingQuota& quota;
  core::TimePoint now{std::chrono::seconds(1000)};
  std::int64_t unix_now = 1'700'000'000;
  core::TurnServer server;
};

using AddAttributes = std::function<void(wire::MessageBuilder&)>;

// One TURN client on one 5-tuple. Requests go through TurnSession (or, for attributes it
// does not offer, through build() with the session's nonce), and every response is fed back
// to the session so it learns REALM and NONCE like a real client.
class TestClient {
 public:
  TestClient(TurnHarness& harness, core::FiveTuple client_tuple, std::string username = kTestUser,
             std::string password = kTestPassword)
      : tuple(std::move(client_tuple)),
        session(username, password),
        harness_(harness),
        username_(std::move(username)),
        key_(auth::longTermKey(auth::PasswordAlgorithmId::kMd5, username_, kTestRealm, password)) {}

  // Sends `request` as it is and returns the one response it earns.
  Reply send(const std::vector<std::uint8_t>& request) {
    const std::size_t before = harness_.output.sent.size();
    harness_.fromClient(tuple, bytesOf(request));
    REQUIRE(harness_.output.sent.size() == before + 1);
    const auto& sent = harness_.output.sent.back();
    REQUIRE(sent.tuple == tuple);
    Reply reply(sent.bytes);
    last_outcome = session.onResponse(reply.view());
    return reply;
  }

  // Learns REALM and NONCE from the 401 that an Allocate without credentials earns, as every
  // real client's first request does.
  void challenge() { (void)send(session.allocate({})); }

  // Sends what `make` builds; a 401 or 438 that taught the session a nonce is answered by
  // building and sending again, as RFC 8489 §9.2.5 asks of clients.
  Reply transact(const std::function<std::vector<std::uint8_t>()>& make) {
    Reply reply = send(make());
    for (int attempt = 0; attempt < 2 && last_outcome == client::TurnSession::Outcome::kRetry;
         ++attempt) {
      reply = send(make());
    }
    return reply;
  }

  Reply allocate(const client::TurnSession::AllocateOptions& options = {}) {
    return transact([&] { return session.allocate(options); });
  }
  Reply refresh(std::optional<std::uint32_t> lifetime = std::nullopt) {
    return transact([&] { return session.refresh(lifetime); });
  }
  Reply createPermission(const std::vector<wire::SocketAddress>& peers) {
    return transact([&] { return session.createPermission(peers); });
  }
  Reply channelBind(std::uint16_t channel, const wire::SocketAddress& peer) {
    return transact([&] { return session.channelBind(channel, peer); });
  }
  // A request with any attributes, signed once the session knows a nonce.
  Reply request(wire::Method method, const AddAttributes& add) {
    return transact([&] { return build(method, add); });
  }

  // Like TurnSession's requests: `add`'s attributes, then USERNAME, REALM, NONCE and
  // MESSAGE-INTEGRITY when a nonce is known, then FINGERPRINT.
  std::vector<std::uint8_t> build(wire::Method method, const AddAttributes& add) {
    std::vector<std::uint8_t> buf(1400);
    // Distinct across every client of the process, so no two requests share a transaction.
    static std::uint32_t counter = 0;
    wire::TransactionId tid{};
    tid.fill(0xA5);
    wire::storeU32(tid.data(), ++counter);
    wire::MessageBuilder b(buf, method, wire::MessageClass::kRequest, tid);
    add(b);
    if (session.authenticated()) {
      b.add(wire::attr::Username{username_})
          .add(wire::attr::Realm{kTestRealm})
          .add(wire::attr::Nonce{session.nonce()});
      auth::addIntegrity(b, wire::AttributeType::kMessageIntegrity, key_);
    }
    b.addFingerprint();
    auto done = b.finish();
    REQUIRE(done.has_value());
    buf.resize(done->size());
    return buf;
  }

  // Allocates and REQUIREs success.
  void mustAllocate(const client::TurnSession::AllocateOptions& options = {}) {
    const Reply r = allocate(options);
    const std::string failure = "Allocate failed: " + std::to_string(r.code()) + " " + r.reason();
    REQUIRE_MESSAGE(r.success(), failure);
  }

  void sendIndication(const wire::SocketAddress& peer, const std::vector<std::uint8_t>& data) {
    const auto bytes = client::TurnSession::sendIndication(peer, bytesOf(data));
    harness_.fromClient(tuple, bytesOf(bytes));
  }
  void channelData(std::uint16_t channel, const std::vector<std::uint8_t>& data, bool pad = false) {
    const auto bytes = client::TurnSession::channelData(channel, bytesOf(data), pad);
    harness_.fromClient(tuple, bytesOf(bytes));
  }

  // The relay socket of this client's allocation, found by its port in the recording.
  core::RelayId relay() const {
    REQUIRE(session.relayed().has_value());
    for (const auto& [id, local] : harness_.output.open_relays) {
      if (local.port == session.relayed()->port) return id;
    }
    FAIL("no open relay socket for this client");
    return 0;
  }
  // What the server sent to this client, oldest first.
  std::vector<std::vector<std::uint8_t>> received() const {
    std::vector<std::vector<std::uint8_t>> out;
    for (const auto& s : harness_.output.sent) {
      if (s.tuple == tuple) out.push_back(s.bytes);
    }
    return out;
  }

  core::FiveTuple tuple;
  client::TurnSession session;
  client::TurnSession::Outcome last_outcome = client::TurnSession::Outcome::kError;

 private:
  TurnHarness& harness_;
  std::string username_;
  std::vector<std::uint8_t> key_;
};

}  // namespace tern::test
