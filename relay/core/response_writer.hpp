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
  // Responses to authenticated requests carry MESSAGE-INTEGRITY with the same key (RFC 8489
  // §9.2.4), or MESSAGE-INTEGRITY-SHA256 when the request used that; call before finish().
  // The key must outlive finish().
  void sign(wire::Bytes key, wire::AttributeType integrity = wire::AttributeType::kMessageIntegrity) noexcept {
    key_ = key;
    integrity_ = integrity;
  }
  // Adds MESSAGE-INTEGRITY if signed and FINGERPRINT if the request had one, and returns the
  // bytes to send. Idempotent: later calls return the same bytes, so a handler can finish
  // while its key and attribute values are alive and the dispatcher sends afterwards.
  std::optional<wire::Bytes> finish() noexcept;
  std::string_view reason() const noexcept { return reason_; }
  // The refusal is routine (the first 401 of every session) and not worth reporting.
  void setRoutine() noexcept { routine_ = true; }
  bool routine() const noexcept { return routine_; }
  std::uint16_t code() const noexcept { return code_; }
  // The answer comes later (RFC 6062 Connect waits for the TCP handshake with the peer).
  void defer() noexcept { deferred_ = true; }
  bool deferred() const noexcept { return deferred_; }
  // No answer at all: the request's source is over its limit of unauthenticated answers.
  void drop() noexcept { dropped_ = true; }
  bool dropped() const noexcept { return dropped_; }
  // The answer goes to a source nothing verified (a UDP request without valid credentials),
  // which may be a spoofed victim: leave out everything optional (SOFTWARE, the reason
  // phrase), so tern reflects as few bytes as the protocol allows. reason() keeps the text
  // for the log. Call before success() or error().
  void setMinimal() noexcept { minimal_ = true; }
  bool minimal() const noexcept { return minimal_; }
  // The builder of the response started by success() or error().
  wire::MessageBuilder& builder() noexcept { return *builder_; }

 private:
  void start(wire::MessageClass cls) noexcept;

  std::span<std::uint8_t> buffer_;
  wire::Header request_;
  bool fingerprint_;
  std::string_view software_;
  std::optional<wire::MessageBuilder> builder_;
  wire::Bytes key_;
  wire::AttributeType integrity_ = wire::AttributeType::kMessageIntegrity;
  std::optional<wire::Bytes> finished_;
  std::string_view reason_;  // reasons are string literals or static tables
  bool routine_ = false;
  bool deferred_ = false;
  bool dropped_ = false;
  bool minimal_ = false;
  std::uint16_t code_ = 0;
};

}  // namespace tern::core
