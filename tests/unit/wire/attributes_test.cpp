// Typed attributes of relay/wire/attributes.hpp: each one round-trips through MessageBuilder
// and MessageView::get<>, writes the bytes the RFC lays out, and rejects values outside its
// limits on decode and encode (RFC 8489 §14, RFC 8656 §18, RFC 6062 §6.2, RFC 7635 §6,
// RFC 8016 §3).
#include <doctest/doctest.h>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <vector>

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
using tern::wire::Header;
using tern::wire::IpAddress;
using tern::wire::MessageBuilder;
using tern::wire::MessageClass;
using tern::wire::MessageView;
using tern::wire::Method;
using tern::wire::SocketAddress;
using tern::wire::TransactionId;
namespace attr = tern::wire::attr;

constexpr TransactionId kTid{0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87, 0xdf, 0xae};

Header header(const TransactionId& tid = kTid) {
  Header h;
  h.transaction_id = tid;
  return h;
}

SocketAddress address(std::string_view text) {
  auto a = SocketAddress::parse(text);
  REQUIRE(a.has_value());
  return *a;
}

// A message holding the attributes added by the constructor's caller, kept alive so that
// decoded values, which borrow it, stay valid.
class Encoded {
 public:
  template <class... A>
  explicit Encoded(const A&... attributes) : buffer_(2048) {
    MessageBuilder b(buffer_, Method::kBinding, MessageClass::kRequest, kTid);
    (b.add(attributes), ...);
    auto out = b.finish();
    ok_ = out.has_value();
    buffer_.resize(ok_ ? out->size() : 0);
  }

  bool ok() const { return ok_; }
  MessageView view() const {
    auto m = MessageView::parse(buffer_);
    REQUIRE(m.has_value());
    return *m;
  }
  template <class A>
  std::optional<A> get() const {
    return view().get<A>();
  }
  // The whole first attribute (type, length, value, padding) as hex.
  std::string attributeHex() const {
    REQUIRE(buffer_.size() > 20);
    return toHex(Bytes{buffer_}.subspan(20));
  }

 private:
  std::vector<std::uint8_t> buffer_;
  bool ok_ = false;
};

std::vector<std::uint8_t> filled(std::size_t n, std::uint8_t fill = 0x61) {
  return std::vector<std::uint8_t>(n, fill);
}

// Decoding succeeds for the listed value sizes only.
template <class A>
void checkOnlySizes(std::initializer_list<std::size_t> valid, std::uint8_t fill = 0x00) {
  for (std::size_t n = 0; n <= 40; ++n) {
    CAPTURE(n);
    bool expected = false;
    for (std::size_t v : valid) expected = expected || v == n;
    const auto value = filled(n, fill);
    CHECK(A::decode(value, header()).has_value() == expected);
  }
}

// --- Addresses ------------------------------------------------------------------------------

TEST_CASE("XOR-MAPPED-ADDRESS of 192.0.2.1:32853 is XORed with the magic cookie, as in "
          "RFC 5769 §2.2 (RFC 8489 §14.2)") {
  const Encoded e(attr::XorMappedAddress{address("192.0.2.1:32853")});
  REQUIRE(e.ok());
  CHECK(e.attributeHex() == "00200008" "0001a147e112a643");
  CHECK(toHex(fromHex(tern::test::vectors::kRfc5769ResponseV4)).find(e.attributeHex()) !=
        std::string::npos);
  auto back = e.get<attr::XorMappedAddress>();
  REQUIRE(back.has_value());
  CHECK(back->address == address("192.0.2.1:32853"));
}

