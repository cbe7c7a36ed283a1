// TurnServer's Allocate (RFC 8656 §7.2) and the long-term credential checks in front of it
// (RFC 8489 §9.2.4), driven through relay/client's TurnSession without sockets or clocks.
#include <doctest/doctest.h>

#include "auth/rest_credentials.hpp"
#include "support/turn_harness.hpp"

using namespace tern;
using test::Reply;
using test::TestClient;
using test::TurnHarness;
using wire::AttributeType;
using wire::Method;

namespace {

const core::FiveTuple kTuple = test::udpTuple("192.0.2.7:40000");
const core::FiveTuple kOtherTuple = test::udpTuple("192.0.2.8:40001");
const core::FiveTuple kThirdTuple = test::udpTuple("192.0.2.9:40002");

client::TurnSession::AllocateOptions withLifetime(std::uint32_t seconds) {
  client::TurnSession::AllocateOptions o;
  o.lifetime = seconds;
  return o;
}

client::TurnSession::AllocateOptions withFamily(std::uint8_t family) {
  client::TurnSession::AllocateOptions o;
  o.address_family = family;
  return o;
}

// An Allocate with REQUESTED-TRANSPORT UDP and whatever `more` adds.
test::AddAttributes udpAllocate(const test::AddAttributes& more = {}) {
  return [more](wire::MessageBuilder& b) {
    b.add(wire::attr::RequestedTransport{});
    if (more) more(b);
  };
}

std::uint64_t allocateResponses(const TurnHarness& h, std::uint16_t code) {
  return h.counters
      .responses[metrics::idx(metrics::RequestMethod::kAllocate)][metrics::responseCodeIndex(code)]
      .get();
}

void checkNothingAllocated(const TurnHarness& h) {
  CHECK(h.server.allocationCount() == 0);
  CHECK(h.output.open_relays.empty());
  CHECK(h.output.next_relay == 0);
  CHECK(h.quota.total() == 0);
}

}  // namespace

// --- Authentication -----------------------------------------------------------------------

TEST_CASE(
    "Allocate without credentials gets 401 with REALM and NONCE and opens nothing (RFC 8489 "
    "§9.2.4)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  const Reply r = c.send(c.session.allocate({}));
  CHECK(r.code() == 401);
  REQUIRE(r.get<wire::attr::Realm>().has_value());
  CHECK(r.get<wire::attr::Realm>()->value == test::kTestRealm);
  REQUIRE(r.get<wire::attr::Nonce>().has_value());
  CHECK(r.get<wire::attr::Nonce>()->value.size() == auth::NonceIssuer::kNonceSize);
  // Nobody to sign for yet.
  CHECK_FALSE(r.has(AttributeType::kMessageIntegrity));
  CHECK(c.last_outcome == client::TurnSession::Outcome::kRetry);
  checkNothingAllocated(h);
  CHECK(h.authResults(metrics::AuthResult::kNoIntegrity) == 1);
}

TEST_CASE(
    "a flood of 1000 unauthenticated Allocates opens no relay and stores no allocation (RFC 8656 "
    "§7.2)") {
  TurnHarness h;
  client::TurnSession session(test::kTestUser, test::kTestPassword);
  for (std::uint16_t i = 0; i < 1000; ++i) {
    const core::FiveTuple tuple{
        core::Transport::kUdp,
        {test::ipAddress("203.0.113.50"), static_cast<std::uint16_t>(10000 + i)},
        kTuple.server};
    const auto request = session.allocate({});
    h.fromClient(tuple, test::bytesOf(request));
  }
  CHECK(h.output.sent.size() == 1000);
  for (const auto& s : h.output.sent) CHECK(Reply(s.bytes).code() == 401);
  CHECK(allocateResponses(h, 401) == 1000);
  checkNothingAllocated(h);
}

TEST_CASE("Allocate with a wrong password gets 401 again and opens nothing (RFC 8489 §9.2.4)") {
  TurnHarness h;
  TestClient c(h, kTuple, test::kTestUser, "not-wonderland");
  const Reply r = c.allocate();
  CHECK(r.code() == 401);
  CHECK(c.last_outcome == client::TurnSession::Outcome::kError);
  CHECK(h.authResults(metrics::AuthResult::kBadIntegrity) == 1);
  checkNothingAllocated(h);
}

