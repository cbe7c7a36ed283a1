// MessageView on malformed and unusual input (RFC 8489 §5, §6.3, §14.5-14.7): every ParseError
// from a crafted message, truncations, the attributes that follow MESSAGE-INTEGRITY, unknown
// comprehension-required attributes, and the message type's method/class interleaving.
#include <doctest/doctest.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <initializer_list>
#include <set>
#include <string_view>
#include <vector>

#include "relay/wire/builder.hpp"
#include "relay/wire/message.hpp"
#include "relay/wire/stun_constants.hpp"
#include "support/hex.hpp"
#include "vectors/stun_vectors.hpp"

namespace {

using tern::test::fromHex;
using tern::test::toHex;
using tern::wire::AttributeType;
using tern::wire::Bytes;
using tern::wire::MessageBuilder;
using tern::wire::MessageClass;
using tern::wire::MessageView;
using tern::wire::Method;
using tern::wire::ParseError;
namespace vectors = tern::test::vectors;

constexpr tern::wire::TransactionId kTid{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};

// A heap copy of exactly `bytes.size()` bytes, so AddressSanitizer flags any read past the end
// (a std::vector may have spare capacity behind its last element).
struct ExactBuffer {
  explicit ExactBuffer(Bytes bytes)
      : size(bytes.size()), data(std::make_unique<std::uint8_t[]>(bytes.size())) {
    std::copy(bytes.begin(), bytes.end(), data.get());
  }
  Bytes view() const { return {data.get(), size}; }
  std::size_t size;
  std::unique_ptr<std::uint8_t[]> data;
};

// A STUN header (Binding request unless told, length = body size unless told) and `body_hex`.
std::vector<std::uint8_t> message(std::string_view body_hex,
                                  std::optional<std::uint16_t> length = std::nullopt,
                                  std::uint16_t type = 0x0001) {
  const auto body = fromHex(body_hex);
  // Sized once and copied into: GCC 12 at -O3 warns falsely (-Warray-bounds) on insert().
  std::vector<std::uint8_t> out(20 + body.size());
  tern::wire::storeU16(&out[0], type);
  tern::wire::storeU16(&out[2], length ? *length : static_cast<std::uint16_t>(body.size()));
  tern::wire::storeU32(&out[4], tern::wire::kMagicCookie);
  std::copy(kTid.begin(), kTid.end(), out.begin() + 8);
  std::copy(body.begin(), body.end(), out.begin() + 20);
  return out;
}

std::string_view parseResult(Bytes bytes) {
  const ExactBuffer exact(bytes);
  auto m = MessageView::parse(exact.view());
  return m ? std::string_view{"ok"} : tern::wire::describe(m.error());
}

std::string_view expected(ParseError e) { return tern::wire::describe(e); }

// `n` bytes of value `fill`, as hex.
std::string filler(std::size_t n, std::uint8_t fill = 0xAB) {
  return toHex(std::vector<std::uint8_t>(n, fill));
}

// An attribute TLV as hex: type, length, `value_bytes` bytes of value, zero padding.
std::string tlv(std::uint16_t type, std::size_t value_bytes) {
  std::vector<std::uint8_t> header(4);
  tern::wire::storeU16(&header[0], type);
  tern::wire::storeU16(&header[2], static_cast<std::uint16_t>(value_bytes));
  return toHex(header) + filler(value_bytes) + filler(tern::wire::padTo4(value_bytes) - value_bytes, 0);
}

constexpr std::uint16_t kMi = 0x0008;
constexpr std::uint16_t kMiSha256 = 0x001C;
constexpr std::uint16_t kFingerprint = 0x8028;
constexpr std::uint16_t kUsername = 0x0006;
constexpr std::uint16_t kSoftware = 0x8022;
constexpr std::uint16_t kRealm = 0x0014;

// --- Truncation ---------------------------------------------------------------------------

TEST_CASE("every truncation of a valid message is rejected without reading past it "
          "(RFC 8489 §6.3)") {
  for (auto hex : {vectors::kRfc5769Request, vectors::kRfc5769ResponseV4,
                   vectors::kRfc5769ResponseV6, vectors::kRfc5769LongTermRequest,
                   vectors::kRfc8489B1Request}) {
    const auto full = fromHex(hex);
    REQUIRE(parseResult(full) == "ok");
    for (std::size_t n = 0; n < full.size(); ++n) {
      CAPTURE(n);
      const auto prefix = Bytes{full}.first(n);
      CHECK(parseResult(prefix) ==
            expected(n < 20 ? ParseError::kTooShort : ParseError::kLengthMismatch));
      const ExactBuffer exact(prefix);
      CHECK(tern::wire::parseHeader(exact.view()).has_value() == (n >= 20));
    }
  }
}

// --- Each ParseError ------------------------------------------------------------------------

TEST_CASE("rejects fewer than 20 bytes (RFC 8489 §5)") {
  CHECK(parseResult({}) == expected(ParseError::kTooShort));
  const auto m = message("");
  CHECK(parseResult(Bytes{m}.first(19)) == expected(ParseError::kTooShort));
  CHECK(parseResult(m) == "ok");  // a header alone is a valid message
}

TEST_CASE("rejects a message whose two most significant bits are not zero (RFC 8489 §5)") {
  for (std::uint16_t top : std::initializer_list<std::uint16_t>{0x4000, 0x8000, 0xC000}) {
    CAPTURE(top);
    CHECK(parseResult(message("", std::nullopt, static_cast<std::uint16_t>(top | 0x0001))) ==
          expected(ParseError::kNotStun));
  }
  CHECK(parseResult(message("", std::nullopt, 0x3FFF)) == "ok");
}

TEST_CASE("rejects a bad magic cookie (RFC 8489 §6.3)") {
  auto m = message("");
  m[7] ^= 0x01;
  CHECK(parseResult(m) == expected(ParseError::kBadMagicCookie));
  // An RFC 3489 message has a random value there.
  auto classic = fromHex("00010000" "a1b2c3d4" "0102030405060708090a0b0c");
  CHECK(parseResult(classic) == expected(ParseError::kBadMagicCookie));
}

TEST_CASE("rejects a length that is not a multiple of 4 (RFC 8489 §5)") {
  for (std::uint16_t length : std::initializer_list<std::uint16_t>{1, 2, 3, 5, 6, 7, 0xFFFF}) {
    CAPTURE(length);
    CHECK(parseResult(message(filler(length), length)) ==
          expected(ParseError::kLengthNotMultipleOf4));
  }
}

TEST_CASE("rejects a length that does not match the bytes present, either way (RFC 8489 §5)") {
  const std::string body = tlv(kSoftware, 4);  // 8 bytes
  CHECK(parseResult(message(body, 4)) == expected(ParseError::kLengthMismatch));   // says less
  CHECK(parseResult(message(body, 12)) == expected(ParseError::kLengthMismatch));  // says more
  CHECK(parseResult(message(body, 0)) == expected(ParseError::kLengthMismatch));
  CHECK(parseResult(message(body, 8)) == "ok");
}

TEST_CASE("rejects an attribute that runs past the end of the message (RFC 8489 §14)") {
  // Length 8 with only 4 value bytes present.
  CHECK(parseResult(message("00060008" "61626364")) == expected(ParseError::kAttributeOverrun));
  // Length 5 needs 8 bytes with padding; only 4 are there.
  CHECK(parseResult(message("00060005" "61626364")) == expected(ParseError::kAttributeOverrun));
  // The second attribute overruns.
  CHECK(parseResult(message(tlv(kSoftware, 4) + "00140010" "61626364")) ==
        expected(ParseError::kAttributeOverrun));
  // The largest attribute length in a small message.
  CHECK(parseResult(message("8022ffff" "61626364")) == expected(ParseError::kAttributeOverrun));
  // A length of 5 that ends exactly at the end with its padding is fine.
  CHECK(parseResult(message("00060005" "6162636465000000")) == "ok");
}

TEST_CASE("rejects MESSAGE-INTEGRITY of other than 20 bytes (RFC 8489 §14.5)") {
  CHECK(parseResult(message(tlv(kMi, 19))) == expected(ParseError::kIntegrityLength));
  CHECK(parseResult(message(tlv(kMi, 21))) == expected(ParseError::kIntegrityLength));
  CHECK(parseResult(message(tlv(kMi, 0))) == expected(ParseError::kIntegrityLength));
  CHECK(parseResult(message(tlv(kMi, 20))) == "ok");
}

TEST_CASE("rejects MESSAGE-INTEGRITY-SHA256 outside 16-32 bytes or not a multiple of 4 "
          "(RFC 8489 §14.6)") {
  for (std::size_t n : std::initializer_list<std::size_t>{0, 12, 15, 17, 18, 30, 33, 36}) {
    CAPTURE(n);
    CHECK(parseResult(message(tlv(kMiSha256, n))) == expected(ParseError::kIntegrityLength));
  }
  for (std::size_t n : std::initializer_list<std::size_t>{16, 20, 24, 28, 32}) {
    CAPTURE(n);
    CHECK(parseResult(message(tlv(kMiSha256, n))) == "ok");
  }
}

TEST_CASE("rejects FINGERPRINT of other than 4 bytes (RFC 8489 §14.7)") {
  CHECK(parseResult(message(tlv(kFingerprint, 3))) == expected(ParseError::kIntegrityLength));
  CHECK(parseResult(message(tlv(kFingerprint, 8))) == expected(ParseError::kIntegrityLength));
  CHECK(parseResult(message(tlv(kFingerprint, 0))) == expected(ParseError::kIntegrityLength));
  CHECK(parseResult(message(tlv(kFingerprint, 4))) == "ok");
}

TEST_CASE("rejects an attribute after FINGERPRINT (RFC 8489 §14.7)") {
  CHECK(parseResult(message(tlv(kFingerprint, 4) + tlv(kSoftware, 4))) ==
        expected(ParseError::kFingerprintNotLast));
  CHECK(parseResult(message(tlv(kFingerprint, 4) + tlv(kFingerprint, 4))) ==
        expected(ParseError::kFingerprintNotLast));
  // Even after MESSAGE-INTEGRITY, where other attributes are merely ignored.
  CHECK(parseResult(message(tlv(kMi, 20) + tlv(kFingerprint, 4) + tlv(kSoftware, 0))) ==
        expected(ParseError::kFingerprintNotLast));
}

TEST_CASE("every ParseError has its own description") {
  std::set<std::string_view> seen;
  for (auto e : {ParseError::kTooShort, ParseError::kNotStun, ParseError::kBadMagicCookie,
                 ParseError::kLengthNotMultipleOf4, ParseError::kLengthMismatch,
                 ParseError::kAttributeOverrun, ParseError::kIntegrityLength,
                 ParseError::kFingerprintNotLast}) {
    CHECK_FALSE(tern::wire::describe(e).empty());
    seen.insert(tern::wire::describe(e));
  }
  CHECK(seen.size() == 8);
}

TEST_CASE("parseHeader accepts a stream holding more than one message (RFC 8656 §6.2)") {
  auto stream = fromHex(vectors::kRfc5769ResponseV4);
  const auto second = fromHex(vectors::kRfc5769Request);
  stream.insert(stream.end(), second.begin(), second.end());
  auto h = tern::wire::parseHeader(stream);
  REQUIRE(h.has_value());
  CHECK(h->length == 0x3c);
  CHECK(h->method() == static_cast<std::uint16_t>(Method::kBinding));
  CHECK(h->messageClass() == MessageClass::kSuccessResponse);
  CHECK_FALSE(h->isRequest());
  CHECK(parseResult(stream) == expected(ParseError::kLengthMismatch));
}

// --- What follows MESSAGE-INTEGRITY ---------------------------------------------------------

TEST_CASE("attributes after MESSAGE-INTEGRITY are ignored except MI-SHA256 and FINGERPRINT "
          "(RFC 8489 §14.5)") {
  const auto bytes = message(tlv(kUsername, 4) + tlv(kMi, 20) + tlv(kSoftware, 3) +
                             tlv(kRealm, 5) + tlv(kMiSha256, 32) + tlv(kFingerprint, 4));
  auto m = MessageView::parse(bytes);
  REQUIRE(m.has_value());
  CHECK(m->has(AttributeType::kUsername));
  CHECK(m->has(AttributeType::kMessageIntegrity));
  CHECK_FALSE(m->has(AttributeType::kSoftware));
  CHECK_FALSE(m->has(AttributeType::kRealm));
  CHECK(m->has(AttributeType::kMessageIntegritySha256));
  CHECK(m->has(AttributeType::kFingerprint));
  CHECK(m->hasFingerprint());
  CHECK(m->find(AttributeType::kMessageIntegrity)->offset == 28);

  std::vector<std::uint16_t> visited;
  m->forEachAttribute([&](const tern::wire::RawAttribute& a) { visited.push_back(a.type); });
  CHECK(visited == std::vector<std::uint16_t>{kUsername});
}

TEST_CASE("attributes after MESSAGE-INTEGRITY-SHA256 are ignored except FINGERPRINT "
          "(RFC 8489 §14.6)") {
  const auto bytes = message(tlv(kUsername, 4) + tlv(kMiSha256, 32) + tlv(kMi, 20) +
                             tlv(kSoftware, 3) + tlv(kFingerprint, 4));
  auto m = MessageView::parse(bytes);
  REQUIRE(m.has_value());
  CHECK(m->has(AttributeType::kUsername));
  CHECK(m->has(AttributeType::kMessageIntegritySha256));
  CHECK_FALSE(m->has(AttributeType::kMessageIntegrity));
  CHECK_FALSE(m->has(AttributeType::kSoftware));
  CHECK(m->has(AttributeType::kFingerprint));
  CHECK_FALSE(m->integrityInput(AttributeType::kMessageIntegrity).has_value());
}

TEST_CASE("a second MESSAGE-INTEGRITY is ignored, whatever its size (RFC 8489 §14.5)") {
  const auto bytes = message(tlv(kMi, 20) + tlv(kMi, 19));
  auto m = MessageView::parse(bytes);
  REQUIRE(m.has_value());
  CHECK(m->find(AttributeType::kMessageIntegrity)->offset == 20);
  // A second MI-SHA256 is ignored as well.
  CHECK(parseResult(message(tlv(kMiSha256, 16) + tlv(kMiSha256, 13))) == "ok");
}

TEST_CASE("integrityInput's header length ends just after the integrity attribute "
          "(RFC 8489 §14.5)") {
  const auto bytes = fromHex(vectors::kRfc5769Request);
  auto m = MessageView::parse(bytes);
  REQUIRE(m.has_value());
  auto in = m->integrityInput(AttributeType::kMessageIntegrity);
  REQUIRE(in.has_value());
  // 0x58 minus the 8-byte FINGERPRINT that follows.
  CHECK(tern::wire::loadU16(&in->header[2]) == 0x50);
  CHECK(toHex(Bytes{in->header}.first(2)) == "0001");
  CHECK(toHex(Bytes{in->header}.subspan(4)) == toHex(Bytes{bytes}.subspan(4, 16)));
  CHECK(in->body.size() == 0x50 - 24);
  CHECK(in->body.data() == bytes.data() + 20);
  CHECK(in->mac.size() == 20);
  CHECK(in->mac.data() == bytes.data() + 20 + 0x50 - 20);
  // Only the two integrity attributes have an input.
  CHECK_FALSE(m->integrityInput(AttributeType::kFingerprint).has_value());
  CHECK_FALSE(m->integrityInput(AttributeType::kUsername).has_value());
  CHECK_FALSE(m->integrityInput(AttributeType::kMessageIntegritySha256).has_value());
}

// --- Unknown comprehension-required attributes ---------------------------------------------

TEST_CASE("unknownComprehensionRequired lists unknown types below 0x8000 once each, ignoring "
          "those after MESSAGE-INTEGRITY (RFC 8489 §6.3.1)") {
  const auto bytes = message(tlv(0x7FFF, 4) + tlv(0x0050, 4) + tlv(0x8FFF, 4) + tlv(0x7FFF, 0) +
                             tlv(kUsername, 4) + tlv(0x0003, 4) + tlv(0xC001, 1) + tlv(kMi, 20) +
                             tlv(0x0030, 4));
  auto m = MessageView::parse(bytes);
  REQUIRE(m.has_value());
  const auto unknown = m->unknownComprehensionRequired();
  CHECK(std::vector<std::uint16_t>(unknown.begin(), unknown.end()) ==
        std::vector<std::uint16_t>{0x7FFF, 0x0050, 0x0003});
}

TEST_CASE("unknownComprehensionRequired keeps the first 16 distinct types") {
  std::string body;
  for (std::uint16_t t = 0x7000; t < 0x7014; ++t) body += tlv(t, 0);
  auto bytes = message(body);
  auto m = MessageView::parse(bytes);
  REQUIRE(m.has_value());
  const auto unknown = m->unknownComprehensionRequired();
  REQUIRE(unknown.size() == 16);
  CHECK(unknown[0] == 0x7000);
  CHECK(unknown[15] == 0x700F);
}

TEST_CASE("comprehension-required types are those below 0x8000 (RFC 8489 §14)") {
  CHECK(tern::wire::isKnownAttribute(0x0020));
  CHECK_FALSE(tern::wire::isKnownAttribute(0x0050));
  // RFC 8445 §16.1: PRIORITY and USE-CANDIDATE are known, so ICE checks are not refused.
  CHECK(tern::wire::isKnownAttribute(0x0024));
  CHECK(tern::wire::isKnownAttribute(0x0025));
  CHECK(tern::wire::isComprehensionRequired(0x7FFF));
  CHECK_FALSE(tern::wire::isComprehensionRequired(0x8000));
}

// --- Message type -----------------------------------------------------------------------------

constexpr Method kAllMethods[] = {
    Method::kBinding,          Method::kAllocate,    Method::kRefresh,
    Method::kSend,             Method::kData,        Method::kCreatePermission,
    Method::kChannelBind,      Method::kConnect,     Method::kConnectionBind,
    Method::kConnectionAttempt};
constexpr MessageClass kAllClasses[] = {MessageClass::kRequest, MessageClass::kIndication,
                                        MessageClass::kSuccessResponse,
                                        MessageClass::kErrorResponse};

TEST_CASE("message type interleaves method and class bits and round-trips (RFC 8489 §5)") {
  for (Method method : kAllMethods) {
    for (MessageClass cls : kAllClasses) {
      const auto type = tern::wire::encodeMessageType(method, cls);
      CAPTURE(type);
      CHECK(type < 0x4000);
      CHECK(tern::wire::methodOf(type) == static_cast<std::uint16_t>(method));
      CHECK(tern::wire::classOf(type) == cls);
      CHECK(tern::wire::methodName(tern::wire::methodOf(type)) != "Unknown");
    }
  }
  // Every 12-bit method, not only the registered ones.
  for (std::uint16_t m = 0; m <= 0xFFF; ++m) {
    for (MessageClass cls : kAllClasses) {
      const auto type = tern::wire::encodeMessageType(static_cast<Method>(m), cls);
      if (tern::wire::methodOf(type) != m || tern::wire::classOf(type) != cls) {
        FAIL("method " << m << " class " << static_cast<int>(cls) << " type " << type);
      }
    }
  }
  // And every 14-bit type decodes to a method and class that encode back to it.
  for (std::uint16_t type = 0; type < 0x4000; ++type) {
    const auto back = tern::wire::encodeMessageType(
        static_cast<Method>(tern::wire::methodOf(type)), tern::wire::classOf(type));
    if (back != type) FAIL("type " << type << " re-encodes as " << back);
  }
}

TEST_CASE("message types have the values of the IANA registry (RFC 8489 §5, RFC 8656 §17, "
          "RFC 6062 §6.1)") {
  using tern::wire::encodeMessageType;
  CHECK(encodeMessageType(Method::kBinding, MessageClass::kRequest) == 0x0001);
  CHECK(encodeMessageType(Method::kBinding, MessageClass::kIndication) == 0x0011);
  CHECK(encodeMessageType(Method::kBinding, MessageClass::kSuccessResponse) == 0x0101);
  CHECK(encodeMessageType(Method::kBinding, MessageClass::kErrorResponse) == 0x0111);
  CHECK(encodeMessageType(Method::kAllocate, MessageClass::kRequest) == 0x0003);
  CHECK(encodeMessageType(Method::kAllocate, MessageClass::kSuccessResponse) == 0x0103);
  CHECK(encodeMessageType(Method::kAllocate, MessageClass::kErrorResponse) == 0x0113);
  CHECK(encodeMessageType(Method::kRefresh, MessageClass::kRequest) == 0x0004);
  CHECK(encodeMessageType(Method::kSend, MessageClass::kIndication) == 0x0016);
  CHECK(encodeMessageType(Method::kData, MessageClass::kIndication) == 0x0017);
  CHECK(encodeMessageType(Method::kCreatePermission, MessageClass::kRequest) == 0x0008);
  CHECK(encodeMessageType(Method::kChannelBind, MessageClass::kRequest) == 0x0009);
  CHECK(encodeMessageType(Method::kConnect, MessageClass::kRequest) == 0x000A);
  CHECK(encodeMessageType(Method::kConnectionBind, MessageClass::kRequest) == 0x000B);
  CHECK(encodeMessageType(Method::kConnectionAttempt, MessageClass::kIndication) == 0x001C);
  CHECK(encodeMessageType(static_cast<Method>(0xFFF), MessageClass::kRequest) == 0x3EEF);
  CHECK(encodeMessageType(static_cast<Method>(0xFFF), MessageClass::kErrorResponse) == 0x3FFF);
}

TEST_CASE("the builder writes the type, length, cookie and transaction id (RFC 8489 §5)") {
  std::vector<std::uint8_t> buffer(64);
  MessageBuilder b(buffer, Method::kAllocate, MessageClass::kErrorResponse, kTid);
  b.addRaw(kSoftware, fromHex("616263"));
  auto out = b.finish();
  REQUIRE(out.has_value());
  CHECK(toHex(*out) == "01130008" "2112a442" "0102030405060708090a0b0c" "80220003" "61626300");
  auto m = MessageView::parse(*out);
  REQUIRE(m.has_value());
  CHECK(m->method() == static_cast<std::uint16_t>(Method::kAllocate));
  CHECK(m->messageClass() == MessageClass::kErrorResponse);
  CHECK(m->transactionId() == kTid);
}

}  // namespace
