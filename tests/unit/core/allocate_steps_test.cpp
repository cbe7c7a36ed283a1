// The steps of Allocate (relay/core/handlers/allocate.hpp) one at a time: parse (RFC 8656 §7.2
// steps 3-9, each error with its code), quota (step 10), relay (440/508) and insert. The whole
// method, through TurnServer, is turn_server_allocate_test.cpp.
#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

#include "metrics/worker_counters.hpp"
#include "relay/core/handlers/allocate.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "support/core_services.hpp"
#include "support/context_harness.hpp"
#include "support/recording_output.hpp"

using namespace tern;
using core::handlers::AllocateError;
using core::handlers::AllocateRequest;
using core::handlers::parseAllocate;
using wire::AttributeType;
namespace ec = wire::error_code;

namespace {

using Add = std::function<void(wire::MessageBuilder&)>;

// An Allocate request's bytes; the MessageView parsed from them borrows them.
struct Request {
  std::vector<std::uint8_t> bytes;
  wire::MessageView view() const {
    auto v = wire::MessageView::parse(bytes);
    REQUIRE(v.has_value());
    return *v;
  }
};

Request allocateWith(const Add& add) {
  std::vector<std::uint8_t> buffer(1024);
  wire::MessageBuilder b(buffer, wire::Method::kAllocate, wire::MessageClass::kRequest,
                         wire::TransactionId{});
  add(b);
  auto out = b.finish();
  REQUIRE(out.has_value());
  return {{out->begin(), out->end()}};
}

void raw(wire::MessageBuilder& b, AttributeType type, std::vector<std::uint8_t> value) {
  b.addRaw(static_cast<std::uint16_t>(type), value);
}

void udp(wire::MessageBuilder& b) { b.add(wire::attr::RequestedTransport{}); }
void tcp(wire::MessageBuilder& b) {
  b.add(wire::attr::RequestedTransport{wire::attr::RequestedTransport::kTcp});
}
void family(wire::MessageBuilder& b, AttributeType type, std::uint8_t value) {
  raw(b, type, {value, 0, 0, 0});
}
constexpr std::uint8_t kV4 = 0x01;
constexpr std::uint8_t kV6 = 0x02;

Expected<AllocateRequest, AllocateError> parse(const Add& add,
                                               core::Transport client = core::Transport::kUdp) {
  const Request request = allocateWith(add);
  return parseAllocate(request.view(), client);
}

// A ServerContext over recording fakes, as TurnServer builds its own.
struct Steps : test::ContextHarness {
  using ContextHarness::ContextHarness;
};

}  // namespace

// --- Parse ----------------------------------------------------------------------------------

TEST_CASE(
    "parseAllocate: REQUESTED-TRANSPORT UDP alone asks for one IPv4 UDP relay with the defaults") {
  const auto p = parse(udp);
  REQUIRE(p.has_value());
  CHECK_FALSE(p->relay.tcp);
  CHECK(p->relay.family == wire::AddressFamily::kIPv4);
  CHECK_FALSE(p->relay.even_port);
  CHECK_FALSE(p->relay.reserve_next);
  CHECK_FALSE(p->relay.dont_fragment);
  CHECK_FALSE(p->relay.reservation_token.has_value());
  CHECK_FALSE(p->additional_ipv6);
  CHECK_FALSE(p->lifetime.has_value());
  CHECK_FALSE(p->mobility);
}