TEST_CASE("Allocate by an unknown user gets 401 (RFC 8489 §9.2.4)") {
  TurnHarness h;
  TestClient c(h, kTuple, "mallory", "whatever");
  CHECK(c.allocate().code() == 401);
  CHECK(h.authResults(metrics::AuthResult::kUnknownUser) == 1);
  checkNothingAllocated(h);
}

TEST_CASE("a TURN REST username is accepted until its expiry and refused with 401 after it") {
  TurnHarness h;
  const auto credential = auth::mintRestCredential(test::kTestSecret, "bob", h.unix_now, 60);
  SUBCASE("before the expiry") {
    TestClient c(h, kTuple, credential.username, credential.password);
    CHECK(c.allocate().success());
    CHECK(c.session.lastResponseSigned());
  }
  SUBCASE("the expiry second itself still counts") {
    h.advance(std::chrono::seconds(60));
    TestClient c(h, kTuple, credential.username, credential.password);
    CHECK(c.allocate().success());
  }
  SUBCASE("after the expiry") {
    h.advance(std::chrono::seconds(61));
    TestClient c(h, kTuple, credential.username, credential.password);
    CHECK(c.allocate().code() == 401);
    CHECK(h.authResults(metrics::AuthResult::kExpiredUser) == 1);
    checkNothingAllocated(h);
  }
  SUBCASE("a REST password minted with another secret") {
    const auto forged = auth::mintRestCredential("south", "bob", h.unix_now, 60);
    TestClient c(h, kTuple, forged.username, forged.password);
    CHECK(c.allocate().code() == 401);
    CHECK(h.authResults(metrics::AuthResult::kBadIntegrity) == 1);
  }
}

TEST_CASE("a stale nonce earns 438 with a fresh NONCE and the retry succeeds (RFC 8489 §9.2.4)") {
  test::ServicesOptions services;
  services.nonce_lifetime = std::chrono::seconds(60);
  TurnHarness h({}, services);
  TestClient c(h, kTuple);
  CHECK(c.send(c.session.allocate({})).code() == 401);
  const std::string old_nonce = c.session.nonce();
  h.advance(std::chrono::seconds(61));

  const Reply stale = c.send(c.session.allocate({}));
  CHECK(stale.code() == 438);
  REQUIRE(stale.get<wire::attr::Nonce>().has_value());
  CHECK(stale.get<wire::attr::Nonce>()->value != old_nonce);
  CHECK(stale.get<wire::attr::Realm>()->value == test::kTestRealm);
  CHECK(c.last_outcome == client::TurnSession::Outcome::kRetry);
  CHECK(h.authResults(metrics::AuthResult::kStaleNonce) == 1);
  checkNothingAllocated(h);

  const Reply retry = c.send(c.session.allocate({}));
  CHECK(retry.success());
  CHECK(h.server.allocationCount() == 1);
}

TEST_CASE(
    "a nonce issued to another client address gets 438 with a fresh nonce, and the retry succeeds "
    "(RFC 8489 §9.2.4, issue 18)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  CHECK(c.send(c.session.allocate({})).code() == 401);
  const std::string nonce_for_a = c.session.nonce();
  // The same credentials and nonce, replayed from another transport address.
  c.tuple = kOtherTuple;
  const Reply r = c.send(c.session.allocate({}));
  CHECK(r.code() == 438);
  REQUIRE(r.get<wire::attr::Nonce>().has_value());
  CHECK(r.get<wire::attr::Nonce>()->value != nonce_for_a);
  CHECK(h.authResults(metrics::AuthResult::kInvalidNonce) == 1);
  checkNothingAllocated(h);
  // RFC 8489 §9.2.5: the client retries with the new nonce, and it is its own.
  CHECK(c.last_outcome == client::TurnSession::Outcome::kRetry);
  CHECK(c.send(c.session.allocate({})).success());
}

TEST_CASE(
    "an unknown comprehension-required attribute in an authenticated Allocate gets a signed 420 "
    "(RFC 8489 §6.3.1)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  const Reply r = c.request(
      Method::kAllocate, udpAllocate([](wire::MessageBuilder& b) {
        b.addRaw(0x0077, std::vector<std::uint8_t>{1, 2, 3, 4});
        b.addRaw(0x7FFE, std::vector<std::uint8_t>{});
        b.addRaw(0x8077, std::vector<std::uint8_t>{9});  // comprehension-optional: not listed
      }));
  CHECK(r.code() == 420);
  auto unknown = r.get<wire::attr::UnknownAttributes>();
  REQUIRE(unknown.has_value());
  REQUIRE(unknown->types.size() == 2);
  CHECK(unknown->types[0] == 0x0077);
  CHECK(unknown->types[1] == 0x7FFE);
  CHECK(c.session.lastResponseSigned());
  checkNothingAllocated(h);
}