TEST_CASE("XOR-MAPPED-ADDRESS of an IPv6 address is XORed with cookie and transaction id, as in "
          "RFC 5769 §2.3 (RFC 8489 §14.2)") {
  const auto a = address("[2001:db8:1234:5678:11:2233:4455:6677]:32853");
  const Encoded e(attr::XorMappedAddress{a});
  REQUIRE(e.ok());
  CHECK(e.attributeHex() == "00200014" "0002a147" "0113a9faa5d3f179bc25f4b5bed2b9d9");
  auto back = e.get<attr::XorMappedAddress>();
  REQUIRE(back.has_value());
  CHECK(back->address == a);

  // The IPv6 mask includes the transaction id, the IPv4 mask does not.
  const auto value = fromHex("0002a147" "0113a9faa5d3f179bc25f4b5bed2b9d9");
  const TransactionId other{};
  CHECK(*attr::decodeXorAddress(value, other) != a);
  const auto v4 = fromHex("0001a147e112a643");
  CHECK(attr::decodeXorAddress(v4, other) == attr::decodeXorAddress(v4, kTid));
}

TEST_CASE_TEMPLATE("XOR address attributes round-trip IPv4 and IPv6 (RFC 8489 §14.2, "
                   "RFC 8656 §18.3, §18.5)",
                   A, attr::XorMappedAddress, attr::XorPeerAddress, attr::XorRelayedAddress) {
  for (auto text : {"192.0.2.1:32853", "0.0.0.0:0", "255.255.255.255:65535", "[::]:0",
                    "[2001:db8::1]:3478", "[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"}) {
    CAPTURE(text);
    const Encoded e(A{address(text)});
    REQUIRE(e.ok());
    auto back = e.template get<A>();
    REQUIRE(back.has_value());
    CHECK(back->address == address(text));
  }
}

TEST_CASE_TEMPLATE("plain address attributes round-trip IPv4 and IPv6 (RFC 8489 §14.1, "
                   "§14.15)",
                   A, attr::MappedAddress, attr::AlternateServer) {
  for (auto text : {"192.0.2.1:32853", "[2001:db8::1]:3478"}) {
    CAPTURE(text);
    const Encoded e(A{address(text)});
    REQUIRE(e.ok());
    auto back = e.template get<A>();
    REQUIRE(back.has_value());
    CHECK(back->address == address(text));
  }
  const Encoded e(A{address("192.0.2.1:32853")});
  CHECK(e.attributeHex().substr(8) == "00018055c0000201");
}

TEST_CASE("address attributes reject bad families and sizes (RFC 8489 §14.1)") {
  for (auto hex : {"", "0001", "000180", "00018055", "00018055c00002", "00018055c000020100",
                   "00028055c0000201", "00038055c0000201",
                   "00018055" "20010db8000000000000000000000001",
                   "00028055" "20010db8000000000000000000000001" "00"}) {
    CAPTURE(hex);
    const auto value = fromHex(hex);
    CHECK_FALSE(attr::decodeAddress(value).has_value());
    CHECK_FALSE(attr::decodeXorAddress(value, kTid).has_value());
  }
  CHECK(attr::decodeAddress(fromHex("00028055" "20010db8000000000000000000000001")).has_value());
}

// --- Text -----------------------------------------------------------------------------------

TEST_CASE_TEMPLATE("text attributes round-trip up to their byte limit and reject one byte more "
                   "(RFC 8489 §14.3, §14.9-14.10, §14.14, §14.16, RFC 7635 §6.1)",
                   A, attr::Username, attr::Realm, attr::Nonce, attr::Software,
                   attr::AlternateDomain, attr::ThirdPartyAuthorization) {
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{5}, A::kMaxBytes}) {
    CAPTURE(n);
    const std::string text(n, 'x');
    const Encoded e(A{text});
    REQUIRE(e.ok());
    auto back = e.template get<A>();
    REQUIRE(back.has_value());
    CHECK(back->value == text);
  }
  const std::string too_long(A::kMaxBytes + 1, 'x');
  // Encoding turns the builder bad.
  const Encoded e(A{too_long});
  CHECK_FALSE(e.ok());
  // Decoding the raw attribute fails, though the attribute is present.
  std::vector<std::uint8_t> buffer(2048);
  MessageBuilder b(buffer, Method::kBinding, MessageClass::kRequest, kTid);
  b.addRaw(static_cast<std::uint16_t>(A::kType), tern::wire::asBytes(too_long));
  auto out = b.finish();
  REQUIRE(out.has_value());
  auto m = MessageView::parse(*out);
  REQUIRE(m.has_value());
  CHECK(m->has(A::kType));
  CHECK_FALSE(m->template get<A>().has_value());
}