TEST_CASE("parseAllocate reads each attribute into AllocateRequest") {
  SUBCASE("DONT-FRAGMENT, EVEN-PORT with R, LIFETIME and MOBILITY-TICKET") {
    const auto p = parse([](wire::MessageBuilder& b) {
      udp(b);
      b.add(wire::attr::DontFragment{})
          .add(wire::attr::EvenPort{true})
          .add(wire::attr::Lifetime{1200});
      raw(b, AttributeType::kMobilityTicket, {});
    });
    REQUIRE(p.has_value());
    CHECK(p->relay.dont_fragment);
    CHECK(p->relay.even_port);
    CHECK(p->relay.reserve_next);
    CHECK(p->lifetime == 1200u);
    CHECK(p->mobility);
  }
  SUBCASE("RESERVATION-TOKEN") {
    const auto p = parse([](wire::MessageBuilder& b) {
      udp(b);
      b.add(wire::attr::ReservationToken{0x1122334455667788});
    });
    REQUIRE(p.has_value());
    CHECK(p->relay.reservation_token == 0x1122334455667788u);
  }
  SUBCASE("REQUESTED-ADDRESS-FAMILY IPv6") {
    const auto p = parse([](wire::MessageBuilder& b) {
      udp(b);
      family(b, AttributeType::kRequestedAddressFamily, kV6);
    });
    REQUIRE(p.has_value());
    CHECK(p->relay.family == wire::AddressFamily::kIPv6);
  }
  SUBCASE("ADDITIONAL-ADDRESS-FAMILY IPv6, under the RFC's number and the draft's") {
    for (const auto type :
         {AttributeType::kAdditionalAddressFamily, AttributeType::kAdditionalAddressFamilyDraft}) {
      const auto p = parse([type](wire::MessageBuilder& b) {
        udp(b);
        family(b, type, kV6);
      });
      REQUIRE(p.has_value());
      CHECK(p->additional_ipv6);
      CHECK(p->relay.family == wire::AddressFamily::kIPv4);
    }
  }
  SUBCASE("REQUESTED-TRANSPORT TCP over TCP (RFC 6062 §5.1)") {
    const auto p = parse(tcp, core::Transport::kTcp);
    REQUIRE(p.has_value());
    CHECK(p->relay.tcp);
  }
}

