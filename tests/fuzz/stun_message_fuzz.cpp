// libFuzzer target for the STUN codec (RFC 8489 §5, §6.3, §14; RFC 8656 §18): parses arbitrary
// bytes, reads every typed attribute and checks that each decoded value re-encodes to a stable
// form, and that a parsed message re-encoded attribute by attribute parses again the same way.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "relay/wire/address.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "relay/wire/message.hpp"

namespace {

using namespace tern::wire;
using tern::fuzz::touch;
using tern::fuzz::within;

// The text form of any address parses back to the same address (RFC 5952 output is valid
// RFC 4291 input).
void checkAddressText(const SocketAddress& a) {
  const std::string text = a.toString();
  auto back = SocketAddress::parse(text);
  TERN_FUZZ_CHECK(back.has_value());
  TERN_FUZZ_CHECK(*back == a);
  auto ip = IpAddress::parse(a.ip.toString());
  TERN_FUZZ_CHECK(ip.has_value() && *ip == a.ip);
}

template <class A>
void checkValue(const A&) {}
template <AttributeType T>
void checkValue(const attr::XorAddress<T>& a) {
  checkAddressText(a.address);
}
template <AttributeType T>
void checkValue(const attr::PlainAddress<T>& a) {
  checkAddressText(a.address);
}

// One attribute, encoded alone with `tid`.
template <class A>
std::vector<std::uint8_t> encodeAlone(const A& a, const TransactionId& tid, std::size_t room) {
  std::vector<std::uint8_t> buffer(kHeaderSize + kAttributeHeaderSize + room + 4);
  MessageBuilder b(buffer, Method::kBinding, MessageClass::kRequest, tid);
  b.add(a);
  auto out = b.finish();
  // A value that decoded must be encodable: decode and encode share their limits.
  TERN_FUZZ_CHECK(out.has_value());
  buffer.resize(out->size());
  return buffer;
}

// get<A>() is consistent with find(), and a decoded value survives encode -> decode -> encode
// unchanged after its first (canonicalising) encode.
template <class A>
void exercise(const MessageView& m) {
  const auto raw = m.find(A::kType);
  const auto value = m.template get<A>();
  if (raw) {
    TERN_FUZZ_CHECK(raw->type == static_cast<std::uint16_t>(A::kType));
    TERN_FUZZ_CHECK(within(raw->value, m.bytes()));
    touch(raw->value);
  }
  TERN_FUZZ_CHECK(!value || raw);
  if (!value) return;
  checkValue(*value);

  const auto first = encodeAlone(*value, m.transactionId(), padTo4(raw->value.size()));
  auto reparsed = MessageView::parse(first);
  TERN_FUZZ_CHECK(reparsed.has_value());
  auto again = reparsed->template get<A>();
  TERN_FUZZ_CHECK(again.has_value());
  const auto second = encodeAlone(*again, m.transactionId(), padTo4(raw->value.size()));
  TERN_FUZZ_CHECK(first == second);
}

template <class... A>
void exerciseAll(const MessageView& m) {
  (exercise<A>(m), ...);
}

void checkIntegrityInput(const MessageView& m, AttributeType type) {
  auto in = m.integrityInput(type);
  auto raw = m.find(type);
  TERN_FUZZ_CHECK(in.has_value() == raw.has_value());
  if (!in) return;
  TERN_FUZZ_CHECK(within(in->body, m.bytes()));
  TERN_FUZZ_CHECK(within(in->mac, m.bytes()));
  touch(in->body);
  touch(in->mac);
  // RFC 8489 §14.5: the length covers everything up to the end of the integrity attribute.
  TERN_FUZZ_CHECK(loadU16(&in->header[2]) == in->body.size() + kAttributeHeaderSize + in->mac.size());
  TERN_FUZZ_CHECK(std::equal(in->header.begin() + 4, in->header.end(), m.bytes().begin() + 4));
}

// Builds the message again from what the view exposes: the attributes that count, then
// MESSAGE-INTEGRITY, MESSAGE-INTEGRITY-SHA256 and FINGERPRINT in their original order. The
// result must parse and expose the same attributes.
void checkReencoding(const MessageView& m) {
  struct Item {
    std::uint16_t type;
    Bytes value;
    std::size_t offset;
  };
  std::vector<Item> visible;
  m.forEachAttribute([&](const RawAttribute& a) { visible.push_back({a.type, a.value, a.offset}); });
  std::vector<Item> trailing;
  for (AttributeType t : {AttributeType::kMessageIntegrity, AttributeType::kMessageIntegritySha256,
                          AttributeType::kFingerprint}) {
    if (auto a = m.find(t)) trailing.push_back({a->type, a->value, a->offset});
  }
  std::sort(trailing.begin(), trailing.end(),
            [](const Item& x, const Item& y) { return x.offset < y.offset; });

  const std::uint16_t type = m.header().type;
  std::vector<std::uint8_t> buffer(m.bytes().size());
  MessageBuilder b(buffer, static_cast<Method>(methodOf(type)), classOf(type), m.transactionId());
  for (const Item& i : visible) b.addRaw(i.type, i.value);
  for (const Item& i : trailing) b.addRaw(i.type, i.value);
  auto out = b.finish();
  // Dropping ignored attributes and zeroing padding never makes a message longer.
  TERN_FUZZ_CHECK(out.has_value());
  TERN_FUZZ_CHECK(out->size() <= m.bytes().size());

  auto again = MessageView::parse(*out);
  TERN_FUZZ_CHECK(again.has_value());
  TERN_FUZZ_CHECK(again->header().type == type);
  TERN_FUZZ_CHECK(again->transactionId() == m.transactionId());
  std::size_t index = 0;
  again->forEachAttribute([&](const RawAttribute& a) {
    TERN_FUZZ_CHECK(index < visible.size());
    TERN_FUZZ_CHECK(a.type == visible[index].type);
    TERN_FUZZ_CHECK(std::equal(a.value.begin(), a.value.end(), visible[index].value.begin(),
                               visible[index].value.end()));
    ++index;
  });
  TERN_FUZZ_CHECK(index == visible.size());
  for (const Item& i : trailing) {
    auto a = again->find(static_cast<AttributeType>(i.type));
    TERN_FUZZ_CHECK(a.has_value());
    TERN_FUZZ_CHECK(std::equal(a->value.begin(), a->value.end(), i.value.begin(), i.value.end()));
  }
}

void checkMessage(Bytes data) {
  auto header = parseHeader(data);
  auto parsed = MessageView::parse(data);
  // A message that parses has a header that parses; the converse need not hold.
  TERN_FUZZ_CHECK(!parsed || header);
  if (!parsed) {
    TERN_FUZZ_CHECK(!describe(parsed.error()).empty());
    return;
  }
  const MessageView& m = *parsed;
  TERN_FUZZ_CHECK(m.bytes().size() == kHeaderSize + m.header().length);
  TERN_FUZZ_CHECK(m.header().type == header->type);

  // RFC 8489 §14.5-14.7: the attributes that count never include the integrity attributes or
  // FINGERPRINT; find() returns the first attribute of a type.
  m.forEachAttribute([&](const RawAttribute& a) {
    TERN_FUZZ_CHECK(within(a.value, m.bytes()));
    TERN_FUZZ_CHECK(a.type != static_cast<std::uint16_t>(AttributeType::kMessageIntegrity));
    TERN_FUZZ_CHECK(a.type != static_cast<std::uint16_t>(AttributeType::kMessageIntegritySha256));
    TERN_FUZZ_CHECK(a.type != static_cast<std::uint16_t>(AttributeType::kFingerprint));
    auto first = m.find(static_cast<AttributeType>(a.type));
    TERN_FUZZ_CHECK(first.has_value() && first->offset <= a.offset);
  });

  exerciseAll<attr::MappedAddress, attr::AlternateServer, attr::XorMappedAddress,
              attr::XorPeerAddress, attr::XorRelayedAddress, attr::Username, attr::Realm,
              attr::Nonce, attr::Software, attr::AlternateDomain, attr::ThirdPartyAuthorization,
              attr::Data, attr::AccessToken, attr::MobilityTicket, attr::Userhash,
              attr::MessageIntegrity, attr::MessageIntegritySha256, attr::ChannelNumber,
              attr::Lifetime, attr::RequestedTransport, attr::RequestedAddressFamily,
              attr::AdditionalAddressFamily, attr::EvenPort, attr::DontFragment,
              attr::ReservationToken, attr::Icmp, attr::ConnectionId, attr::Fingerprint,
              attr::ErrorCode, attr::AddressErrorCode, attr::UnknownAttributes,
              attr::PasswordAlgorithm, attr::PasswordAlgorithms>(m);

  checkIntegrityInput(m, AttributeType::kMessageIntegrity);
  checkIntegrityInput(m, AttributeType::kMessageIntegritySha256);
  TERN_FUZZ_CHECK(!m.integrityInput(AttributeType::kFingerprint).has_value());
  TERN_FUZZ_CHECK(!m.fingerprintMatches() || m.hasFingerprint());

  // RFC 8489 §6.3.1: unknown comprehension-required types, each listed once.
  const auto unknown = m.unknownComprehensionRequired();
  for (std::size_t i = 0; i < unknown.size(); ++i) {
    TERN_FUZZ_CHECK(isComprehensionRequired(unknown[i]));
    TERN_FUZZ_CHECK(!isKnownAttribute(unknown[i]));
    for (std::size_t j = 0; j < i; ++j) TERN_FUZZ_CHECK(unknown[i] != unknown[j]);
  }

  checkReencoding(m);
}

// Short inputs double as address text: whatever parses prints and parses back the same.
void checkAddressParsing(Bytes data) {
  if (data.size() > 64) return;
  const std::string_view text = asText(data);
  if (auto ip = IpAddress::parse(text)) {
    auto back = IpAddress::parse(ip->toString());
    TERN_FUZZ_CHECK(back.has_value() && *back == *ip);
  }
  if (auto a = SocketAddress::parse(text)) checkAddressText(*a);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const Bytes input{data, size};
  checkMessage(input);
  checkAddressParsing(input);
  return 0;
}
