// RFC 8489 Appendix B.1: a request with USERHASH, PASSWORD-ALGORITHM and
// MESSAGE-INTEGRITY-SHA256 (RFC 8489 §9.2, §14.4, §14.6, §14.12). The RFC prints the header
// length as 0x009c, but the body is 0x0090 bytes and the MAC only verifies with 0x0090.
#include <doctest/doctest.h>

#include <array>
#include <cstdint>
#include <vector>

#include "auth/crypto.hpp"
#include "auth/message_integrity.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "relay/wire/message.hpp"
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
namespace attr = tern::wire::attr;
namespace auth = tern::auth;
namespace vectors = tern::test::vectors;

constexpr std::size_t kMacOffset = 20 + 36 + 48 + 16 + 8 + 4;  // value of MI-SHA256

std::vector<std::uint8_t> sha256Key() {
  return auth::longTermKey(auth::PasswordAlgorithmId::kSha256, vectors::kLongTermUsername,
                           vectors::kLongTermRealm, vectors::kLongTermPassword);
}

MessageView parsed(const std::vector<std::uint8_t>& bytes) {
  auto m = MessageView::parse(bytes);
  REQUIRE(m.has_value());
  return *m;
}

TEST_CASE("RFC 8489 B.1: the corrected request parses with its attribute values") {
  const auto bytes = fromHex(vectors::kRfc8489B1Request);
  const MessageView m = parsed(bytes);
  CHECK(m.method() == static_cast<std::uint16_t>(Method::kBinding));
  CHECK(m.messageClass() == MessageClass::kRequest);
  CHECK(m.header().length == 0x0090);
  CHECK(toHex(m.transactionId()) == "78ad3433c6ad72c029da412e");

  // RFC 8489 §14.4: USERHASH replaces USERNAME.
  CHECK_FALSE(m.has(AttributeType::kUsername));
  auto userhash = m.get<attr::Userhash>();
  REQUIRE(userhash.has_value());
  const auto expected_hash = auth::userhash(vectors::kLongTermUsername, vectors::kLongTermRealm);
  CHECK(toHex(userhash->value) == toHex(expected_hash));
  CHECK(toHex(expected_hash) ==
        "4a3cf38fef6992bda952c6780417da0f24819415569e60b205c46e41407f1704");

  auto nonce = m.get<attr::Nonce>();
  REQUIRE(nonce.has_value());
  CHECK(nonce->value == vectors::kRfc8489Nonce);
  auto realm = m.get<attr::Realm>();
  REQUIRE(realm.has_value());
  CHECK(realm->value == "example.org");

  // RFC 8489 §14.12: SHA-256 (0x0002) with no parameters.
  auto algorithm = m.get<attr::PasswordAlgorithm>();
  REQUIRE(algorithm.has_value());
  CHECK(algorithm->algorithm == static_cast<std::uint16_t>(attr::PasswordAlgorithmId::kSha256));
  CHECK(algorithm->parameters.empty());

  CHECK(m.has(AttributeType::kMessageIntegritySha256));
  CHECK_FALSE(m.has(AttributeType::kMessageIntegrity));
  CHECK_FALSE(m.hasFingerprint());
  CHECK(m.unknownComprehensionRequired().empty());
}

TEST_CASE("RFC 8489 B.1: MESSAGE-INTEGRITY-SHA256 verifies with SHA-256(username:realm:password) "
          "(RFC 8489 §9.2.2, §14.6)") {
  const auto bytes = fromHex(vectors::kRfc8489B1Request);
  const MessageView m = parsed(bytes);
  const auto key = sha256Key();
  CHECK(key.size() == 32);
  CHECK(auth::verifyIntegrity(m, AttributeType::kMessageIntegritySha256, key));
  // The MD5 key of the same credentials, and the SHA-1 MAC type, do not verify.
  const auto md5_key = auth::longTermKey(auth::PasswordAlgorithmId::kMd5, vectors::kLongTermUsername,
                                         vectors::kLongTermRealm, vectors::kLongTermPassword);
  CHECK_FALSE(auth::verifyIntegrity(m, AttributeType::kMessageIntegritySha256, md5_key));
  CHECK_FALSE(auth::verifyIntegrity(m, AttributeType::kMessageIntegrity, key));
}

TEST_CASE("RFC 8489 B.1: the printed length 0x009c does not match the 144-byte body "
          "(RFC 8489 §5)") {
  auto bytes = fromHex(vectors::kRfc8489B1Request);
  bytes[2] = 0x00;
  bytes[3] = 0x9c;
  auto m = MessageView::parse(bytes);
  REQUIRE_FALSE(m.has_value());
  CHECK(m.error() == ParseError::kLengthMismatch);
}

