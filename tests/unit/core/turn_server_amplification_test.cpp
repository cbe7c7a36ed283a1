// How many bytes tern answers per byte of an unauthenticated UDP request (DESIGN.md §4): the
// gain a spoofed-source flood would get by aiming tern at a victim. Each class of request a
// real client or an attacker can send without credentials has a bound here; the answers
// carry what RFC 8489 and RFC 8656 require and nothing optional.
#include <doctest/doctest.h>

#include <string>

#include "support/hex.hpp"
#include "support/turn_harness.hpp"
#include "vectors/first_requests.hpp"

using namespace tern;
using test::Reply;
using test::TurnHarness;
using wire::AttributeType;
using wire::Method;

namespace {

std::vector<std::uint8_t> message(std::uint16_t type, const std::string& attributes_hex = {}) {
  const auto attributes = test::fromHex(attributes_hex);
  std::vector<std::uint8_t> m = test::fromHex("0000 0000 2112a442 0102030405060708090a0b0c");
  wire::storeU16(m.data(), type);
  wire::storeU16(m.data() + 2, static_cast<std::uint16_t>(attributes.size()));
  m.insert(m.end(), attributes.begin(), attributes.end());
  return m;
}

struct RequestClass {
  const char* name;
  std::vector<std::uint8_t> request;
  std::uint16_t code;  // 0: success
  double max_ratio;    // answer bytes per request byte, with the test realm "example.org"
};

}  // namespace

TEST_CASE("answers to unauthenticated UDP requests stay within a bound per request class") {
  // With REALM "example.org" a 401 is 100 bytes (108 with FINGERPRINT): header 20, ERROR-CODE
  // without reason 8, REALM 16, NONCE 44, PASSWORD-ALGORITHMS 12. RFC 8489 §9.2.4 requires each.
  const std::vector<RequestClass> classes = {
      {"Chromium's first Binding", test::fromHex(test::vectors::kChromiumBinding), 0, 1.6},
      {"turnutils_stunclient's Binding", test::fromHex(test::vectors::kStunclientBinding), 0, 1.6},
      {"Chromium's first Allocate (REQUESTED-TRANSPORT only: the smallest that earns the "
       "challenge)",
       test::fromHex(test::vectors::kChromiumAllocate), 401, 3.6},
      {"python3-aioice's first Allocate", test::fromHex(test::vectors::kAioiceAllocate), 401, 2.8},
      {"turnutils_uclient's RTP Allocate", test::fromHex(test::vectors::kUclientRtpAllocate), 401,
       1.8},
      {"turnutils_uclient's RTCP Allocate", test::fromHex(test::vectors::kUclientRtcpAllocate), 401,
       2.0},
      {"turnutils_uclient -c Allocate", test::fromHex(test::vectors::kUclientSingleAllocate), 401,
       2.1},
      {"a Binding with an unknown comprehension-required attribute",
       message(0x0001, "00770004aabbccdd"), 420, 1.3},
      // The worst case: a bare 20-byte request earns the whole challenge, since RFC 8489
      // §9.2.4 gives no other answer to a request without credentials. The per-source limit
      // (turn_server_rate_limit_test.cpp) bounds what that can reflect.
      {"a bare Allocate (no REQUESTED-TRANSPORT)", message(0x0003), 401, 5.0},
      {"a bare Refresh", message(0x0004), 401, 5.0},
      {"a bare CreatePermission", message(0x0008), 401, 5.0},
      {"a bare ChannelBind", message(0x0009), 401, 5.0},
      {"a request of an unknown method", message(0x000F), 400, 1.4},
      {"a request whose attribute runs past its end", message(0x0003, "00190008"), 400, 1.2},
      // 438 Stale Nonce (issue 18): the same attributes as a 401, so the same size.
      {"an Allocate with MESSAGE-INTEGRITY and a forged NONCE",
       message(0x0003,
               "0019000411000000 0006000178000000 0014000b6578616d706c652e6f726700 0015000178000000"
               "00080014 0000000000000000000000000000000000000000"),
       438, 1.2},
  };
  for (const RequestClass& c : classes) {
    CAPTURE(c.name);
    TurnHarness h;
    h.fromClient(test::udpTuple("203.0.113.5:40000"), test::bytesOf(c.request));
    REQUIRE(h.output.sent.size() == 1);
    const Reply answer(h.output.sent[0].bytes);
    CHECK(answer.code() == c.code);
    const std::size_t answer_size = answer.bytes().size();
    const double ratio = static_cast<double>(answer_size) / static_cast<double>(c.request.size());
    CAPTURE(c.request.size());
    CAPTURE(answer_size);
    CHECK(ratio <= c.max_ratio);
    // Nothing optional goes to an address nobody verified.
    CHECK_FALSE(answer.has(AttributeType::kSoftware));
    CHECK(answer.reason().empty());
  }
}

TEST_CASE(
    "a Binding from an IPv6 client is answered with its 20-byte XOR-MAPPED-ADDRESS and nothing "
    "more") {
  TurnHarness h;
  const core::FiveTuple tuple{core::Transport::kUdp, test::socketAddress("[2001:db8::5]:40000"),
                              test::socketAddress("[2001:db8::1]:3478")};
  const auto request = test::fromHex(test::vectors::kChromiumBinding);
  h.fromClient(tuple, test::bytesOf(request));
  REQUIRE(h.output.sent.size() == 1);
  CHECK(h.output.sent[0].bytes.size() == 44);  // x2.2: the address is the point of the answer
}

TEST_CASE(
    "the 401 challenge is exactly what RFC 8489 §9.2.4 requires, in the order a client reads it") {
  TurnHarness h;
  const auto request = test::fromHex(test::vectors::kChromiumAllocate);
  h.fromClient(test::udpTuple("203.0.113.5:40000"), test::bytesOf(request));
  REQUIRE(h.output.sent.size() == 1);
  const Reply answer(h.output.sent[0].bytes);
  std::vector<std::uint16_t> types;
  answer.view().forEachAttribute([&](const wire::RawAttribute& a) { types.push_back(a.type); });
  CHECK(types ==
        std::vector<std::uint16_t>{static_cast<std::uint16_t>(AttributeType::kErrorCode),
                                   static_cast<std::uint16_t>(AttributeType::kRealm),
                                   static_cast<std::uint16_t>(AttributeType::kNonce),
                                   static_cast<std::uint16_t>(AttributeType::kPasswordAlgorithms)});
}