// --- Success ------------------------------------------------------------------------------

TEST_CASE(
    "Allocate success carries XOR-RELAYED-ADDRESS, LIFETIME, XOR-MAPPED-ADDRESS and "
    "MESSAGE-INTEGRITY (RFC 8656 §7.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  const Reply r = c.allocate();
  REQUIRE(r.success());
  CHECK(r.view().method() == static_cast<std::uint16_t>(Method::kAllocate));
  CHECK(r.get<wire::attr::XorRelayedAddress>()->address ==
        test::socketAddress("198.51.100.7:50000"));
  CHECK(r.get<wire::attr::Lifetime>()->seconds == 600);
  CHECK(r.get<wire::attr::XorMappedAddress>()->address == kTuple.client);
  CHECK(r.get<wire::attr::Software>()->value == "tern");
  CHECK_FALSE(r.has(AttributeType::kReservationToken));
  CHECK_FALSE(r.has(AttributeType::kAddressErrorCode));
  CHECK(c.session.lastResponseSigned());
  CHECK(r.view().fingerprintMatches());
  CHECK(c.session.relayed() == test::socketAddress("198.51.100.7:50000"));
  CHECK(c.session.mapped() == kTuple.client);

  CHECK(h.server.allocationCount() == 1);
  CHECK(h.output.open_relays.size() == 1);
  CHECK(h.quota.total() == 1);
  CHECK(h.output.last_request.family == wire::AddressFamily::kIPv4);
  CHECK_FALSE(h.output.last_request.even_port);
  CHECK_FALSE(h.output.last_request.dont_fragment);
  CHECK(h.counters.allocations_created[metrics::idx(metrics::ClientTransport::kUdp)][metrics::idx(metrics::Family::kIPv4)].get() == 1);
  CHECK(allocateResponses(h, 200) == 1);
}

TEST_CASE("Allocate over TCP works on the connection's 5-tuple (RFC 8656 §7.2)") {
  TurnHarness h;
  TestClient c(h, test::tcpTuple("192.0.2.7:40000"));
  const Reply r = c.allocate();
  REQUIRE(r.success());
  CHECK(r.get<wire::attr::XorMappedAddress>()->address == c.tuple.client);
  CHECK(h.counters.allocations_created[metrics::idx(metrics::ClientTransport::kTcp)][metrics::idx(metrics::Family::kIPv4)].get() == 1);
  // The same client address over UDP is another 5-tuple, with room for its own allocation.
  TestClient udp(h, kTuple);
  CHECK(udp.allocate().success());
  CHECK(h.server.allocationCount() == 2);
}

TEST_CASE("the granted lifetime is max(default, min(requested, maximum)) (RFC 8656 §7.2)") {
  struct Case {
    std::optional<std::uint32_t> requested;
    std::uint32_t granted;
  };
  const Case cases[] = {{std::nullopt, 600}, {0, 600},     {30, 600},    {600, 600},
                        {601, 601},          {1800, 1800}, {3600, 3600}, {99999, 3600}};
  for (const Case& k : cases) {
    CAPTURE(k.requested.value_or(0xFFFFFFFF));
    TurnHarness h;
    TestClient c(h, kTuple);
    client::TurnSession::AllocateOptions o;
    o.lifetime = k.requested;
    const Reply r = c.allocate(o);
    REQUIRE(r.success());
    CHECK(r.get<wire::attr::Lifetime>()->seconds == k.granted);
  }
}

TEST_CASE("the lifetime limits follow ServerOptions") {
  core::ServerOptions options;
  options.default_lifetime = std::chrono::seconds(300);
  options.max_lifetime = std::chrono::seconds(900);
  TurnHarness h(options);
  TestClient a(h, kTuple);
  CHECK(a.allocate().get<wire::attr::Lifetime>()->seconds == 300);
  TestClient b(h, kOtherTuple);
  CHECK(b.allocate(withLifetime(5000)).get<wire::attr::Lifetime>()->seconds == 900);
}

