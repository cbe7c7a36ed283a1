// Response construction shared by every method handler.
#include "relay/core/response_writer.hpp"

#include "auth/message_integrity.hpp"

namespace tern::core {

ResponseWriter::ResponseWriter(std::span<std::uint8_t> buffer, const wire::Header& request,
                               bool fingerprint, std::string_view software) noexcept
    : buffer_(buffer), request_(request), fingerprint_(fingerprint), software_(software) {}

void ResponseWriter::start(wire::MessageClass cls) noexcept {
  // RFC 8489 §6.3.1.1: same method and transaction id as the request.
  builder_.emplace(buffer_, static_cast<wire::Method>(request_.method()), cls,
                   request_.transaction_id);
  // RFC 8489 §14.14: SOFTWARE serves only diagnostics.
  if (!software_.empty() && !minimal_) builder_->add(wire::attr::Software{software_});
}

wire::MessageBuilder& ResponseWriter::success() noexcept {
  code_ = 200;
  start(wire::MessageClass::kSuccessResponse);
  return *builder_;
}

wire::MessageBuilder& ResponseWriter::error(std::uint16_t code, std::string_view reason) noexcept {
  code_ = code;
  reason_ = reason.empty() ? wire::defaultReason(code) : reason;
  start(wire::MessageClass::kErrorResponse);
  // RFC 8489 §14.8: the reason phrase is for diagnostics; any text, none included, will do.
  builder_->add(wire::attr::ErrorCode{code, minimal_ ? std::string_view{} : reason_});
  return *builder_;
}

std::optional<wire::Bytes> ResponseWriter::finish() noexcept {
  if (finished_) return finished_;
  if (!builder_) return std::nullopt;
  if (!key_.empty()) auth::addIntegrity(*builder_, integrity_, key_);
  // RFC 8489 §7.3: a response carries FINGERPRINT when its request did (the usage that needs
  // it, ICE or a multiplexed port, is the client's choice).
  if (fingerprint_) builder_->addFingerprint();
  finished_ = builder_->finish();
  return finished_;
}

}  // namespace tern::core
