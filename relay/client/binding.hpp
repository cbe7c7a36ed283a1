// STUN Binding from the client side (RFC 8489 §3): the request, and what its response says.
#pragma once

#include <string>
#include <variant>
#include <vector>

#include "relay/wire/address.hpp"
#include "relay/wire/message.hpp"

namespace tern::client {

// A Binding request with a fresh random transaction id, and FINGERPRINT when asked for.
std::vector<std::uint8_t> makeBindingRequest(bool fingerprint);

struct BindingSuccess {
  wire::SocketAddress mapped;  // from XOR-MAPPED-ADDRESS (or MAPPED-ADDRESS from old servers)
  std::string software;
};
struct BindingFailure {
  std::uint16_t code = 0;  // 0 when the response could not be understood
  std::string reason;
};
using BindingResult = std::variant<BindingSuccess, BindingFailure>;

BindingResult interpretBindingResponse(const wire::MessageView& response);

}  // namespace tern::client