TEST_CASE(
    "parseAllocate answers each malformed or conflicting request with the code of its RFC 8656 "
    "§7.2 step") {
  struct Case {
    const char* name;
    Add add;
    core::Transport client;
    std::uint16_t code;
    std::string_view reason;
  };
  const auto U = core::Transport::kUdp;
  const auto T = core::Transport::kTcp;
  const std::vector<Case> cases{
      // Step 3 and RFC 6062 §5.1.
      {"no REQUESTED-TRANSPORT", [](auto&) {}, U, ec::kBadRequest,
       "REQUESTED-TRANSPORT is missing"},
      {"malformed REQUESTED-TRANSPORT",
       [](auto& b) { raw(b, AttributeType::kRequestedTransport, {17}); }, U, ec::kBadRequest,
       "Malformed REQUESTED-TRANSPORT"},
      {"SCTP", [](auto& b) { b.add(wire::attr::RequestedTransport{132}); }, U,
       ec::kUnsupportedTransportProtocol,
       "Unsupported Transport Protocol: only UDP and TCP relaying"},
      {"TCP over UDP", tcp, U, ec::kBadRequest,
       "A TCP allocation needs a TCP or TLS connection (RFC 6062)"},
      {"TCP with DONT-FRAGMENT",
       [](auto& b) {
         tcp(b);
         b.add(wire::attr::DontFragment{});
       },
       T, ec::kBadRequest, "DONT-FRAGMENT, EVEN-PORT and RESERVATION-TOKEN do not apply to TCP"},
      {"TCP with EVEN-PORT",
       [](auto& b) {
         tcp(b);
         b.add(wire::attr::EvenPort{});
       },
       T, ec::kBadRequest, "DONT-FRAGMENT, EVEN-PORT and RESERVATION-TOKEN do not apply to TCP"},
      {"TCP with RESERVATION-TOKEN",
       [](auto& b) {
         tcp(b);
         b.add(wire::attr::ReservationToken{1});
       },
       T, ec::kBadRequest, "DONT-FRAGMENT, EVEN-PORT and RESERVATION-TOKEN do not apply to TCP"},
      // Step 4.
      {"malformed DONT-FRAGMENT",
       [](auto& b) {
         udp(b);
         raw(b, AttributeType::kDontFragment, {1});
       },
       U, ec::kBadRequest, "Malformed DONT-FRAGMENT"},
      // Step 5.
      {"RESERVATION-TOKEN with EVEN-PORT",
       [](auto& b) {
         udp(b);
         b.add(wire::attr::ReservationToken{1}).add(wire::attr::EvenPort{});
       },
       U, ec::kBadRequest, "EVEN-PORT and RESERVATION-TOKEN together"},
      {"RESERVATION-TOKEN with REQUESTED-ADDRESS-FAMILY",
       [](auto& b) {
         udp(b);
         b.add(wire::attr::ReservationToken{1});
         family(b, AttributeType::kRequestedAddressFamily, kV4);
       },
       U, ec::kBadRequest, "RESERVATION-TOKEN and REQUESTED-ADDRESS-FAMILY together"},
      {"RESERVATION-TOKEN with ADDITIONAL-ADDRESS-FAMILY",
       [](auto& b) {
         udp(b);
         b.add(wire::attr::ReservationToken{1});
         family(b, AttributeType::kAdditionalAddressFamily, kV6);
       },
       U, ec::kBadRequest, "RESERVATION-TOKEN and ADDITIONAL-ADDRESS-FAMILY together"},
      {"malformed RESERVATION-TOKEN",
       [](auto& b) {
         udp(b);
         raw(b, AttributeType::kReservationToken, {1, 2, 3, 4});
       },
       U, ec::kBadRequest, "Malformed RESERVATION-TOKEN"},
      // Step 6.
      {"REQUESTED- with ADDITIONAL-ADDRESS-FAMILY",
       [](auto& b) {
         udp(b);
         family(b, AttributeType::kRequestedAddressFamily, kV4);
         family(b, AttributeType::kAdditionalAddressFamily, kV6);
       },
       U, ec::kBadRequest, "REQUESTED-ADDRESS-FAMILY and ADDITIONAL-ADDRESS-FAMILY together"},
      // Decoded before step 7.
      {"malformed EVEN-PORT",
       [](auto& b) {
         udp(b);
         raw(b, AttributeType::kEvenPort, {});
       },
       U, ec::kBadRequest, "Malformed EVEN-PORT"},
      {"malformed LIFETIME",
       [](auto& b) {
         udp(b);
         raw(b, AttributeType::kLifetime, {0, 1});
       },
       U, ec::kBadRequest, "Malformed LIFETIME"},
      // Step 7.
      {"malformed REQUESTED-ADDRESS-FAMILY",
       [](auto& b) {
         udp(b);
         raw(b, AttributeType::kRequestedAddressFamily, {2});
       },
       U, ec::kBadRequest, "Malformed REQUESTED-ADDRESS-FAMILY"},
      {"unknown REQUESTED-ADDRESS-FAMILY",
       [](auto& b) {
         udp(b);
         family(b, AttributeType::kRequestedAddressFamily, 0x03);
       },
       U, ec::kAddressFamilyNotSupported, "Address Family not Supported: unknown family"},
      // Step 8.
      {"EVEN-PORT R with ADDITIONAL-ADDRESS-FAMILY",
       [](auto& b) {
         udp(b);
         b.add(wire::attr::EvenPort{true});
         family(b, AttributeType::kAdditionalAddressFamily, kV6);
       },
       U, ec::kBadRequest, "EVEN-PORT with R=1 and ADDITIONAL-ADDRESS-FAMILY together"},
      // Step 9.
      {"ADDITIONAL-ADDRESS-FAMILY IPv4",
       [](auto& b) {
         udp(b);
         family(b, AttributeType::kAdditionalAddressFamily, kV4);
       },
       U, ec::kBadRequest, "ADDITIONAL-ADDRESS-FAMILY must be IPv6"},
      {"malformed ADDITIONAL-ADDRESS-FAMILY (draft number)",
       [](auto& b) {
         udp(b);
         raw(b, AttributeType::kAdditionalAddressFamilyDraft, {2});
       },
       U, ec::kBadRequest, "ADDITIONAL-ADDRESS-FAMILY must be IPv6"},
      {"TCP with ADDITIONAL-ADDRESS-FAMILY",
       [](auto& b) {
         tcp(b);
         family(b, AttributeType::kAdditionalAddressFamily, kV6);
       },
       T, ec::kBadRequest, "ADDITIONAL-ADDRESS-FAMILY does not apply to TCP allocations"},
  };
  for (const Case& c : cases) {
    CAPTURE(c.name);
    const auto p = parse(c.add, c.client);
    REQUIRE_FALSE(p.has_value());
    CHECK(p.error().code == c.code);
    CHECK(p.error().reason == c.reason);
  }
}