TEST_CASE("text limits are the RFCs' (RFC 8489 §14.3, §14.9, §14.10, §14.14, §14.16)") {
  CHECK(attr::Username::kMaxBytes == 508);
  CHECK(attr::Realm::kMaxBytes == 763);
  CHECK(attr::Nonce::kMaxBytes == 763);
  CHECK(attr::Software::kMaxBytes == 763);
  CHECK(attr::AlternateDomain::kMaxBytes == 255);
}

// --- Opaque ---------------------------------------------------------------------------------

TEST_CASE("DATA round-trips empty and large payloads (RFC 8656 §18.4)") {
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{1500}}) {
    CAPTURE(n);
    const auto payload = filled(n, 0x5a);
    const Encoded e(attr::Data{payload});
    REQUIRE(e.ok());
    auto back = e.get<attr::Data>();
    REQUIRE(back.has_value());
    CHECK(toHex(back->value) == toHex(payload));
  }
}

TEST_CASE_TEMPLATE("opaque attributes reject an empty value (RFC 7635 §6.2, RFC 8016 §3.1)", A,
                   attr::AccessToken, attr::MobilityTicket) {
  const auto one = filled(1);
  const Encoded e(A{one});
  REQUIRE(e.ok());
  auto back = e.template get<A>();
  REQUIRE(back.has_value());
  CHECK(back->value.size() == 1);
  CHECK_FALSE(A::decode({}, header()).has_value());
  CHECK_FALSE(Encoded(A{}).ok());
}

TEST_CASE("USERHASH is exactly 32 bytes (RFC 8489 §14.4)") {
  const auto hash = filled(32, 0x42);
  const Encoded e(attr::Userhash{hash});
  REQUIRE(e.ok());
  CHECK(toHex(e.get<attr::Userhash>()->value) == toHex(hash));
  checkOnlySizes<attr::Userhash>({32});
  const auto short_hash = filled(31);
  CHECK_FALSE(Encoded(attr::Userhash{short_hash}).ok());
}

TEST_CASE("MESSAGE-INTEGRITY is 20 bytes and MESSAGE-INTEGRITY-SHA256 16-32 "
          "(RFC 8489 §14.5-14.6)") {
  const auto mac20 = filled(20, 0x33);
  const Encoded e(attr::MessageIntegrity{mac20});
  REQUIRE(e.ok());
  CHECK(toHex(e.get<attr::MessageIntegrity>()->value) == toHex(mac20));
  checkOnlySizes<attr::MessageIntegrity>({20});

  for (std::size_t n : {std::size_t{16}, std::size_t{24}, std::size_t{32}}) {
    const auto mac = filled(n, 0x44);
    const Encoded e256(attr::MessageIntegritySha256{mac});
    REQUIRE(e256.ok());
    CHECK(e256.get<attr::MessageIntegritySha256>()->value.size() == n);
  }
  checkOnlySizes<attr::MessageIntegritySha256>(
      {16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32});
}

// --- Fixed-size numbers ---------------------------------------------------------------------

TEST_CASE("CHANNEL-NUMBER is the channel then 16 RFFU bits (RFC 8656 §18.1)") {
  const Encoded e(attr::ChannelNumber{0x4001});
  REQUIRE(e.ok());
  CHECK(e.attributeHex() == "000c0004" "40010000");
  CHECK(e.get<attr::ChannelNumber>()->number == 0x4001);
  // RFFU bits are ignored on receipt.
  CHECK(attr::ChannelNumber::decode(fromHex("4fffffff"), header())->number == 0x4fff);
  checkOnlySizes<attr::ChannelNumber>({4});
}

TEST_CASE("LIFETIME is 32 bits of seconds (RFC 8656 §18.2)") {
  const Encoded e(attr::Lifetime{600});
  REQUIRE(e.ok());
  CHECK(e.attributeHex() == "000d0004" "00000258");
  CHECK(e.get<attr::Lifetime>()->seconds == 600);
  CHECK(Encoded(attr::Lifetime{0xFFFFFFFF}).get<attr::Lifetime>()->seconds == 0xFFFFFFFF);
  checkOnlySizes<attr::Lifetime>({4});
}

