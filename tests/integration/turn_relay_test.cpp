// TURN over UDP and TCP (RFC 8656) against a real `tern serve`, with clients nobody here wrote:
// coturn's turnutils_uclient over TCP relaying to turnutils_peer (channels and Send/Data
// indications) and python3-aioice's TURN client over TCP through an echo peer; plus the
// refusals a client must get (401, 438, 437). Relaying over UDP is in relay_cases_test.cpp,
// which runs each case on loopback and again with the kernel fast path on (issue 21).
#include <doctest/doctest.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <memory>
#include <ctime>
#include <fstream>
#include <regex>

#include "auth/message_integrity.hpp"
#include "auth/rest_credentials.hpp"
#include "relay/client/binding.hpp"
#include "relay/client/turn_session.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "support/process.hpp"
#include "support/stun_socket.hpp"
#include "support/tern_server.hpp"
#include "support/turn_test_client.hpp"
#include "support/turn_tools.hpp"

using namespace tern;
using test::TernServer;

namespace {

constexpr const char* kSecret = "integration-secret";
constexpr const char* kRealm = "tern.test";

// Peers live on 127.0.0.2: 127.0.0.1 is the relay's own address, where only relay ports
// may be reached (the peer policy's own-address rule).
constexpr const char* kPeerHost = "127.0.0.2";

// The current secret first (tern token mints with it), an older one still accepted.
std::string secretFile() {
  static const std::string path = test::temporaryFile(
      std::string("# current, then the one being rotated out\n") + kSecret + "\nold-secret\n");
  return path;
}

std::vector<std::string> relayArgs(std::vector<std::string> extra = {}) {
  std::vector<std::string> args{"--realm", kRealm, "--auth-secret-file", secretFile(),
                                "--relay-ip", "127.0.0.1", "--relay-ports", "61000-61999",
                                "--allow-peer", "127.0.0.0/8", "--user", "static:static-password"};
  args.insert(args.end(), extra.begin(), extra.end());
  return args;
}

// turnutils_uclient with tern's REST secret against `peer_port` on kPeerHost.
test::UclientReport runUclient(std::uint16_t server_port, std::uint16_t peer_port, std::vector<std::string> flags) {
  std::vector<std::string> args{"-W", kSecret, "-u", "uclient", "-e", kPeerHost, "-r", std::to_string(peer_port),
                                "-p", std::to_string(server_port)};
  args.insert(args.end(), flags.begin(), flags.end());
  args.push_back("127.0.0.1");
  return test::runUclient(args);
}

}  // namespace