TEST_CASE(
    "--external-ip changes the advertised XOR-RELAYED-ADDRESS, not the relay socket (RFC 8656 "
    "§7.2)") {
  core::ServerOptions options;
  SUBCASE("a family-wide mapping") {
    options.external_ips = {core::ExternalIp{test::ipAddress("203.0.113.9"), std::nullopt}};
    TurnHarness h(options);
    TestClient c(h, kTuple);
    const Reply r = c.allocate();
    REQUIRE(r.success());
    CHECK(r.get<wire::attr::XorRelayedAddress>()->address ==
          test::socketAddress("203.0.113.9:50000"));
    CHECK(h.output.open_relays.at(c.relay()) == test::socketAddress("198.51.100.7:50000"));
  }
  SUBCASE("an exact PRIVATE match wins over a family-wide one") {
    options.external_ips = {
        core::ExternalIp{test::ipAddress("203.0.113.9"), std::nullopt},
        core::ExternalIp{test::ipAddress("203.0.113.10"), test::ipAddress("198.51.100.7")}};
    TurnHarness h(options);
    TestClient c(h, kTuple);
    CHECK(c.allocate().get<wire::attr::XorRelayedAddress>()->address ==
          test::socketAddress("203.0.113.10:50000"));
  }
  SUBCASE("a mapping of the other family leaves the address alone") {
    options.external_ips = {core::ExternalIp{test::ipAddress("2001:db8::99"), std::nullopt}};
    TurnHarness h(options);
    TestClient c(h, kTuple);
    CHECK(c.allocate().get<wire::attr::XorRelayedAddress>()->address ==
          test::socketAddress("198.51.100.7:50000"));
  }
}

// --- Retransmission and 437 ---------------------------------------------------------------

TEST_CASE(
    "a retransmitted Allocate is answered with success again, a new one on the same 5-tuple with "
    "437 (RFC 8656 §7.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  CHECK(c.send(c.session.allocate({})).code() == 401);
  const auto request = c.session.allocate({});
  const Reply first = c.send(request);
  REQUIRE(first.success());
  h.advance(std::chrono::seconds(100));
  const Reply again = c.send(request);
  REQUIRE(again.success());
  CHECK(again.view().transactionId() == first.view().transactionId());
  CHECK(again.get<wire::attr::XorRelayedAddress>()->address ==
        first.get<wire::attr::XorRelayedAddress>()->address);
  CHECK(again.get<wire::attr::Lifetime>()->seconds == 500);  // what is left of the 600
  CHECK(again.get<wire::attr::XorMappedAddress>()->address == kTuple.client);
  CHECK(c.session.lastResponseSigned());
  CHECK(h.server.allocationCount() == 1);
  CHECK(h.output.next_relay == 1);
  CHECK(h.quota.total() == 1);

  const Reply other = c.allocate();
  CHECK(other.code() == 437);
  CHECK(c.session.lastResponseSigned());
  CHECK(h.server.allocationCount() == 1);
  CHECK(h.output.next_relay == 1);
  CHECK(h.quota.total() == 1);
}

TEST_CASE(
    "an Allocate on a 5-tuple whose allocation expired before the tick ran succeeds (RFC 8656 "
    "§7.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  c.mustAllocate();
  const core::RelayId old_relay = c.relay();
  // Time passes but the worker's tick has not run yet: the old allocation is still stored.
  h.now += std::chrono::seconds(600);
  const Reply r = c.allocate();
  REQUIRE(r.success());
  CHECK(h.server.allocationCount() == 1);
  CHECK(h.quota.total() == 1);
  REQUIRE(h.output.closed_relays.size() == 1);
  CHECK(h.output.closed_relays[0] == old_relay);
  CHECK(c.relay() != old_relay);
  CHECK(r.get<wire::attr::Lifetime>()->seconds == 600);
  // The next tick finds nothing of the old allocation to expire.
  h.advance(std::chrono::seconds(1));
  CHECK(h.server.allocationCount() == 1);
  CHECK(h.output.closed_relays.size() == 1);
}

// --- REQUESTED-TRANSPORT ------------------------------------------------------------------

TEST_CASE("Allocate without REQUESTED-TRANSPORT gets 400 (RFC 8656 §7.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  SUBCASE("without credentials: the 401 challenge first, since authentication comes first") {
    const Reply r = c.send(c.build(Method::kAllocate, [](wire::MessageBuilder&) {}));
    CHECK(r.code() == 401);
    CHECK(c.session.authenticated());
    CHECK(c.request(Method::kAllocate, [](wire::MessageBuilder&) {}).code() == 400);
  }
  SUBCASE("with credentials, signed") {
    c.challenge();
    const Reply r = c.request(Method::kAllocate, [](wire::MessageBuilder&) {});
    CHECK(r.code() == 400);
    CHECK(c.session.lastResponseSigned());
  }
  checkNothingAllocated(h);
}