TEST_CASE("REQUESTED-TRANSPORT is a protocol number and 24 RFFU bits (RFC 8656 §18.8)") {
  const Encoded e(attr::RequestedTransport{attr::RequestedTransport::kUdp});
  REQUIRE(e.ok());
  CHECK(e.attributeHex() == "00190004" "11000000");
  CHECK(e.get<attr::RequestedTransport>()->protocol == 17);
  CHECK(Encoded(attr::RequestedTransport{attr::RequestedTransport::kTcp})
            .get<attr::RequestedTransport>()
            ->protocol == 6);
  checkOnlySizes<attr::RequestedTransport>({4});
}

TEST_CASE_TEMPLATE("address family attributes keep the raw family byte (RFC 8656 §18.6, "
                   "§18.11)",
                   A, attr::RequestedAddressFamily, attr::AdditionalAddressFamily) {
  for (std::uint8_t family : std::initializer_list<std::uint8_t>{0x01, 0x02, 0x03, 0xff}) {
    CAPTURE(family);
    const Encoded e(A{family});
    REQUIRE(e.ok());
    CHECK(e.attributeHex().substr(8) == toHex(std::vector<std::uint8_t>{family, 0, 0, 0}));
    CHECK(e.template get<A>()->family == family);
  }
  checkOnlySizes<A>({4});
}

TEST_CASE("EVEN-PORT carries the R bit in the top bit of one byte (RFC 8656 §18.7)") {
  const Encoded reserve(attr::EvenPort{true});
  REQUIRE(reserve.ok());
  CHECK(reserve.attributeHex() == "00180001" "80000000");
  CHECK(reserve.get<attr::EvenPort>()->reserve_next);
  const Encoded no_reserve(attr::EvenPort{false});
  CHECK(no_reserve.attributeHex() == "00180001" "00000000");
  CHECK_FALSE(no_reserve.get<attr::EvenPort>()->reserve_next);
  // The other seven bits are RFFU.
  CHECK_FALSE(attr::EvenPort::decode(fromHex("7f"), header())->reserve_next);
  CHECK(attr::EvenPort::decode(fromHex("ff"), header())->reserve_next);
  checkOnlySizes<attr::EvenPort>({1});
}

TEST_CASE("DONT-FRAGMENT has no value, a non-empty one is rejected (RFC 8656 §18.9)") {
  const Encoded e(attr::DontFragment{});
  REQUIRE(e.ok());
  CHECK(e.attributeHex() == "001a0000");
  CHECK(e.get<attr::DontFragment>().has_value());
  checkOnlySizes<attr::DontFragment>({0});
}

TEST_CASE("RESERVATION-TOKEN is 8 bytes (RFC 8656 §18.10)") {
  const Encoded e(attr::ReservationToken{0x0102030405060708});
  REQUIRE(e.ok());
  CHECK(e.attributeHex() == "00220008" "0102030405060708");
  CHECK(e.get<attr::ReservationToken>()->token == 0x0102030405060708);
  checkOnlySizes<attr::ReservationToken>({8});
}

TEST_CASE("ICMP is 16 reserved bits, type, code and error data (RFC 8656 §18.13)") {
  const Encoded e(attr::Icmp{3, 1, 0xdeadbeef});
  REQUIRE(e.ok());
  CHECK(e.attributeHex() == "80040008" "00000301deadbeef");
  auto back = e.get<attr::Icmp>();
  REQUIRE(back.has_value());
  CHECK(back->type == 3);
  CHECK(back->code == 1);
  CHECK(back->error_data == 0xdeadbeef);
  CHECK(attr::Icmp::decode(fromHex("ffff0b00" "00000000"), header())->type == 11);
  checkOnlySizes<attr::Icmp>({8});
}

