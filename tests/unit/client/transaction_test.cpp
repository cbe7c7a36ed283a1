// The sans-I/O client transaction (RFC 8489 §6.2.1-6.2.2, §6.3.3) driven by fake time points,
// and the Binding request/response helpers (RFC 8489 §3, §14.1-14.2).
#include <doctest/doctest.h>

#include <chrono>
#include <cstdint>
#include <variant>
#include <vector>

#include "relay/client/binding.hpp"
#include "relay/client/transaction.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "relay/wire/message.hpp"
#include "support/hex.hpp"

namespace {

using namespace std::chrono_literals;
using tern::client::BindingFailure;
using tern::client::BindingSuccess;
using tern::client::ClientTransaction;
using tern::client::TimePoint;
using tern::wire::MessageBuilder;
using tern::wire::MessageClass;
using tern::wire::MessageView;
using tern::wire::Method;
using tern::wire::SocketAddress;
using tern::wire::TransactionId;
using Action = ClientTransaction::Action;
namespace attr = tern::wire::attr;

// An arbitrary fake "now"; the transaction never reads the real clock.
const TimePoint kStart = TimePoint{} + 1000h;

long long msSinceStart(TimePoint t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(t - kStart).count();
}

TransactionId transactionIdOf(const std::vector<std::uint8_t>& request) {
  TransactionId tid{};
  REQUIRE(request.size() >= 20);
  std::copy_n(request.begin() + 8, tid.size(), tid.begin());
  return tid;
}

struct Schedule {
  std::vector<long long> sends;  // ms after start
  long long timeout = -1;
};

// Polls exactly at each deadline, checking that just before it the answer is "wait".
Schedule run(ClientTransaction& tx) {
  Schedule s;
  TimePoint now = kStart;
  for (int step = 0; step < 50; ++step) {
    const Action action = tx.poll(now);
    if (action == Action::kTimedOut) {
      s.timeout = msSinceStart(now);
      break;
    }
    REQUIRE(action == Action::kSend);
    s.sends.push_back(msSinceStart(now));
    CHECK(tx.sends() == s.sends.size());
    CHECK(tx.poll(tx.deadline() - 1ms) == Action::kWait);
    now = tx.deadline();
  }
  return s;
}

// A response to `tid` built with MessageBuilder.
template <class... A>
std::vector<std::uint8_t> response(MessageClass cls, const TransactionId& tid, bool fingerprint,
                                   const A&... attributes) {
  std::vector<std::uint8_t> buffer(512);
  MessageBuilder b(buffer, Method::kBinding, cls, tid);
  (b.add(attributes), ...);
  if (fingerprint) b.addFingerprint();
  auto out = b.finish();
  REQUIRE(out.has_value());
  return {out->begin(), out->end()};
}

SocketAddress address(std::string_view text) {
  auto a = SocketAddress::parse(text);
  REQUIRE(a.has_value());
  return *a;
}

// --- Timing ---------------------------------------------------------------------------------

TEST_CASE("over UDP the request is sent at 0, 500, 1500, 3500, 7500, 15500 and 31500 ms and "
          "times out at 39500 ms (RFC 8489 §6.2.1)") {
  ClientTransaction tx(tern::client::makeBindingRequest(false), /*reliable=*/false);
  const Schedule s = run(tx);
  CHECK(s.sends == std::vector<long long>{0, 500, 1500, 3500, 7500, 15500, 31500});
  CHECK(s.timeout == 39500);
  CHECK(tx.sends() == 7);
  // Once timed out, it stays timed out.
  CHECK(tx.poll(kStart + 100s) == Action::kTimedOut);
}

TEST_CASE("over TCP the request is sent once and times out after Ti = 39.5 s "
          "(RFC 8489 §6.2.2)") {
  ClientTransaction tx(tern::client::makeBindingRequest(false), /*reliable=*/true);
  CHECK(tx.poll(kStart) == Action::kSend);
  CHECK(tx.deadline() == kStart + 39500ms);
  CHECK(tx.poll(kStart + 500ms) == Action::kWait);
  CHECK(tx.poll(kStart + 39499ms) == Action::kWait);
  CHECK(tx.poll(kStart + 39500ms) == Action::kTimedOut);
  CHECK(tx.sends() == 1);
  const Schedule s = [] {
    ClientTransaction again(tern::client::makeBindingRequest(false), /*reliable=*/true);
    return run(again);
  }();
  CHECK(s.sends == std::vector<long long>{0});
  CHECK(s.timeout == 39500);
}

TEST_CASE("a custom retransmit policy scales the schedule (RFC 8489 §6.2.1)") {
  tern::client::RetransmitPolicy policy;
  policy.initial_rto = std::chrono::milliseconds{100};
  policy.max_sends = 3;
  policy.last_wait_factor = 4;
  ClientTransaction tx(tern::client::makeBindingRequest(false), /*reliable=*/false, policy);
  const Schedule s = run(tx);
  CHECK(s.sends == std::vector<long long>{0, 100, 300});
  CHECK(s.timeout == 300 + 4 * 100);
}

TEST_CASE("a late poll sends at once and measures the next interval from then") {
  ClientTransaction tx(tern::client::makeBindingRequest(false), /*reliable=*/false);
  CHECK(tx.poll(kStart) == Action::kSend);
  CHECK(tx.poll(kStart + 800ms) == Action::kSend);  // 300 ms late
  CHECK(tx.deadline() == kStart + 800ms + 1000ms);
}

// --- Matching responses -----------------------------------------------------------------------

TEST_CASE("matchResponse accepts success and error responses with the request's transaction id "
          "(RFC 8489 §6.3.3)") {
  const auto request = tern::client::makeBindingRequest(true);
  const TransactionId tid = transactionIdOf(request);
  ClientTransaction tx(request, /*reliable=*/false);
  CHECK(tx.request().size() == request.size());

  const auto success = response(MessageClass::kSuccessResponse, tid, true,
                                attr::XorMappedAddress{address("192.0.2.1:32853")});
  auto matched = tx.matchResponse(success);
  REQUIRE(matched.has_value());
  CHECK(matched->messageClass() == MessageClass::kSuccessResponse);

  const auto error = response(MessageClass::kErrorResponse, tid, false,
                              attr::ErrorCode{400, "Bad Request"});
  CHECK(tx.matchResponse(error).has_value());
}

TEST_CASE("matchResponse ignores other transaction ids, requests, indications and garbage "
          "(RFC 8489 §6.3.3)") {
  const auto request = tern::client::makeBindingRequest(true);
  TransactionId tid = transactionIdOf(request);
  ClientTransaction tx(request, /*reliable=*/false);

  TransactionId other = tid;
  other[11] ^= 0x01;
  CHECK_FALSE(tx.matchResponse(response(MessageClass::kSuccessResponse, other, false)).has_value());
  // Its own request (e.g. looped back) and an indication are not responses.
  CHECK_FALSE(tx.matchResponse(request).has_value());
  CHECK_FALSE(tx.matchResponse(response(MessageClass::kIndication, tid, false)).has_value());
  CHECK_FALSE(tx.matchResponse(response(MessageClass::kRequest, tid, false)).has_value());
  // Not STUN at all, or cut short.
  CHECK_FALSE(tx.matchResponse({}).has_value());
  const auto ok = response(MessageClass::kSuccessResponse, tid, false);
  CHECK_FALSE(tx.matchResponse(tern::wire::Bytes{ok}.first(19)).has_value());
  CHECK(tx.matchResponse(ok).has_value());
}

TEST_CASE("matchResponse drops a response whose FINGERPRINT does not match (RFC 8489 §14.7)") {
  const auto request = tern::client::makeBindingRequest(false);
  ClientTransaction tx(request, /*reliable=*/false);
  auto bad = response(MessageClass::kSuccessResponse, transactionIdOf(request), true,
                      attr::Software{"x"});
  CHECK(tx.matchResponse(bad).has_value());
  bad.back() ^= 0x01;
  CHECK_FALSE(tx.matchResponse(bad).has_value());
}

// --- Binding helpers --------------------------------------------------------------------------

TEST_CASE("makeBindingRequest writes a Binding request with a random transaction id "
          "(RFC 8489 §6)") {
  const auto plain = tern::client::makeBindingRequest(false);
  CHECK(plain.size() == 20);
  auto m = MessageView::parse(plain);
  REQUIRE(m.has_value());
  CHECK(m->method() == static_cast<std::uint16_t>(Method::kBinding));
  CHECK(m->messageClass() == MessageClass::kRequest);
  CHECK_FALSE(m->hasFingerprint());

  const auto with_fp = tern::client::makeBindingRequest(true);
  CHECK(with_fp.size() == 28);
  auto f = MessageView::parse(with_fp);
  REQUIRE(f.has_value());
  CHECK(f->fingerprintMatches());

  CHECK(transactionIdOf(plain) != transactionIdOf(with_fp));
  CHECK(transactionIdOf(tern::client::makeBindingRequest(false)) != transactionIdOf(plain));
}

TEST_CASE("interpretBindingResponse reads XOR-MAPPED-ADDRESS and SOFTWARE (RFC 8489 §14.2)") {
  const auto request = tern::client::makeBindingRequest(true);
  const TransactionId tid = transactionIdOf(request);
  ClientTransaction tx(request, /*reliable=*/false);
  for (auto text : {"192.0.2.1:32853", "[2001:db8::1]:3478"}) {
    CAPTURE(text);
    // XOR-MAPPED-ADDRESS wins over a (NAT-rewritten) MAPPED-ADDRESS.
    const auto bytes = response(MessageClass::kSuccessResponse, tid, true,
                                attr::Software{"tern test"}, attr::MappedAddress{address("10.0.0.1:1")},
                                attr::XorMappedAddress{address(text)});
    auto m = tx.matchResponse(bytes);
    REQUIRE(m.has_value());
    const auto result = tern::client::interpretBindingResponse(*m);
    REQUIRE(std::holds_alternative<BindingSuccess>(result));
    const auto& ok = std::get<BindingSuccess>(result);
    CHECK(ok.mapped == address(text));
    CHECK(ok.software == "tern test");
  }
}

TEST_CASE("interpretBindingResponse falls back to MAPPED-ADDRESS from RFC 3489 servers "
          "(RFC 8489 §14.1)") {
  TransactionId tid{};
  tid[0] = 7;
  const auto bytes = response(MessageClass::kSuccessResponse, tid, false,
                              attr::MappedAddress{address("198.51.100.7:40000")});
  auto m = MessageView::parse(bytes);
  REQUIRE(m.has_value());
  const auto result = tern::client::interpretBindingResponse(*m);
  REQUIRE(std::holds_alternative<BindingSuccess>(result));
  CHECK(std::get<BindingSuccess>(result).mapped == address("198.51.100.7:40000"));
  CHECK(std::get<BindingSuccess>(result).software.empty());
}

TEST_CASE("interpretBindingResponse reports errors and responses it cannot use") {
  TransactionId tid{};
  {
    const auto bytes = response(MessageClass::kErrorResponse, tid, false,
                                attr::ErrorCode{401, "Unauthenticated"});
    const auto result = tern::client::interpretBindingResponse(*MessageView::parse(bytes));
    REQUIRE(std::holds_alternative<BindingFailure>(result));
    CHECK(std::get<BindingFailure>(result).code == 401);
    CHECK(std::get<BindingFailure>(result).reason == "Unauthenticated");
  }
  {
    const auto bytes = response(MessageClass::kErrorResponse, tid, false);
    const auto result = tern::client::interpretBindingResponse(*MessageView::parse(bytes));
    REQUIRE(std::holds_alternative<BindingFailure>(result));
    CHECK(std::get<BindingFailure>(result).code == 0);
  }
  {
    const auto bytes = response(MessageClass::kSuccessResponse, tid, false, attr::Software{"x"});
    const auto result = tern::client::interpretBindingResponse(*MessageView::parse(bytes));
    REQUIRE(std::holds_alternative<BindingFailure>(result));
    CHECK(std::get<BindingFailure>(result).code == 0);
  }
}

}  // namespace
