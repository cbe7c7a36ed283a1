// Binding request construction and response interpretation (RFC 8489 §3, §14.1-14.2).
#include "relay/client/binding.hpp"

#include "auth/crypto.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"

namespace tern::client {

std::vector<std::uint8_t> makeBindingRequest(bool fingerprint) {
  // RFC 8489 §6: the transaction id is cryptographically random.
  wire::TransactionId tid{};
  auth::randomBytes(tid);
  std::vector<std::uint8_t> buf(64);
  wire::MessageBuilder b(buf, wire::Method::kBinding, wire::MessageClass::kRequest, tid);
  if (fingerprint) b.addFingerprint();
  buf.resize(b.finish()->size());
  return buf;
}

BindingResult interpretBindingResponse(const wire::MessageView& response) {
  if (response.messageClass() == wire::MessageClass::kErrorResponse) {
    if (auto e = response.get<wire::attr::ErrorCode>()) {
      return BindingFailure{e->code, std::string(e->reason)};
    }
    return BindingFailure{0, "error response without a valid ERROR-CODE"};
  }
  BindingSuccess ok;
  if (auto s = response.get<wire::attr::Software>()) ok.software = std::string(s->value);
  if (auto x = response.get<wire::attr::XorMappedAddress>()) {
    ok.mapped = x->address;
    return ok;
  }
  if (auto m = response.get<wire::attr::MappedAddress>()) {
    ok.mapped = m->address;
    return ok;
  }
  return BindingFailure{0, "success response without a mapped address"};
}

}  // namespace tern::client