TEST_CASE("CONNECTION-ID is 32 bits (RFC 6062 §6.2.1)") {
  const Encoded e(attr::ConnectionId{0xcafef00d});
  REQUIRE(e.ok());
  CHECK(e.attributeHex() == "002a0004" "cafef00d");
  CHECK(e.get<attr::ConnectionId>()->id == 0xcafef00d);
  checkOnlySizes<attr::ConnectionId>({4});
}

TEST_CASE("FINGERPRINT is 32 bits (RFC 8489 §14.7)") {
  const Encoded e(attr::Fingerprint{0x12345678});
  REQUIRE(e.ok());
  CHECK(e.attributeHex() == "80280004" "12345678");
  CHECK(e.get<attr::Fingerprint>()->crc == 0x12345678);
  CHECK_FALSE(e.view().fingerprintMatches());
  checkOnlySizes<attr::Fingerprint>({4});
}

// --- Error codes ----------------------------------------------------------------------------

TEST_CASE("ERROR-CODE splits the code into class and number (RFC 8489 §14.8)") {
  const Encoded e(attr::ErrorCode{420, "Unknown Attribute"});
  REQUIRE(e.ok());
  CHECK(e.attributeHex() == "00090015" "00000414" + toHex(tern::wire::asBytes("Unknown Attribute")) +
                                "000000");
  auto back = e.get<attr::ErrorCode>();
  REQUIRE(back.has_value());
  CHECK(back->code == 420);
  CHECK(back->reason == "Unknown Attribute");
  // An empty reason is allowed.
  CHECK(Encoded(attr::ErrorCode{500, ""}).get<attr::ErrorCode>()->code == 500);
}

TEST_CASE("ERROR-CODE accepts codes 300-699 only (RFC 8489 §14.8)") {
  for (std::uint16_t code : std::initializer_list<std::uint16_t>{300, 399, 401, 699}) {
    CAPTURE(code);
    CHECK(Encoded(attr::ErrorCode{code, "r"}).get<attr::ErrorCode>()->code == code);
  }
  for (std::uint16_t code : std::initializer_list<std::uint16_t>{0, 99, 299, 700, 799, 1000}) {
    CAPTURE(code);
    CHECK_FALSE(Encoded(attr::ErrorCode{code, "r"}).ok());
  }
  const Header h = header();
  CHECK(attr::ErrorCode::decode(fromHex("00000300"), h)->code == 300);
  CHECK(attr::ErrorCode::decode(fromHex("00000663"), h)->code == 699);
  CHECK_FALSE(attr::ErrorCode::decode(fromHex("00000263"), h).has_value());  // 299
  CHECK_FALSE(attr::ErrorCode::decode(fromHex("00000700"), h).has_value());  // 700
  CHECK_FALSE(attr::ErrorCode::decode(fromHex("00000464"), h).has_value());  // number 100
  CHECK_FALSE(attr::ErrorCode::decode(fromHex("000004ff"), h).has_value());  // number 255
  CHECK_FALSE(attr::ErrorCode::decode(fromHex("000000"), h).has_value());    // too short
  // The 21 reserved bits are ignored on receipt.
  CHECK(attr::ErrorCode::decode(fromHex("fffffc14"), h)->code == 420);
}

TEST_CASE("ERROR-CODE reason is at most 763 bytes (RFC 8489 §14.8)") {
  const std::string reason(763, 'r');
  CHECK(Encoded(attr::ErrorCode{400, reason}).get<attr::ErrorCode>()->reason == reason);
  const std::string too_long(764, 'r');
  CHECK_FALSE(Encoded(attr::ErrorCode{400, too_long}).ok());
  auto value = fromHex("00000400");
  value.insert(value.end(), too_long.begin(), too_long.end());
  CHECK_FALSE(attr::ErrorCode::decode(value, header()).has_value());
}