TEST_CASE("turnutils_uclient over TCP (-t) relays channels, padded to 4 bytes, with zero loss") {
  TernServer server(relayArgs());
  test::EchoPeer peer(kPeerHost);
  const auto peer_port = peer.port();
  // 161-byte messages: ChannelData over TCP must be padded (RFC 8656 §12.5) both ways.
  auto r = runUclient(server.udp().port, peer_port, {"-t", "-n", "100", "-m", "4", "-l", "161", "-z", "5"});
  INFO(r.output);
  CHECK(r.lost == 0);
  CHECK(r.sent == 400);
  CHECK(r.received == 400);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("turnutils_uclient over TCP with Send and Data indications (-t -s) with zero loss") {
  TernServer server(relayArgs());
  test::EchoPeer peer(kPeerHost);
  const auto peer_port = peer.port();
  auto r = runUclient(server.udp().port, peer_port, {"-t", "-s", "-c", "-n", "100", "-m", "2", "-l", "1000", "-z", "5"});
  INFO(r.output);
  CHECK(r.lost == 0);
  CHECK(r.sent == 200);
  CHECK(r.received == 200);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("python3-aioice over TCP relays datagrams byte-identical") {
  TernServer server(relayArgs());
  const auto credential = auth::mintRestCredential(kSecret, "aioice-tcp", std::time(nullptr), 600);
  auto result = test::runCommand({"/usr/bin/python3", TERN_CLIENTS_DIR "/aioice_echo.py", "--server",
                                  server.tcp().toString(), "--username", credential.username,
                                  "--password", credential.password, "--peer-host", kPeerHost,
                                  "--transport", "tcp"});
  INFO(result.output);
  CHECK(result.status == 0);
  CHECK(result.output.find("\"intact\": 6") != std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("a static user from --user can allocate, a wrong password gets 401") {
  TernServer server(relayArgs());
  auto good = test::runCommand({"/usr/bin/python3", TERN_CLIENTS_DIR "/aioice_echo.py", "--server",
                                server.udp().toString(), "--username", "static", "--password",
                                "static-password", "--peer-host", kPeerHost, "--sizes", "100"});
  INFO(good.output);
  CHECK(good.status == 0);
  auto bad = test::runCommand({"/usr/bin/python3", TERN_CLIENTS_DIR "/aioice_echo.py", "--server",
                               server.udp().toString(), "--username", "static", "--password", "wrong",
                               "--peer-host", kPeerHost, "--sizes", "100"});
  CHECK(bad.status != 0);
  CHECK(bad.output.find("401") != std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}

namespace {

// One request/response exchange of `session` over `fd`, rebuilding and resending once the
// server has named its realm and nonce (401 first, or 438).
template <class MakeRequest>
client::TurnSession::Outcome transact(int fd, client::TurnSession& session, MakeRequest make) {
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto response = test::exchange(fd, false, make());
    REQUIRE(response.has_value());
    auto view = wire::MessageView::parse(*response);
    REQUIRE(view.has_value());
    const auto outcome = session.onResponse(*view);
    if (outcome != client::TurnSession::Outcome::kRetry) return outcome;
  }
  return client::TurnSession::Outcome::kError;
}

client::TurnSession::Outcome allocate(int fd, client::TurnSession& session) {
  return transact(fd, session, [&] { return session.allocate({}); });
}

const wire::SocketAddress kLoopbackClient{*wire::IpAddress::parse("127.0.0.1"), 0};


}  // namespace

TEST_CASE("a wrong password gets 401 and allocates nothing (RFC 8489 §9.2.4)") {
  TernServer server(relayArgs());
  auto fd = test::connectedSocket(false, kLoopbackClient, server.udp());
  const auto credential = auth::mintRestCredential(kSecret, "mallory", std::time(nullptr), 600);
  client::TurnSession session(credential.username, "not-the-password");
  CHECK(allocate(fd.get(), session) == client::TurnSession::Outcome::kError);
  CHECK(session.lastErrorCode() == 401);
  CHECK_FALSE(server.process().output().find("allocation created") != std::string::npos);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("an expired TURN REST credential gets 401") {
  TernServer server(relayArgs());
  auto fd = test::connectedSocket(false, kLoopbackClient, server.udp());
  const auto expired = auth::mintRestCredential(kSecret, "late", std::time(nullptr) - 3600, 60);
  client::TurnSession session(expired.username, expired.password);
  CHECK(allocate(fd.get(), session) == client::TurnSession::Outcome::kError);
  CHECK(session.lastErrorCode() == 401);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("a credential minted with a rotated-out-but-still-listed secret works") {
  TernServer server(relayArgs());
  auto fd = test::connectedSocket(false, kLoopbackClient, server.udp());
  const auto old = auth::mintRestCredential("old-secret", "rotating", std::time(nullptr), 600);
  client::TurnSession session(old.username, old.password);
  CHECK(allocate(fd.get(), session) == client::TurnSession::Outcome::kSuccess);
  CHECK(session.lastResponseSigned());
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("a stale nonce gets 438 with a fresh one, and the retry succeeds") {
  TernServer server(relayArgs({"--nonce-lifetime", "1"}));
  auto fd = test::connectedSocket(false, kLoopbackClient, server.udp());
  const auto credential = auth::mintRestCredential(kSecret, "slow", std::time(nullptr), 600);
  client::TurnSession session(credential.username, credential.password);
  REQUIRE(allocate(fd.get(), session) == client::TurnSession::Outcome::kSuccess);
  const std::string first_nonce = session.nonce();
  usleep(2100 * 1000);
  auto response = test::exchange(fd.get(), false, session.refresh(600));
  REQUIRE(response.has_value());
  auto view = wire::MessageView::parse(*response);
  REQUIRE(view.has_value());
  CHECK(session.onResponse(*view) == client::TurnSession::Outcome::kRetry);
  CHECK(session.lastErrorCode() == 438);
  CHECK(session.nonce() != first_nonce);
  CHECK(transact(fd.get(), session, [&] { return session.refresh(600); }) ==
        client::TurnSession::Outcome::kSuccess);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("a second Allocate on the same 5-tuple gets 437 (RFC 8656 §7.2)") {
  TernServer server(relayArgs());
  auto fd = test::connectedSocket(false, kLoopbackClient, server.udp());
  const auto credential = auth::mintRestCredential(kSecret, "twice", std::time(nullptr), 600);
  client::TurnSession session(credential.username, credential.password);
  REQUIRE(allocate(fd.get(), session) == client::TurnSession::Outcome::kSuccess);
  CHECK(allocate(fd.get(), session) == client::TurnSession::Outcome::kError);
  CHECK(session.lastErrorCode() == 437);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("a peer on the relay's own address outside the relay ports is refused (403)") {
  TernServer server(relayArgs());
  auto fd = test::connectedSocket(false, kLoopbackClient, server.udp());
  const auto credential = auth::mintRestCredential(kSecret, "sneaky", std::time(nullptr), 600);
  client::TurnSession session(credential.username, credential.password);
  REQUIRE(allocate(fd.get(), session) == client::TurnSession::Outcome::kSuccess);
  // The relay's own STUN port on its own address: a channel there would loop into tern.
  CHECK(transact(fd.get(), session, [&] { return session.channelBind(0x4000, server.udp()); }) ==
        client::TurnSession::Outcome::kError);
  CHECK(session.lastErrorCode() == 403);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("tern token mints credentials that a real client allocates with") {
  TernServer server(relayArgs());
  // The first secret of the file is the one new credentials use; the server accepts all.
  auto minted = test::runCommand({test::ternBinary(), "token", "--secret-file", secretFile(), "--user",
                                  "webapp", "--ttl", "600", "--url", "turn:127.0.0.1:3478"});
  INFO(minted.output);
  REQUIRE(minted.status == 0);
  std::smatch user, pass;
  REQUIRE(std::regex_search(minted.output, user, std::regex(R"(username: (\d+:webapp))")));
  REQUIRE(std::regex_search(minted.output, pass, std::regex(R"(password: (\S+))")));
  CHECK(minted.output.find(R"("urls": ["turn:127.0.0.1:3478"])") != std::string::npos);
  CHECK(minted.output.find("\"credential\": \"" + pass[1].str() + "\"") != std::string::npos);
  auto used = test::runCommand({"/usr/bin/python3", TERN_CLIENTS_DIR "/aioice_echo.py", "--server",
                                server.udp().toString(), "--username", user[1].str(), "--password",
                                pass[1].str(), "--peer-host", kPeerHost, "--sizes", "100,1000"});
  INFO(used.output);
  CHECK(used.status == 0);
  CHECK(server.process().stop(SIGTERM) == 0);
}

TEST_CASE("tern token without a secret says how to give one") {
  auto r = test::runCommand({test::ternBinary(), "token", "--user", "x"});
  CHECK(r.status == 2);
  CHECK(r.output.find("--secret-file") != std::string::npos);
}

TEST_CASE("every TURN request is refused when no credentials are configured, with a warning") {
  TernServer server({"--relay-ip", "127.0.0.1", "--allow-peer", "127.0.0.0/8"});
  CHECK(server.process().waitForLine("no credentials configured").has_value());
  auto fd = test::connectedSocket(false, kLoopbackClient, server.udp());
  client::TurnSession session("anyone", "anything");
  CHECK(allocate(fd.get(), session) == client::TurnSession::Outcome::kError);
  CHECK(session.lastErrorCode() == 401);
  CHECK(server.process().stop(SIGTERM) == 0);
}

namespace {

// Resident memory of a process, in KiB (/proc/PID/status VmRSS).
long residentKiB(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  }
  return -1;
}

}  // namespace

TEST_CASE("a TCP client that stops reading costs bounded memory, media is dropped, others are served") {
  TernServer server(relayArgs());
  const auto credential = auth::mintRestCredential(kSecret, "slow-reader", std::time(nullptr), 600);
  test::TurnTestClient turn(kLoopbackClient, server.tcp(), credential.username, credential.password);
  // A small receive buffer so the kernel stops taking data early and tern's queue fills.
  const int small = 4096;
  ::setsockopt(turn.fd.get(), SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
  REQUIRE(turn.transact([&] { return turn.session.allocate({}); }) == client::TurnSession::Outcome::kSuccess);
  auto peer = test::connectedSocket(false, {*wire::IpAddress::parse(kPeerHost), 0}, *turn.session.relayed());
  const wire::SocketAddress peers[] = {io::localAddress(peer.get())};
  REQUIRE(turn.transact([&] { return turn.session.createPermission(peers); }) ==
          client::TurnSession::Outcome::kSuccess);

  const long before = residentKiB(server.process().pid());
  // 40 MB of media at the relayed address; the client reads none of it.
  const std::vector<std::uint8_t> media(1200, 0x5A);
  for (int i = 0; i < 33000; ++i) {
    ::send(peer.get(), media.data(), media.size(), 0);
    if (i % 1000 == 999) usleep(2000);  // let the relay keep up rather than the kernel drop
  }
  usleep(500 * 1000);
  const long after = residentKiB(server.process().pid());
  INFO("resident KiB before " << before << ", after " << after);
  // The connection's write queue is bounded at 256 KiB; allow generous slack for the
  // allocator, but never anything near the 40 MB sent.
  CHECK(after - before < 16 * 1024);
  // Other clients are still answered at once.
  auto other = test::connectedSocket(false, kLoopbackClient, server.udp());
  CHECK(test::exchange(other.get(), false, client::makeBindingRequest(true)).has_value());
  CHECK(server.process().stop(SIGTERM) == 0);
}

namespace {
std::size_t openDescriptors(pid_t pid) {
  std::size_t n = 0;
  for ([[maybe_unused]] const auto& entry :
       std::filesystem::directory_iterator("/proc/" + std::to_string(pid) + "/fd")) {
    ++n;
  }
  return n;
}
}  // namespace

TEST_CASE("out of descriptors, Allocate gets 508 with a reason, one log line, and recovers when one ends") {
  TernServer server(relayArgs());
  const pid_t pid = server.process().pid();
  // Room for a few more sockets (three past the count, plus any gaps among the numbers in
  // use): each Allocate holds one relay socket.
  const rlimit tight{openDescriptors(pid) + 3, openDescriptors(pid) + 3};
  REQUIRE(::prlimit(pid, RLIMIT_NOFILE, &tight, nullptr) == 0);
  INFO("tern log:\n" << server.process().output());

  const auto credential = auth::mintRestCredential(kSecret, "many", std::time(nullptr), 600);
  std::vector<std::unique_ptr<test::TurnTestClient>> clients;
  std::size_t granted = 0;
  bool refused = false;
  for (int i = 0; i < 8 && !refused; ++i) {
    clients.push_back(std::make_unique<test::TurnTestClient>(kLoopbackClient, server.udp(), credential.username,
                                                             credential.password, false));
    auto& turn = *clients.back();
    if (turn.transact([&] { return turn.session.allocate({}); }) == client::TurnSession::Outcome::kSuccess) {
      ++granted;
    } else {
      CHECK(turn.session.lastErrorCode() == 508);
      CHECK(turn.session.lastErrorReason().find("no more sockets") != std::string::npos);
      refused = true;
    }
  }
  REQUIRE(refused);
  CHECK(granted >= 1);
  // More refusals, one warning per worker and minute, naming the limit and the fix.
  auto& again = *clients.back();
  CHECK(again.transact([&] { return again.session.allocate({}); }) == client::TurnSession::Outcome::kError);
  CHECK(again.session.lastErrorCode() == 508);
  const std::string log = server.process().output();
  CHECK(log.find("relay sockets exhausted") != std::string::npos);
  CHECK(log.find("LimitNOFILE") != std::string::npos);
  // Other clients are still answered.
  auto other = test::connectedSocket(false, kLoopbackClient, server.udp());
  CHECK(test::exchange(other.get(), false, client::makeBindingRequest(true)).has_value());

  // One allocation ends; its socket (and its port) serve the next Allocate.
  auto& first = *clients.front();
  REQUIRE(first.transact([&] { return first.session.refresh(0); }) == client::TurnSession::Outcome::kSuccess);
  CHECK(again.transact([&] { return again.session.allocate({}); }) == client::TurnSession::Outcome::kSuccess);
  CHECK(server.process().stop(SIGTERM) == 0);
}