TEST_CASE(
    "parseAllocate: the transport is judged first, and a malformed attribute is 400 before any "
    "440") {
  // Step 3 comes before everything: SCTP with a malformed LIFETIME is 442.
  auto p = parse([](wire::MessageBuilder& b) {
    b.add(wire::attr::RequestedTransport{132});
    raw(b, AttributeType::kLifetime, {0});
  });
  REQUIRE_FALSE(p.has_value());
  CHECK(p.error().code == ec::kUnsupportedTransportProtocol);
  // An unknown family (step 7: 440) with a malformed EVEN-PORT or LIFETIME is 400.
  for (const auto type : {AttributeType::kEvenPort, AttributeType::kLifetime}) {
    p = parse([type](wire::MessageBuilder& b) {
      udp(b);
      family(b, AttributeType::kRequestedAddressFamily, 0x03);
      raw(b, type, {1, 2});
    });
    REQUIRE_FALSE(p.has_value());
    CHECK(p.error().code == ec::kBadRequest);
  }
}

// --- Quota ----------------------------------------------------------------------------------

TEST_CASE(
    "takeQuota grants a slot with the user's bandwidth share, or refuses with 486 or 508 and "
    "counts it") {
  SUBCASE("granted") {
    Steps s;
    const auto admission = core::handlers::takeQuota(s.server, test::kTestUser);
    REQUIRE(admission.has_value());
    CHECK(admission->grant == core::AllocationQuota::Grant::kGranted);
    CHECK(admission->user != nullptr);
    CHECK(s.quota.total() == 1);
  }
  SUBCASE("the user's quota: 486") {
    test::ServicesOptions o;
    o.max_per_user = 1;
    Steps s(o);
    REQUIRE(core::handlers::takeQuota(s.server, test::kTestUser).has_value());
    const auto refused = core::handlers::takeQuota(s.server, test::kTestUser);
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == ec::kAllocationQuotaReached);
    CHECK(s.counters.quota_rejections[metrics::idx(metrics::Quota::kUserAllocations)].get() == 1);
    CHECK(s.quota.total() == 1);
    CHECK(core::handlers::takeQuota(s.server, "another-user").has_value());
  }
  SUBCASE("the server's quota: 508") {
    test::ServicesOptions o;
    o.max_total = 1;
    Steps s(o);
    REQUIRE(core::handlers::takeQuota(s.server, test::kTestUser).has_value());
    const auto refused = core::handlers::takeQuota(s.server, "another-user");
    REQUIRE_FALSE(refused.has_value());
    CHECK(refused.error().code == ec::kInsufficientCapacity);
    CHECK(s.counters.quota_rejections[metrics::idx(metrics::Quota::kTotalAllocations)].get() == 1);
  }
}

// --- Relay ----------------------------------------------------------------------------------

TEST_CASE("relayError: no address of the family is 440, every other failure 508") {
  using core::RelayError;
  using core::handlers::relayError;
  CHECK(relayError(RelayError::kFamilyNotConfigured, false).code == ec::kAddressFamilyNotSupported);
  CHECK(relayError(RelayError::kUnknownReservation, false).code == ec::kInsufficientCapacity);
  CHECK(relayError(RelayError::kOutOfSockets, false).code == ec::kInsufficientCapacity);
  CHECK(relayError(RelayError::kNoPortAvailable, false).code == ec::kInsufficientCapacity);
  CHECK(relayError(RelayError::kNoPortAvailable, false).reason ==
        "Insufficient Capacity: no relay port free");
  CHECK(relayError(RelayError::kNoPortAvailable, true).reason ==
        "Insufficient Capacity: no even/odd port pair free");
}