TEST_CASE("ADDRESS-ERROR-CODE carries a family before class and number (RFC 8656 §18.12)") {
  const Encoded e(attr::AddressErrorCode{0x02, 440, "Address Family not Supported"});
  REQUIRE(e.ok());
  CHECK(e.attributeHex().substr(8, 8) == "02000428");
  auto back = e.get<attr::AddressErrorCode>();
  REQUIRE(back.has_value());
  CHECK(back->family == 0x02);
  CHECK(back->code == 440);
  CHECK(back->reason == "Address Family not Supported");
  CHECK_FALSE(Encoded(attr::AddressErrorCode{0x01, 299, ""}).ok());
  CHECK_FALSE(Encoded(attr::AddressErrorCode{0x01, 700, ""}).ok());
  CHECK_FALSE(attr::AddressErrorCode::decode(fromHex("01000464"), header()).has_value());
  CHECK_FALSE(attr::AddressErrorCode::decode(fromHex("01000700"), header()).has_value());
  CHECK_FALSE(attr::AddressErrorCode::decode(fromHex("010004"), header()).has_value());
}

// --- Lists ----------------------------------------------------------------------------------

TEST_CASE("UNKNOWN-ATTRIBUTES is a list of 16-bit types (RFC 8489 §14.9)") {
  attr::UnknownAttributes list;
  for (std::uint16_t t : std::initializer_list<std::uint16_t>{0x7fff, 0x0024, 0x0003}) {
    list.types.push(t);
  }
  const Encoded e(list);
  REQUIRE(e.ok());
  CHECK(e.attributeHex() == "000a0006" "7fff00240003" "0000");
  auto back = e.get<attr::UnknownAttributes>();
  REQUIRE(back.has_value());
  CHECK(std::vector<std::uint16_t>(back->types.begin(), back->types.end()) ==
        std::vector<std::uint16_t>{0x7fff, 0x0024, 0x0003});
  CHECK(Encoded(attr::UnknownAttributes{}).get<attr::UnknownAttributes>()->types.empty());
}

TEST_CASE("UNKNOWN-ATTRIBUTES of odd length is rejected (RFC 8489 §14.9)") {
  CHECK_FALSE(attr::UnknownAttributes::decode(fromHex("7fff00"), header()).has_value());
  CHECK_FALSE(attr::UnknownAttributes::decode(fromHex("7f"), header()).has_value());
}

TEST_CASE("UNKNOWN-ATTRIBUTES keeps the first 16 types") {
  std::vector<std::uint8_t> value;
  for (std::uint8_t i = 0; i < 20; ++i) {
    value.push_back(0x70);
    value.push_back(i);
  }
  auto decoded = attr::UnknownAttributes::decode(value, header());
  REQUIRE(decoded.has_value());
  CHECK(decoded->types.size() == 16);
  CHECK(decoded->types[15] == 0x700f);
}

TEST_CASE("PASSWORD-ALGORITHM is algorithm, parameter length and parameters "
          "(RFC 8489 §14.12)") {
  const attr::PasswordAlgorithm sha256{0x0002, {}};
  const Encoded e(sha256);
  REQUIRE(e.ok());
  CHECK(e.attributeHex() == "001d0004" "00020000");
  CHECK(*e.get<attr::PasswordAlgorithm>() == sha256);

  // Parameters that need padding: the attribute's own padding follows them.
  const auto params = fromHex("aabbcc");
  const attr::PasswordAlgorithm with_params{0x0001, params};
  const Encoded p(with_params);
  REQUIRE(p.ok());
  CHECK(p.attributeHex() == "001d0007" "00010003aabbcc" "00");
  CHECK(*p.get<attr::PasswordAlgorithm>() == with_params);

  const Header h = header();
  CHECK_FALSE(attr::PasswordAlgorithm::decode(fromHex("0001"), h).has_value());
  CHECK_FALSE(attr::PasswordAlgorithm::decode(fromHex("00010004aabbcc"), h).has_value());
  CHECK_FALSE(attr::PasswordAlgorithm::decode(fromHex("00010000ff"), h).has_value());
}

