// Base64 (RFC 4648 §4); see base64.hpp. Hand-written so decoding can be strict: OpenSSL's
// EVP_DecodeBlock skips whitespace and does not report how much padding it saw.
#include "auth/base64.hpp"

#include <array>

namespace tern::auth {

namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kPad = '=';
constexpr std::uint8_t kNotBase64 = 0xFF;

constexpr std::array<std::uint8_t, 256> makeDecodeTable() {
  std::array<std::uint8_t, 256> table{};
  for (auto& v : table) v = kNotBase64;
  for (std::size_t i = 0; i < kAlphabet.size(); ++i) {
    table[static_cast<unsigned char>(kAlphabet[i])] = static_cast<std::uint8_t>(i);
  }
  return table;
}
constexpr std::array<std::uint8_t, 256> kDecode = makeDecodeTable();

}  // namespace

std::string base64Encode(Bytes data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    const std::uint32_t group = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8) |
                                std::uint32_t{data[i + 2]};
    out += kAlphabet[(group >> 18) & 0x3F];
    out += kAlphabet[(group >> 12) & 0x3F];
    out += kAlphabet[(group >> 6) & 0x3F];
    out += kAlphabet[group & 0x3F];
  }
  // RFC 4648 §4: a final 8-bit quantum gives two characters and "==", a 16-bit one three
  // characters and "=".
  const std::size_t rest = data.size() - i;
  if (rest == 1) {
    const std::uint32_t group = std::uint32_t{data[i]} << 16;
    out += kAlphabet[(group >> 18) & 0x3F];
    out += kAlphabet[(group >> 12) & 0x3F];
    out += kPad;
    out += kPad;
  } else if (rest == 2) {
    const std::uint32_t group = (std::uint32_t{data[i]} << 16) | (std::uint32_t{data[i + 1]} << 8);
    out += kAlphabet[(group >> 18) & 0x3F];
    out += kAlphabet[(group >> 12) & 0x3F];
    out += kAlphabet[(group >> 6) & 0x3F];
    out += kPad;
  }
  return out;
}

std::optional<std::vector<std::uint8_t>> base64Decode(std::string_view text) {
  if (text.size() % 4 != 0) return std::nullopt;
  std::size_t padding = 0;
  if (!text.empty() && text.back() == kPad) padding = text[text.size() - 2] == kPad ? 2 : 1;

  std::vector<std::uint8_t> out;
  out.reserve(text.size() / 4 * 3);
  for (std::size_t i = 0; i < text.size(); i += 4) {
    const bool last = i + 4 == text.size();
    // Padding may only fill the end of the last group.
    const std::size_t digits = last ? 4 - padding : 4;
    std::uint32_t group = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      std::uint8_t v = 0;
      if (j < digits) {
        v = kDecode[static_cast<unsigned char>(text[i + j])];
        if (v == kNotBase64) return std::nullopt;  // includes a '=' before the padding
      }
      group = (group << 6) | v;
    }
    out.push_back(static_cast<std::uint8_t>(group >> 16));
    if (digits > 2) out.push_back(static_cast<std::uint8_t>(group >> 8));
    if (digits > 3) out.push_back(static_cast<std::uint8_t>(group));
    // RFC 4648 §3.5: the bits a padded group leaves unused must be zero ("Zg==" not "Zh==").
    if (digits == 2 && (group & 0xFFFF) != 0) return std::nullopt;
    if (digits == 3 && (group & 0xFF) != 0) return std::nullopt;
  }
  return out;
}

}  // namespace tern::auth
