// Builds success and error responses to a request (RFC 8489 §6.3.1.1-6.3.1.2) into the
// server's response buffer, mirroring the request's FINGERPRINT use.
#pragma once

#include <span>
#include <string_view>

#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "relay/wire/message.hpp"

namespace tern::core {

class ResponseWriter {
 public:
  ResponseWriter(std::span<std::uint8_t> buffer, const wire::Header& request, bool fingerprint,
                 std::string_view software) noexcept;

  // Success response builder; add attributes, then finish().
  wire::MessageBuilder& success() noexcept;
  // Error response with ERROR-CODE; add more attributes (e.g. UNKNOWN-ATTRIBUTES), then finish().
  wire::MessageBuilder& error(std::uint16_t code, std::string_view reason = {}) noexcept;
  // Adds FINGERPRINT if the request had one and returns the bytes to send.
  std::optional<wire::Bytes> finish() noexcept;
  std::uint16_t code() const noexcept { return code_; }

 private:
  void start(wire::MessageClass cls) noexcept;

  std::span<std::uint8_t> buffer_;
  wire::Header request_;
  bool fingerprint_;
  std::string_view software_;
  std::optional<wire::MessageBuilder> builder_;
  std::uint16_t code_ = 0;
};

}  // namespace tern::core