TEST_CASE("Allocate with a malformed REQUESTED-TRANSPORT gets 400 (RFC 8656 §7.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  const Reply r = c.request(Method::kAllocate, [](wire::MessageBuilder& b) {
    b.addRaw(static_cast<std::uint16_t>(AttributeType::kRequestedTransport),
             std::vector<std::uint8_t>{17, 0});
  });
  CHECK(r.code() == 400);
  checkNothingAllocated(h);
}

TEST_CASE("Allocate for a transport other than UDP and TCP gets 442 (RFC 8656 §7.2)") {
  for (std::uint8_t protocol : {std::uint8_t{0}, std::uint8_t{1}, std::uint8_t{132}}) {
    CAPTURE(protocol);
    TurnHarness h;
    TestClient c(h, kTuple);
    client::TurnSession::AllocateOptions o;
    o.transport = protocol;
    const Reply r = c.allocate(o);
    CHECK(r.code() == 442);
    CHECK(c.session.lastResponseSigned());
    checkNothingAllocated(h);
  }
}

// --- Address families ---------------------------------------------------------------------

TEST_CASE("REQUESTED-ADDRESS-FAMILY IPv6 without an IPv6 relay address gets 440 (RFC 8656 §7.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  CHECK(c.allocate(withFamily(0x02)).code() == 440);
  checkNothingAllocated(h);
}

TEST_CASE(
    "REQUESTED-ADDRESS-FAMILY IPv6 with an IPv6 relay address gets an IPv6 relayed address (RFC "
    "8656 §7.2)") {
  TurnHarness h;
  h.output.ipv6 = true;
  TestClient c(h, kTuple);
  const Reply r = c.allocate(withFamily(0x02));
  REQUIRE(r.success());
  CHECK(r.get<wire::attr::XorRelayedAddress>()->address ==
        test::socketAddress("[2001:db8::7]:50000"));
  CHECK(h.output.last_request.family == wire::AddressFamily::kIPv6);
  // REQUESTED-ADDRESS-FAMILY IPv4 is what an Allocate without it gets.
  TestClient v4(h, kOtherTuple);
  CHECK(v4.allocate(withFamily(0x01)).get<wire::attr::XorRelayedAddress>()->address.ip.isV4());
}

TEST_CASE("REQUESTED-ADDRESS-FAMILY of an unknown family gets 440 (RFC 8656 §7.2)") {
  TurnHarness h;
  h.output.ipv6 = true;
  TestClient c(h, kTuple);
  CHECK(c.allocate(withFamily(0x03)).code() == 440);
  CHECK(c.allocate(withFamily(0x00)).code() == 440);
  checkNothingAllocated(h);
}

TEST_CASE("a malformed REQUESTED-ADDRESS-FAMILY gets 400") {
  TurnHarness h;
  TestClient c(h, kTuple);
  const Reply r =
      c.request(Method::kAllocate, udpAllocate([](wire::MessageBuilder& b) {
                  b.addRaw(static_cast<std::uint16_t>(AttributeType::kRequestedAddressFamily),
                           std::vector<std::uint8_t>{1});
                }));
  CHECK(r.code() == 400);
  checkNothingAllocated(h);
}

TEST_CASE(
    "REQUESTED-ADDRESS-FAMILY together with ADDITIONAL-ADDRESS-FAMILY gets 400 (RFC 8656 §7.2)") {
  TurnHarness h;
  h.output.ipv6 = true;
  TestClient c(h, kTuple);
  const Reply r = c.request(Method::kAllocate, udpAllocate([](wire::MessageBuilder& b) {
                              b.add(wire::attr::RequestedAddressFamily{0x01})
                                  .add(wire::attr::AdditionalAddressFamily{0x02});
                            }));
  CHECK(r.code() == 400);
  checkNothingAllocated(h);
}

TEST_CASE("ADDITIONAL-ADDRESS-FAMILY IPv4 gets 400 (RFC 8656 §7.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  const Reply r = c.request(Method::kAllocate, udpAllocate([](wire::MessageBuilder& b) {
                              b.add(wire::attr::AdditionalAddressFamily{0x01});
                            }));
  CHECK(r.code() == 400);
  checkNothingAllocated(h);
}

