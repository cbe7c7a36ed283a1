// RFC 8489's security features against a real `tern serve`: SHA-256 password algorithm
// negotiated through the nonce cookie and PASSWORD-ALGORITHMS, MESSAGE-INTEGRITY-SHA256 both
// ways, USERHASH for a static user, a bid-down caught, and 438 for a nonce tern never issued. Clients that know only RFC 5389
// (turnutils_uclient, python3-aioice, Chromium) are driven against the same server by
// turn_relay_test.cpp and browser_test.cpp: they get the cookie nonce and the extra
// attribute in every 401 and must carry on with MD5 and MESSAGE-INTEGRITY.
#include <doctest/doctest.h>
#include <signal.h>

#include <ctime>
#include <string>
#include <vector>

#include "auth/rest_credentials.hpp"
#include "relay/client/turn_session.hpp"
#include "relay/io/socket_util.hpp"
#include "relay/wire/attributes.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/turn_test_client.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using test::TernServer;
using Security = client::TurnSession::Security;
using Outcome = client::TurnSession::Outcome;

namespace {

constexpr const char* kSecret = "rfc8489-secret";
constexpr const char* kPeerHost = "127.0.0.2";
const wire::SocketAddress kLoopbackClient{*wire::IpAddress::parse("127.0.0.1"), 0};

std::vector<std::string> relayArgs() {
  static const std::string secret_file = test::temporaryFile(std::string(kSecret) + "\n");
  return {"--realm", "tern.test", "--auth-secret-file", secret_file, "--relay-ip", "127.0.0.1",
          "--allow-peer", "127.0.0.0/8", "--user", "anon:anon-password"};
}

// Allocates, permits a peer on kPeerHost and checks a datagram from it reaches the client:
// every response on the way must carry an integrity that verifies with the session's key.
void allocateAndRelay(test::TurnTestClient& client) {
  REQUIRE(client.transact([&] { return client.session.allocate({}); }) == Outcome::kSuccess);
  CHECK(client.session.lastResponseSigned());
  REQUIRE(client.session.relayed().has_value());
  auto peer = test::connectedSocket(false, {*wire::IpAddress::parse(kPeerHost), 0}, *client.session.relayed());
  const wire::SocketAddress peers[] = {io::localAddress(peer.get())};
  REQUIRE(client.transact([&] { return client.session.createPermission(peers); }) == Outcome::kSuccess);
  CHECK(client.session.lastResponseSigned());
  const std::vector<std::uint8_t> hello{'s', 'h', 'a', '2', '5', '6'};
  test::sendRaw(peer.get(), hello);
  const auto data = test::receiveDatagram(client.fd.get(), std::chrono::milliseconds(2000));
  auto view = wire::MessageView::parse(data);
  REQUIRE(view.has_value());
  auto payload = view->get<wire::attr::Data>();
  REQUIRE(payload.has_value());
  CHECK(std::vector<std::uint8_t>(payload->value.begin(), payload->value.end()) == hello);
  REQUIRE(client.transact([&] { return client.session.refresh(0); }) == Outcome::kSuccess);
  CHECK(client.session.lastResponseSigned());
}

bool carries(const wire::MessageView& m, wire::AttributeType type) { return m.has(type); }

}  // namespace

