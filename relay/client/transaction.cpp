// Client transaction timing of RFC 8489 §6.2.1-6.2.2.
#include "relay/client/transaction.hpp"

#include <cstring>

namespace tern::client {

ClientTransaction::ClientTransaction(std::vector<std::uint8_t> request, bool reliable,
                                     RetransmitPolicy policy)
    : request_(std::move(request)), reliable_(reliable), policy_(policy), rto_(policy.initial_rto) {
  if (request_.size() >= wire::kHeaderSize) {
    std::memcpy(transaction_id_.data(), request_.data() + 8, wire::kTransactionIdSize);
  }
}

ClientTransaction::Action ClientTransaction::poll(TimePoint now) noexcept {
  if (sends_ > 0 && now < deadline_) return Action::kWait;
  if (reliable_) {
    if (sends_ > 0) return Action::kTimedOut;
    ++sends_;
    deadline_ = now + policy_.reliable_timeout;
    return Action::kSend;
  }
  if (sends_ >= policy_.max_sends) return Action::kTimedOut;
  ++sends_;
  // After the last send, wait Rm times the initial RTO (RFC 8489 §6.2.1: with RTO = 500 ms the
  // last request goes out at 31500 ms and the transaction fails at 39500 ms), not Rm times the
  // doubled RTO.
  deadline_ = now + (sends_ == policy_.max_sends ? policy_.initial_rto * policy_.last_wait_factor
                                                 : rto_);
  rto_ *= 2;
  return Action::kSend;
}

std::optional<wire::MessageView> ClientTransaction::matchResponse(wire::Bytes packet) const noexcept {
  auto message = wire::MessageView::parse(packet);
  if (!message || message->transactionId() != transaction_id_) return std::nullopt;
  const auto cls = message->messageClass();
  if (cls != wire::MessageClass::kSuccessResponse && cls != wire::MessageClass::kErrorResponse) {
    return std::nullopt;
  }
  if (message->hasFingerprint() && !message->fingerprintMatches()) return std::nullopt;
  return *message;
}

}  // namespace tern::client