TEST_CASE("PASSWORD-ALGORITHMS pads each entry's parameters to 4 bytes (RFC 8489 §14.11)") {
  const auto params3 = fromHex("010203");
  const auto params5 = fromHex("0405060708");
  attr::PasswordAlgorithms list;
  list.algorithms.push({0x0001, params3});
  list.algorithms.push({0x0002, {}});
  list.algorithms.push({0x1234, params5});
  const Encoded e(list);
  REQUIRE(e.ok());
  CHECK(e.attributeHex() ==
        "80020018" "00010003" "01020300" "00020000" "12340005" "04050607" "08000000");
  auto back = e.get<attr::PasswordAlgorithms>();
  REQUIRE(back.has_value());
  REQUIRE(back->algorithms.size() == 3);
  for (std::size_t i = 0; i < 3; ++i) CHECK(back->algorithms[i] == list.algorithms[i]);

  const Header h = header();
  // Missing padding, and parameters running past the value.
  CHECK_FALSE(attr::PasswordAlgorithms::decode(fromHex("00010003010203"), h).has_value());
  CHECK_FALSE(attr::PasswordAlgorithms::decode(fromHex("0001000801020304"), h).has_value());
  CHECK_FALSE(attr::PasswordAlgorithms::decode(fromHex("000100000002"), h).has_value());
  CHECK(attr::PasswordAlgorithms::decode({}, h)->algorithms.empty());
}

TEST_CASE("PASSWORD-ALGORITHMS with more entries than the list holds is rejected, not cut") {
  std::vector<std::uint8_t> value;
  for (int i = 0; i < 9; ++i) {
    const auto entry = fromHex("00020000");
    value.insert(value.end(), entry.begin(), entry.end());
  }
  CHECK_FALSE(attr::PasswordAlgorithms::decode(value, header()).has_value());
  value.resize(8 * 4);
  CHECK(attr::PasswordAlgorithms::decode(value, header())->algorithms.size() == 8);
}

// --- Builder limits -------------------------------------------------------------------------

TEST_CASE("a buffer too small for the message makes finish() return nothing") {
  std::vector<std::uint8_t> buffer(19);
  MessageBuilder header_only(buffer, Method::kBinding, MessageClass::kRequest, kTid);
  CHECK_FALSE(header_only.ok());
  CHECK_FALSE(header_only.finish().has_value());

  buffer.resize(39);
  MessageBuilder b(buffer, Method::kBinding, MessageClass::kRequest, kTid);
  CHECK(b.ok());
  b.add(attr::Software{"STUN test client"});  // needs 20 + 4 + 16 = 40 bytes
  CHECK_FALSE(b.ok());
  CHECK(b.addAttribute(0x8022, 0) == nullptr);  // stays bad
  b.addFingerprint();
  CHECK_FALSE(b.finish().has_value());

  buffer.resize(40);
  MessageBuilder exact(buffer, Method::kBinding, MessageClass::kRequest, kTid);
  exact.add(attr::Software{"STUN test client"});
  auto out = exact.finish();
  REQUIRE(out.has_value());
  CHECK(out->size() == 40);
}

TEST_CASE("the builder refuses to grow a message past the 16-bit length (RFC 8489 §5)") {
  std::vector<std::uint8_t> buffer(70000);
  {
    MessageBuilder b(buffer, Method::kSend, MessageClass::kIndication, kTid);
    const auto payload = filled(0xFFF8);
    b.add(attr::Data{payload});
    auto out = b.finish();
    REQUIRE(out.has_value());
    CHECK(out->size() == 20 + 0xFFFC);
    auto m = MessageView::parse(*out);
    REQUIRE(m.has_value());
    CHECK(m->get<attr::Data>()->value.size() == 0xFFF8);
  }
  {
    MessageBuilder b(buffer, Method::kSend, MessageClass::kIndication, kTid);
    const auto payload = filled(0xFFF9);
    b.add(attr::Data{payload});
    CHECK_FALSE(b.finish().has_value());
  }
  {
    MessageBuilder b(buffer, Method::kSend, MessageClass::kIndication, kTid);
    CHECK(b.addAttribute(0x0013, 0x10000) == nullptr);
    CHECK_FALSE(b.ok());
  }
}

TEST_CASE("get<> of an absent attribute is empty") {
  const Encoded e(attr::Lifetime{1});
  CHECK_FALSE(e.get<attr::Software>().has_value());
  CHECK_FALSE(e.view().has(AttributeType::kSoftware));
}

}  // namespace