TEST_CASE("an RFC 8489 client negotiates SHA-256 and both sides sign with MESSAGE-INTEGRITY-SHA256") {
  TernServer server(relayArgs());
  const auto credential = auth::mintRestCredential(kSecret, "modern", std::time(nullptr), 600);
  test::TurnTestClient client(kLoopbackClient, server.udp(), credential.username, credential.password, false);
  client.session = client::TurnSession(credential.username, credential.password, Security::kSha256);
  allocateAndRelay(client);
  CHECK(client.session.passwordAlgorithm() == 2);
  CHECK(client.session.nonce().starts_with("obMatJos2"));
  const auto last = client.view();
  CHECK(carries(last, wire::AttributeType::kMessageIntegritySha256));
  CHECK_FALSE(carries(last, wire::AttributeType::kMessageIntegrity));
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("a classic RFC 5389 exchange with the same server: MD5 key, MESSAGE-INTEGRITY only") {
  TernServer server(relayArgs());
  const auto credential = auth::mintRestCredential(kSecret, "classic", std::time(nullptr), 600);
  test::TurnTestClient client(kLoopbackClient, server.udp(), credential.username, credential.password, false);
  allocateAndRelay(client);
  CHECK(client.session.passwordAlgorithm() == 1);
  const auto last = client.view();
  CHECK(carries(last, wire::AttributeType::kMessageIntegrity));
  CHECK_FALSE(carries(last, wire::AttributeType::kMessageIntegritySha256));
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("a static user allocates anonymously with USERHASH, its name never on the wire") {
  TernServer server(relayArgs());
  test::TurnTestClient client(kLoopbackClient, server.udp(), "anon", "anon-password", false);
  client.session = client::TurnSession("anon", "anon-password", Security::kSha256Userhash);
  REQUIRE(client.transact([&] { return client.session.allocate({}); }) == Outcome::kSuccess);
  CHECK(client.session.lastResponseSigned());
  const auto request = client.session.refresh(600);
  auto view = wire::MessageView::parse(request);
  REQUIRE(view.has_value());
  CHECK(view->has(wire::AttributeType::kUserhash));
  CHECK_FALSE(view->has(wire::AttributeType::kUsername));
  REQUIRE(client.transact([&] { return client.session.refresh(0); }) == Outcome::kSuccess);
  CHECK(server.process().stop(SIGTERM) == 0);
  // The usage record names the user the hash stands for.
  CHECK(server.process().output().find("user=anon") != std::string::npos);
}

TEST_CASE("a PASSWORD-ALGORITHMS list altered in transit (a bid-down) gets 400 and allocates nothing") {
  TernServer server(relayArgs());
  const auto credential = auth::mintRestCredential(kSecret, "victim", std::time(nullptr), 600);
  test::TurnTestClient client(kLoopbackClient, server.udp(), credential.username, credential.password, false);
  client.session = client::TurnSession(credential.username, credential.password, Security::kSha256);
  // The first Allocate teaches the session the server's list; a man in the middle would have
  // left only MD5 in it.
  auto first = test::exchange(client.fd.get(), false, client.session.allocate({}));
  REQUIRE(first.has_value());
  auto challenge = wire::MessageView::parse(*first);
  REQUIRE(challenge.has_value());
  REQUIRE(challenge->has(wire::AttributeType::kPasswordAlgorithms));
  REQUIRE(client.session.onResponse(*challenge) == Outcome::kRetry);
  client.session.setEchoedAlgorithms({1});
  CHECK(client.transact([&] { return client.session.allocate({}); }) == Outcome::kError);
  CHECK(client.session.lastErrorCode() == 400);
  CHECK(server.process().stop(SIGTERM) == 0);
  CHECK(server.process().output().find("allocation created") == std::string::npos);
}

TEST_CASE(
    "a NONCE tern never issued gets 438 with a fresh NONCE, REALM and PASSWORD-ALGORITHMS, unsigned, and "
    "the retry allocates (RFC 8489 §9.2.4, issue 18)") {
  TernServer server(relayArgs());
  const auto credential = auth::mintRestCredential(kSecret, "restarted", std::time(nullptr), 600);
  test::TurnTestClient client(kLoopbackClient, server.udp(), credential.username, credential.password, false);
  client.session = client::TurnSession(credential.username, credential.password, Security::kSha256);
  // The first Allocate teaches the session the realm, a nonce and the algorithms.
  auto first = test::exchange(client.fd.get(), false, client.session.allocate({}));
  REQUIRE(first.has_value());
  auto challenge = wire::MessageView::parse(*first);
  REQUIRE(challenge.has_value());
  REQUIRE(client.session.onResponse(*challenge) == Outcome::kRetry);
  // A nonce of another tern, or of this one before a restart: our cookie, a tag that is not
  // ours. coturn answers it 438; a 401 would tell the client its password is wrong.
  std::string forged = client.session.nonce();
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  client.session.setNonce(forged);
  auto answer = test::exchange(client.fd.get(), false, client.session.allocate({}));
  REQUIRE(answer.has_value());
  auto stale = wire::MessageView::parse(*answer);
  REQUIRE(stale.has_value());
  CHECK(stale->messageClass() == wire::MessageClass::kErrorResponse);
  REQUIRE(stale->get<wire::attr::ErrorCode>().has_value());
  CHECK(stale->get<wire::attr::ErrorCode>()->code == 438);
  REQUIRE(stale->get<wire::attr::Nonce>().has_value());
  CHECK(stale->get<wire::attr::Nonce>()->value != forged);
  CHECK(stale->get<wire::attr::Nonce>()->value.starts_with("obMatJos2"));
  REQUIRE(stale->get<wire::attr::Realm>().has_value());
  CHECK(stale->get<wire::attr::Realm>()->value == "tern.test");
  // RFC 8489 §9.2.5: with the cookie's password-algorithms bit, a 438 without
  // PASSWORD-ALGORITHMS must be ignored by the client.
  CHECK(carries(*stale, wire::AttributeType::kPasswordAlgorithms));
  CHECK_FALSE(carries(*stale, wire::AttributeType::kMessageIntegrity));
  CHECK_FALSE(carries(*stale, wire::AttributeType::kMessageIntegritySha256));
  // No larger than the 401 before it: the same minimal challenge over UDP.
  CHECK(answer->size() <= first->size());
  // RFC 8489 §9.2.5: the client retries with the new nonce, and allocates.
  CHECK(client.session.onResponse(*stale) == Outcome::kRetry);
  REQUIRE(client.transact([&] { return client.session.allocate({}); }) == Outcome::kSuccess);
  CHECK(client.session.lastResponseSigned());
  CHECK(server.process().stop(SIGTERM) == 0);
}
