// A TURN client on one UDP socket or TCP connection to a real server, for integration tests:
// relay/client's TurnSession for the messages, blocking exchanges for the transport, and the
// 401/438 retry RFC 8489 §9.2.5 asks of clients.
#pragma once

#include <doctest/doctest.h>

#include <ctime>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "auth/rest_credentials.hpp"
#include "relay/client/turn_session.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/message.hpp"
#include "support/stun_socket.hpp"

namespace tern::test {

class TurnTestClient {
 public:
  using Outcome = client::TurnSession::Outcome;

  TurnTestClient(const wire::SocketAddress& local, const wire::SocketAddress& server, std::string username,
                 std::string password, bool use_tcp = true)
      : fd(connectedSocket(use_tcp, local, server)), session(std::move(username), std::move(password)), tcp(use_tcp) {}

  // Sends what `make` builds, again after a 401 or 438 that taught the session a nonce; the
  // last response stays in `response`.
  Outcome transact(const std::function<std::vector<std::uint8_t>()>& make) {
    for (int attempt = 0; attempt < 3; ++attempt) {
      response = exchange(fd.get(), tcp, make());
      REQUIRE(response.has_value());
      auto view = wire::MessageView::parse(*response);
      REQUIRE(view.has_value());
      const Outcome outcome = session.onResponse(*view);
      if (outcome != Outcome::kRetry) return outcome;
    }
    return Outcome::kError;
  }
  // The last response, parsed (valid while `response` is unchanged).
  wire::MessageView view() const {
    REQUIRE(response.has_value());
    auto v = wire::MessageView::parse(*response);
    REQUIRE(v.has_value());
    return *v;
  }

  io::FileDescriptor fd;
  client::TurnSession session;
  bool tcp;
  std::optional<std::vector<std::uint8_t>> response;
};

// One Allocate over UDP from 127.0.0.1 with a TURN REST credential of `user` minted with
// `secret` (valid for an hour, 401 retry included), left to expire: 0 on success, else the
// error code (-1 without one).
inline int allocateAsRestUser(const wire::SocketAddress& server, const std::string& secret, const std::string& user) {
  const auto c = auth::mintRestCredential(secret, user, static_cast<std::int64_t>(std::time(nullptr)), 3600);
  TurnTestClient client({*wire::IpAddress::parse("127.0.0.1"), 0}, server, c.username, c.password, false);
  client.transact([&] { return client.session.allocate({}); });
  const auto view = client.view();
  if (view.messageClass() == wire::MessageClass::kSuccessResponse) return 0;
  const auto e = view.get<wire::attr::ErrorCode>();
  return e ? e->code : -1;
}

}  // namespace tern::test
