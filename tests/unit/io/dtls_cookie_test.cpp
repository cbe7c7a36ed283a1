// The DTLS cookie of the stateless cookie exchange (RFC 6347 §4.2.1, relay/io/tls): it binds
// a client's address and port to a time window under a per-process key.
#include <doctest/doctest.h>

#include "relay/io/tls.hpp"

using namespace tern;
using io::DtlsCookieKey;

namespace {

wire::SocketAddress at(const char* text) { return *wire::SocketAddress::parse(text); }

}  // namespace

TEST_CASE(
    "a DTLS cookie verifies for its address and port in its window and the next, and nowhere "
    "else") {
  const DtlsCookieKey key;
  const auto client = at("203.0.113.5:40000");
  const auto cookie = key.make(client, 1000);
  CHECK(key.verify(client, cookie, 1000));
  CHECK(key.verify(client, cookie, 1000 + 30));  // the next 30-second window
  CHECK_FALSE(key.verify(client, cookie, 1000 + 90));
  CHECK_FALSE(key.verify(at("203.0.113.5:40001"), cookie, 1000));
  CHECK_FALSE(key.verify(at("203.0.113.6:40000"), cookie, 1000));
  CHECK_FALSE(key.verify(at("[2001:db8::5]:40000"), cookie, 1000));
  auto altered = cookie;
  altered[7] ^= 0x01;
  CHECK_FALSE(key.verify(client, altered, 1000));
  CHECK_FALSE(key.verify(client, wire::Bytes(cookie.data(), cookie.size() - 1), 1000));
  // Another process's key (another node, or tern after a restart) makes other cookies.
  CHECK_FALSE(DtlsCookieKey().verify(client, cookie, 1000));
}