TEST_CASE("RFC 8489 B.1: the RFC's MAC is over a header length of 0x0090, not the printed "
          "0x009c (RFC 8489 §14.6)") {
  // The MAC input is the header with its length set to end just after MI-SHA256, then the
  // attributes before it. Patch only the length field of the valid message and compute the
  // HMAC directly: with 0x009c it does not match the MAC the RFC prints; with 0x0090 it does.
  const auto bytes = fromHex(vectors::kRfc8489B1Request);
  const auto key = sha256Key();
  const Bytes mac = Bytes{bytes}.subspan(kMacOffset, 32);
  const Bytes body = Bytes{bytes}.subspan(20, kMacOffset - 4 - 20);

  std::array<std::uint8_t, 20> header{};
  std::copy_n(bytes.begin(), 20, header.begin());
  header[3] = 0x9c;
  CHECK_FALSE(auth::constantTimeEqual(auth::hmacSha256(key, {header, body}), mac));
  header[3] = 0x90;
  CHECK(auth::constantTimeEqual(auth::hmacSha256(key, {header, body}), mac));
}

TEST_CASE("RFC 8489 B.1: attributes after MI-SHA256 do not change its verification, whatever "
          "the header length (RFC 8489 §14.6)") {
  // A receiver recomputes the length for the MAC, so a message that really is 0x009c long
  // (12 bytes of SOFTWARE after the MAC, which a receiver ignores) still verifies.
  auto bytes = fromHex(vectors::kRfc8489B1Request);
  const auto trailer = fromHex("80220008" "747261696c657273");  // SOFTWARE "trailers"
  bytes.insert(bytes.end(), trailer.begin(), trailer.end());
  bytes[3] = 0x9c;
  const MessageView m = parsed(bytes);
  CHECK_FALSE(m.has(AttributeType::kSoftware));
  CHECK(auth::verifyIntegrity(m, AttributeType::kMessageIntegritySha256, sha256Key()));
}

TEST_CASE("RFC 8489 B.1: a flipped byte fails MESSAGE-INTEGRITY-SHA256") {
  const auto original = fromHex(vectors::kRfc8489B1Request);
  const auto key = sha256Key();
  for (std::size_t i = 0; i < original.size(); ++i) {
    if (i == 2 || i == 3) continue;  // the length is recomputed, see above
    CAPTURE(i);
    auto tampered = original;
    tampered[i] ^= 0x40;
    auto m = MessageView::parse(tampered);
    if (!m) continue;
    CHECK_FALSE(auth::verifyIntegrity(*m, AttributeType::kMessageIntegritySha256, key));
  }
}

TEST_CASE("RFC 8489 B.1: the request re-encodes byte-identically") {
  const auto bytes = fromHex(vectors::kRfc8489B1Request);
  const MessageView m = parsed(bytes);
  const auto hash = auth::userhash(vectors::kLongTermUsername, vectors::kLongTermRealm);

  std::vector<std::uint8_t> buffer(512);
  MessageBuilder b(buffer, Method::kBinding, MessageClass::kRequest, m.transactionId());
  b.add(attr::Userhash{hash});
  b.add(attr::Nonce{vectors::kRfc8489Nonce});
  b.add(attr::Realm{vectors::kLongTermRealm});
  b.add(attr::PasswordAlgorithm{static_cast<std::uint16_t>(attr::PasswordAlgorithmId::kSha256), {}});
  auth::addIntegrity(b, AttributeType::kMessageIntegritySha256, sha256Key());
  auto out = b.finish();
  REQUIRE(out.has_value());
  CHECK(toHex(*out) == toHex(bytes));
}

TEST_CASE("MESSAGE-INTEGRITY-SHA256 truncated to 16 bytes verifies (RFC 8489 §14.6)") {
  // RFC 8489 §14.6: the value may be truncated to 16-32 bytes (a multiple of 4); the length
  // in the MAC input then ends after the truncated attribute.
  const auto key = sha256Key();
  const tern::wire::TransactionId tid{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
  for (std::size_t size = 16; size <= 32; size += 4) {
    CAPTURE(size);
    std::vector<std::uint8_t> buffer(256);
    MessageBuilder b(buffer, Method::kBinding, MessageClass::kRequest, tid);
    b.add(attr::Realm{"example.org"});
    b.addIntegrity(AttributeType::kMessageIntegritySha256, size,
                   [&](Bytes input, tern::wire::MutableBytes out) {
                     const auto full = auth::hmacSha256(key, {input});
                     std::copy_n(full.begin(), out.size(), out.begin());
                   });
    auto out = b.finish();
    REQUIRE(out.has_value());
    const std::vector<std::uint8_t> message(out->begin(), out->end());
    const MessageView m = parsed(message);
    CHECK(m.find(AttributeType::kMessageIntegritySha256)->value.size() == size);
    CHECK(auth::verifyIntegrity(m, AttributeType::kMessageIntegritySha256, key));
  }
}

}  // namespace