TEST_CASE(
    "ADDITIONAL-ADDRESS-FAMILY IPv6 gets the IPv4 allocation and ADDRESS-ERROR-CODE 440 (RFC 8656 "
    "§7.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  const Reply r = c.request(Method::kAllocate, udpAllocate([](wire::MessageBuilder& b) {
                              b.add(wire::attr::AdditionalAddressFamily{0x02});
                            }));
  REQUIRE(r.success());
  CHECK(r.get<wire::attr::XorRelayedAddress>()->address.ip.isV4());
  auto address_error = r.get<wire::attr::AddressErrorCode>();
  REQUIRE(address_error.has_value());
  CHECK(address_error->family == 0x02);
  CHECK(address_error->code == 440);
  CHECK(c.session.lastResponseSigned());
  CHECK(h.server.allocationCount() == 1);
}

// --- EVEN-PORT and RESERVATION-TOKEN ------------------------------------------------------

TEST_CASE(
    "EVEN-PORT with R=1 returns a RESERVATION-TOKEN that a second Allocate can use (RFC 8656 "
    "§7.2)") {
  TurnHarness h;
  TestClient first(h, kTuple);
  const Reply r = first.request(Method::kAllocate, udpAllocate([](wire::MessageBuilder& b) {
                                  b.add(wire::attr::EvenPort{true});
                                }));
  REQUIRE(r.success());
  CHECK(h.output.last_request.even_port);
  CHECK(h.output.last_request.reserve_next);
  auto token = r.get<wire::attr::ReservationToken>();
  REQUIRE(token.has_value());
  CHECK(h.output.reserved.count(token->token) == 1);

  // "The 5-tuple for the Allocate request containing the RESERVATION-TOKEN attribute can be
  // any allowed 5-tuple."
  TestClient second(h, kOtherTuple);
  const std::uint64_t value = token->token;
  const Reply r2 = second.request(Method::kAllocate, udpAllocate([value](wire::MessageBuilder& b) {
                                    b.add(wire::attr::ReservationToken{value});
                                  }));
  REQUIRE(r2.success());
  CHECK(h.output.last_request.reservation_token == value);
  CHECK_FALSE(r2.has(AttributeType::kReservationToken));
  CHECK(h.output.reserved.empty());
  CHECK(h.server.allocationCount() == 2);

  // A token is good once.
  TestClient third(h, kThirdTuple);
  const Reply r3 = third.request(Method::kAllocate, udpAllocate([value](wire::MessageBuilder& b) {
                                   b.add(wire::attr::ReservationToken{value});
                                 }));
  CHECK(r3.code() == 508);
}

TEST_CASE("EVEN-PORT with R=0 asks for an even port and reserves nothing (RFC 8656 §7.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  const Reply r =
      c.request(Method::kAllocate,
                udpAllocate([](wire::MessageBuilder& b) { b.add(wire::attr::EvenPort{false}); }));
  REQUIRE(r.success());
  CHECK(h.output.last_request.even_port);
  CHECK_FALSE(h.output.last_request.reserve_next);
  CHECK_FALSE(r.has(AttributeType::kReservationToken));
}

TEST_CASE("an unknown RESERVATION-TOKEN gets 508 and returns the quota (RFC 8656 §7.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  const Reply r = c.request(Method::kAllocate, udpAllocate([](wire::MessageBuilder& b) {
                              b.add(wire::attr::ReservationToken{0x1234567890ABCDEFull});
                            }));
  CHECK(r.code() == 508);
  checkNothingAllocated(h);
}

TEST_CASE(
    "RESERVATION-TOKEN with EVEN-PORT, REQUESTED- or ADDITIONAL-ADDRESS-FAMILY gets 400 (RFC 8656 "
    "§7.2 item 5)") {
  TurnHarness h;
  h.output.ipv6 = true;
  h.output.reserved.insert(0xA000);
  TestClient c(h, kTuple);
  test::AddAttributes other;
  SUBCASE("EVEN-PORT") {
    other = [](wire::MessageBuilder& b) { b.add(wire::attr::EvenPort{false}); };
  }
  SUBCASE("REQUESTED-ADDRESS-FAMILY") {
    other = [](wire::MessageBuilder& b) { b.add(wire::attr::RequestedAddressFamily{0x01}); };
  }
  SUBCASE("ADDITIONAL-ADDRESS-FAMILY") {
    other = [](wire::MessageBuilder& b) { b.add(wire::attr::AdditionalAddressFamily{0x02}); };
  }
  const Reply r = c.request(Method::kAllocate, udpAllocate([&other](wire::MessageBuilder& b) {
                              b.add(wire::attr::ReservationToken{0xA000});
                              other(b);
                            }));
  CHECK(r.code() == 400);
  checkNothingAllocated(h);
  CHECK(h.output.reserved.count(0xA000) == 1);  // the reservation is not spent
}

