// Base64 with the standard alphabet and padding (RFC 4648 §4), for TURN REST passwords
// (draft-uberti-behave-turn-rest-00 §2.2) and anything else auth/ prints. Control path only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "auth/crypto.hpp"

namespace tern::auth {

// RFC 4648 §4: 4 characters per 3 bytes, the last group padded with '='.
std::string base64Encode(Bytes data);

// The strict inverse of base64Encode: the length must be a multiple of 4, every character
// in the alphabet, '=' only as one or two final characters, and the bits padding leaves
// unused must be zero (RFC 4648 §3.5), so exactly one text decodes to each byte string.
// No whitespace or line breaks (RFC 4648 §3.3). Empty on any violation.
std::optional<std::vector<std::uint8_t>> base64Decode(std::string_view text);

}  // namespace tern::auth