TEST_CASE(
    "openFirstRelay opens the relay socket asked for, or returns the quota and maps the failure") {
  Steps s;
  REQUIRE(core::handlers::takeQuota(s.server, test::kTestUser).has_value());
  core::RelayRequest request;
  SUBCASE("opened") {
    request.even_port = true;
    const auto relay = core::handlers::openFirstRelay(s.server, test::kTestUser, request);
    REQUIRE(relay.has_value());
    CHECK(s.output.open_relays.contains(relay->id));
    CHECK(s.output.last_request.even_port);
    CHECK(s.quota.total() == 1);
  }
  SUBCASE("no IPv6 relay address: 440") {
    request.family = wire::AddressFamily::kIPv6;
    const auto relay = core::handlers::openFirstRelay(s.server, test::kTestUser, request);
    REQUIRE_FALSE(relay.has_value());
    CHECK(relay.error().code == ec::kAddressFamilyNotSupported);
    CHECK(s.quota.total() == 0);
  }
  SUBCASE("unknown RESERVATION-TOKEN: 508") {
    request.reservation_token = 42;
    const auto relay = core::handlers::openFirstRelay(s.server, test::kTestUser, request);
    REQUIRE_FALSE(relay.has_value());
    CHECK(relay.error().code == ec::kInsufficientCapacity);
    CHECK(s.quota.total() == 0);
  }
  SUBCASE("no port free: 508") {
    s.output.ports_left = 0;
    const auto relay = core::handlers::openFirstRelay(s.server, test::kTestUser, request);
    REQUIRE_FALSE(relay.has_value());
    CHECK(relay.error().code == ec::kInsufficientCapacity);
    CHECK(s.quota.total() == 0);
  }
}

// --- Insert ---------------------------------------------------------------------------------

TEST_CASE("insertAllocation installs the allocation on the 5-tuple and counts it") {
  Steps s;
  const core::FiveTuple tuple{core::Transport::kUdp, *wire::SocketAddress::parse("192.0.2.7:40000"),
                              *wire::SocketAddress::parse("198.51.100.1:3478")};
  const Request request = allocateWith(udp);
  const auto view = request.view();
  const std::vector<std::uint8_t> key(16, 0x5A);
  const core::handlers::RequestContext ctx{tuple,
                                           view,
                                           s.now,
                                           test::kTestUser,
                                           key,
                                           1'700'000'000,
                                           AttributeType::kMessageIntegrity,
                                           std::nullopt};
  AllocateRequest params;
  SUBCASE("one relayed address") {
    const core::OpenedRelay relay{3, *wire::SocketAddress::parse("198.51.100.7:50006"), 0xABCD};
    core::Allocation& a = *core::handlers::insertAllocation(s.server, ctx, params, relay, nullptr,
                                                           std::chrono::seconds(600));
    CHECK(s.allocations.find(tuple) == &a);
    CHECK(s.allocations.findByRelay(3) == &a);
    CHECK(a.relayed() == relay.local);
    CHECK(a.username() == test::kTestUser);
    CHECK(a.expires() == s.now + std::chrono::seconds(600));
    CHECK(a.reservationToken() == 0xABCDu);
    CHECK_FALSE(a.tcp());
    CHECK(a.allocateTransaction() == view.transactionId());
    CHECK(s.counters
              .allocations_created[metrics::idx(metrics::ClientTransport::kUdp)]
                                  [metrics::idx(metrics::Family::kIPv4)]
              .get() == 1);
  }
  SUBCASE("a dual allocation opens its IPv6 relay, or records why it could not") {
    params.additional_ipv6 = true;
    const core::OpenedRelay relay{7, *wire::SocketAddress::parse("198.51.100.7:50014"),
                                  std::nullopt};
    s.output.ipv6 = true;
    core::Allocation& dual = *core::handlers::insertAllocation(s.server, ctx, params, relay, nullptr,
                                                              std::chrono::seconds(600));
    CHECK(dual.relays().size() == 2);
    CHECK(dual.additionalFamilyError() == 0);
    s.allocations.erase(dual);
    s.output.ipv6 = false;
    core::Allocation& single = *core::handlers::insertAllocation(s.server, ctx, params, relay,
                                                                nullptr, std::chrono::seconds(600));
    CHECK(single.relays().size() == 1);
    CHECK(single.additionalFamilyError() == ec::kAddressFamilyNotSupported);
  }
}
