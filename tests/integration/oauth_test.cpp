// RFC 7635 third-party authorization against a real `tern serve`, with coturn's
// turnutils_uclient -J as the client: it mints self-contained ACCESS-TOKENs under coturn's
// built-in test keys (kids north and oldempire with A256GCM, union with A128GCM; one picked at
// random per request), sealed for the server name tern sends in THIRD-PARTY-AUTHORIZATION.
#include <doctest/doctest.h>
#include <signal.h>

#include <string>
#include <vector>

#include "support/tern_server.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using test::TernServer;

namespace {

// coturn 4.6's test keys, as an --oauth-key-file: "01234567890123456789012345678901",
// "1234567890123456" and "12345678901234567890123456789012".
constexpr const char* kCoturnTestKeys =
    "# coturn's turnutils_uclient -J keys\n"
    "north MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE= A256GCM\n"
    "union MTIzNDU2Nzg5MDEyMzQ1Ng== A128GCM\n"
    "oldempire MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI= A256GCM\n";

std::vector<std::string> oauthArgs(const std::string& key_file) {
  return {"--oauth-key-file", key_file, "--oauth-server-name", "relay.tern.test", "--relay-ip", "127.0.0.1",
          "--relay-ports", "59000-59999", "--allow-peer", "127.0.0.0/8"};
}

test::UclientReport oauthUclient(const TernServer& server, std::uint16_t peer_port) {
  return test::runUclient({"-J", "-u", "north", "-e", "127.0.0.2", "-r", std::to_string(peer_port), "-p",
                           std::to_string(server.udp().port), "-n", "50", "-m", "2", "-l", "160", "-z", "5",
                           "127.0.0.1"});
}

}  // namespace

TEST_CASE("turnutils_uclient -J relays with OAuth access tokens (RFC 7635) with zero loss") {
  TernServer server(oauthArgs(test::temporaryFile(kCoturnTestKeys)));
  test::EchoPeer peer("127.0.0.2");
  const auto r = oauthUclient(server, peer.port());
  INFO(r.output);
  CHECK(r.lost == 0);
  CHECK(r.sent == 100);
  CHECK(r.received == 100);
  // Allocations are recorded under the kid of the token that made them.
  const std::string log = server.process().output();
  CHECK((log.find("user=north") != std::string::npos || log.find("user=union") != std::string::npos ||
         log.find("user=oldempire") != std::string::npos));
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("tokens sealed under keys tern does not hold get 401 and allocate nothing") {
  // The same kids with other keys: every token fails to decrypt.
  TernServer server(oauthArgs(test::temporaryFile(
      "north QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE= A256GCM\n"
      "union QUFBQUFBQUFBQUFBQUFBQQ== A128GCM\n"
      "oldempire QUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUFBQUE= A256GCM\n")));
  test::EchoPeer peer("127.0.0.2");
  const auto r = oauthUclient(server, peer.port());
  INFO(r.output);
  CHECK(r.received <= 0);
  CHECK(server.process().output().find("allocation created") == std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}