TEST_CASE(
    "EVEN-PORT with R=1 together with ADDITIONAL-ADDRESS-FAMILY gets 400 (RFC 8656 §7.2 item 8)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  const Reply r =
      c.request(Method::kAllocate, udpAllocate([](wire::MessageBuilder& b) {
                  b.add(wire::attr::EvenPort{true}).add(wire::attr::AdditionalAddressFamily{0x02});
                }));
  CHECK(r.code() == 400);
  checkNothingAllocated(h);
  CHECK(h.output.reserved.empty());
}

TEST_CASE("EVEN-PORT with R=0 and ADDITIONAL-ADDRESS-FAMILY IPv6 is allowed (RFC 8656 §7.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  const Reply r =
      c.request(Method::kAllocate, udpAllocate([](wire::MessageBuilder& b) {
                  b.add(wire::attr::EvenPort{false}).add(wire::attr::AdditionalAddressFamily{0x02});
                }));
  REQUIRE(r.success());
  CHECK(r.get<wire::attr::AddressErrorCode>()->code == 440);
}

TEST_CASE(
    "malformed EVEN-PORT, RESERVATION-TOKEN, LIFETIME or DONT-FRAGMENT in Allocate gets 400") {
  TurnHarness h;
  TestClient c(h, kTuple);
  std::uint16_t type = 0;
  std::vector<std::uint8_t> value;
  SUBCASE("EVEN-PORT of 4 bytes") {
    type = static_cast<std::uint16_t>(AttributeType::kEvenPort);
    value = {0x80, 0, 0, 0};
  }
  SUBCASE("RESERVATION-TOKEN of 4 bytes") {
    type = static_cast<std::uint16_t>(AttributeType::kReservationToken);
    value = {1, 2, 3, 4};
  }
  SUBCASE("LIFETIME of 2 bytes") {
    type = static_cast<std::uint16_t>(AttributeType::kLifetime);
    value = {0, 1};
  }
  SUBCASE("DONT-FRAGMENT with a value") {
    type = static_cast<std::uint16_t>(AttributeType::kDontFragment);
    value = {1, 0, 0, 0};
  }
  const Reply r = c.request(Method::kAllocate,
                            udpAllocate([&](wire::MessageBuilder& b) { b.addRaw(type, value); }));
  CHECK(r.code() == 400);
  CHECK(c.session.lastResponseSigned());
  checkNothingAllocated(h);
}

// --- DONT-FRAGMENT and resources -----------------------------------------------------------

TEST_CASE("DONT-FRAGMENT is passed to the relay socket (RFC 8656 §7.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  client::TurnSession::AllocateOptions o;
  o.dont_fragment = true;
  REQUIRE(c.allocate(o).success());
  CHECK(h.output.last_request.dont_fragment);
}

TEST_CASE("no free relay port gets 508 and returns the quota (RFC 8656 §7.2)") {
  TurnHarness h;
  h.output.ports_left = 0;
  TestClient c(h, kTuple);
  const Reply r = c.allocate();
  CHECK(r.code() == 508);
  CHECK(c.session.lastResponseSigned());
  checkNothingAllocated(h);
}

TEST_CASE("the per-user quota answers 486 and counts per username (RFC 8656 §7.2)") {
  test::ServicesOptions services;
  services.max_per_user = 1;
  TurnHarness h({}, services);
  TestClient a(h, kTuple);
  a.mustAllocate();
  TestClient again(h, kOtherTuple);
  const Reply r = again.allocate();
  CHECK(r.code() == 486);
  CHECK(again.session.lastResponseSigned());
  CHECK(h.server.allocationCount() == 1);
  CHECK(h.output.open_relays.size() == 1);

  const auto bob = auth::mintRestCredential(test::kTestSecret, "bob", h.unix_now, 3600);
  TestClient b(h, kThirdTuple, bob.username, bob.password);
  CHECK(b.allocate().success());

  // The quota comes back when the allocation ends.
  REQUIRE(a.refresh(0).success());
  CHECK(again.allocate().success());
}

