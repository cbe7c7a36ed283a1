// Long-term keys and message integrity (RFC 8489 §9.2, §14.4-14.6).
#include "auth/message_integrity.hpp"

#include <cstring>

namespace tern::auth {

using wire::AttributeType;
using wire::asBytes;

std::vector<std::uint8_t> longTermKey(PasswordAlgorithmId algorithm, std::string_view username,
                                      std::string_view realm, std::string_view password) {
  static constexpr std::uint8_t kColon[] = {':'};
  const std::initializer_list<Bytes> parts = {asBytes(username), kColon, asBytes(realm), kColon,
                                              asBytes(password)};
  if (algorithm == PasswordAlgorithmId::kSha256) {
    auto d = sha256(parts);
    return {d.begin(), d.end()};
  }
  auto d = md5(parts);
  return {d.begin(), d.end()};
}

Sha256Digest userhash(std::string_view username, std::string_view realm) {
  static constexpr std::uint8_t kColon[] = {':'};
  return sha256({asBytes(username), kColon, asBytes(realm)});
}

bool verifyIntegrity(const wire::MessageView& message, AttributeType type, Bytes key) {
  auto in = message.integrityInput(type);
  if (!in) return false;
  if (type == AttributeType::kMessageIntegrity) {
    const auto mac = hmacSha1(key, {in->header, in->body});
    return constantTimeEqual(mac, in->mac);
  }
  // RFC 8489 §14.6: the value may be the HMAC-SHA256 truncated to its first 16-32 bytes.
  const auto mac = hmacSha256(key, {in->header, in->body});
  return constantTimeEqual(Bytes{mac.data(), in->mac.size()}, in->mac);
}

void addIntegrity(wire::MessageBuilder& builder, AttributeType type, Bytes key) {
  if (type == AttributeType::kMessageIntegrity) {
    builder.addIntegrity(type, 20, [&](Bytes input, wire::MutableBytes out) {
      const auto mac = hmacSha1(key, {input});
      std::memcpy(out.data(), mac.data(), out.size());
    });
  } else {
    builder.addIntegrity(type, 32, [&](Bytes input, wire::MutableBytes out) {
      const auto mac = hmacSha256(key, {input});
      std::memcpy(out.data(), mac.data(), out.size());
    });
  }
}

}  // namespace tern::auth