TEST_CASE(
    "the server-wide quota answers 508 and comes back when an allocation expires (RFC 8656 §7.2)") {
  test::ServicesOptions services;
  services.max_total = 2;
  TurnHarness h({}, services);
  TestClient a(h, kTuple);
  a.mustAllocate(withLifetime(600));
  h.advance(std::chrono::seconds(100));
  TestClient b(h, kOtherTuple);
  b.mustAllocate(withLifetime(600));
  TestClient c(h, kThirdTuple);
  CHECK(c.allocate().code() == 508);
  CHECK(h.quota.total() == 2);
  CHECK(h.output.open_relays.size() == 2);

  h.advance(std::chrono::seconds(500));  // a's 600 s are over
  CHECK(h.quota.total() == 1);
  CHECK(c.allocate().success());
  CHECK(h.quota.total() == 2);
}

TEST_CASE(
    "a retransmitted Allocate gets the RESERVATION-TOKEN and ADDRESS-ERROR-CODE of the first "
    "answer (RFC 8656 §7.2)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  const auto add = udpAllocate([](wire::MessageBuilder& b) {
    b.add(wire::attr::EvenPort{false}).add(wire::attr::AdditionalAddressFamily{0x02});
  });
  SUBCASE("ADDRESS-ERROR-CODE") {
    CHECK(c.send(c.build(Method::kAllocate, add)).code() == 401);
    const auto request = c.build(Method::kAllocate, add);
    const Reply first = c.send(request);
    REQUIRE(first.success());
    REQUIRE(first.has(AttributeType::kAddressErrorCode));
    const Reply again = c.send(request);
    REQUIRE(again.success());
    auto address_error = again.get<wire::attr::AddressErrorCode>();
    REQUIRE(address_error.has_value());
    CHECK(address_error->family == 0x02);
    CHECK(address_error->code == 440);
  }
  SUBCASE("RESERVATION-TOKEN") {
    const auto even =
        udpAllocate([](wire::MessageBuilder& b) { b.add(wire::attr::EvenPort{true}); });
    CHECK(c.send(c.build(Method::kAllocate, even)).code() == 401);
    const auto request = c.build(Method::kAllocate, even);
    const Reply first = c.send(request);
    REQUIRE(first.success());
    const auto token = first.get<wire::attr::ReservationToken>();
    REQUIRE(token.has_value());
    // The first answer was lost; the client retransmits and must still learn the token.
    const Reply again = c.send(request);
    REQUIRE(again.success());
    REQUIRE(again.get<wire::attr::ReservationToken>().has_value());
    CHECK(again.get<wire::attr::ReservationToken>()->token == token->token);
    CHECK(h.output.next_relay == 1);
  }
}

TEST_CASE(
    "an unknown comprehension-required attribute in an unauthenticated Allocate gets 401 first "
    "(RFC 8489 §9.2.4)") {
  TurnHarness h;
  TestClient c(h, kTuple);
  const Reply r = c.send(c.build(Method::kAllocate, udpAllocate([](wire::MessageBuilder& b) {
                                   b.addRaw(0x0077, std::vector<std::uint8_t>{1, 2, 3, 4});
                                 })));
  CHECK(r.code() == 401);
  CHECK_FALSE(r.has(AttributeType::kUnknownAttributes));
}

TEST_CASE("TURN REST credentials of one user share that user's quota (RFC 8656 §7.2 item 10)") {
  test::ServicesOptions services;
  services.max_per_user = 1;
  TurnHarness h({}, services);
  const auto first = auth::mintRestCredential(test::kTestSecret, "bob", h.unix_now, 3600);
  const auto second = auth::mintRestCredential(test::kTestSecret, "bob", h.unix_now, 7200);
  REQUIRE(first.username != second.username);
  TestClient a(h, kTuple, first.username, first.password);
  a.mustAllocate();
  TestClient b(h, kOtherTuple, second.username, second.password);
  CHECK(b.allocate().code() == 486);
  const auto carol = auth::mintRestCredential(test::kTestSecret, "carol", h.unix_now, 3600);
  TestClient c(h, kThirdTuple, carol.username, carol.password);
  CHECK(c.allocate().success());
  REQUIRE(a.refresh(0).success());
  CHECK(b.allocate().success());
}
