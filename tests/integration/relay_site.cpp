// See relay_site.hpp.
#include "relay_site.hpp"

#include <ctime>
#include <optional>
#include <thread>

#include "auth/rest_credentials.hpp"
#include "support/stun_socket.hpp"
#include "support/turn_tools.hpp"

namespace tern::test {
namespace {

constexpr const char* kSecret = "relay-site-secret";
constexpr const char* kRealm = "tern.test";
// Loopback peers live on 127.0.0.2: 127.0.0.1 is the relay's own address, where only relay
// ports may be reached (the peer policy's own-address rule).
constexpr const char* kLoopbackPeer = "127.0.0.2";
constexpr const char* kLoopbackClient = "127.0.0.1";
constexpr std::uint16_t kLabPeerPort = 5000;

const LabAddresses& lab4() { return labAddresses(Family::kIpv4); }

std::unique_ptr<TernServer> loopbackTern(std::vector<std::string> extra) {
  static const std::string secrets = temporaryFile(std::string(kSecret) + "\n");
  // Loopback has one IPv6 address: the peers share ::1 with the relay.
  std::vector<std::string> args{"--realm",
                                kRealm,
                                "--auth-secret-file",
                                secrets,
                                "--listen",
                                "127.0.0.1:0",
                                "--listen",
                                "[::1]:0",
                                "--relay-ip",
                                "127.0.0.1",
                                "--relay-ip",
                                "::1",
                                "--relay-ports",
                                "61000-61999",
                                "--allow-peer",
                                "127.0.0.0/8",
                                "--allow-peer",
                                "::1/128",
                                "--allow-own-address-peers",
                                "true"};
  args.insert(args.end(), extra.begin(), extra.end());
  return std::make_unique<TernServer>(args);
}

}  // namespace

RelaySite::RelaySite(Where where, std::vector<std::string> extra) {
  if (where == Where::kLoopback) {
    tern_ = loopbackTern(std::move(extra));
    return;
  }
  lab_ = std::make_unique<FastPathTopology>();
  tern_ = lab_->startTern(true, std::move(extra));
}

wire::SocketAddress RelaySite::server(Family family) const {
  if (lab_) return socketAddress(labAddresses(family).relay_client, kTurnPort);
  return tern_->udp(family == Family::kIpv4 ? 0 : 1);
}

std::string RelaySite::clientHost() const { return lab_ ? lab4().client : kLoopbackClient; }

std::string RelaySite::peerHost(Family family) const {
  if (lab_) return labAddresses(family).peer;
  return family == Family::kIpv4 ? kLoopbackPeer : "::1";
}

std::vector<std::string> RelaySite::uclientCredential() const {
  if (lab_) return {"-u", kLabUser, "-w", kLabPassword};
  return {"-u", "uclient", "-W", kSecret};
}

std::pair<std::string, std::string> RelaySite::credential(const std::string& name) const {
  if (lab_) return {kLabUser, kLabPassword};
  const auto minted = auth::mintRestCredential(kSecret, name, std::time(nullptr), 600);
  return {minted.username, minted.password};
}

std::uint16_t RelaySite::echoPeer(Family family) {
  const std::string host = peerHost(family);
  const std::uint16_t port = lab_ ? static_cast<std::uint16_t>(kLabPeerPort + echo_peers_.size())
                                  : freeUdpPort(host.c_str());
  std::vector<std::string> argv{"/usr/bin/turnutils_peer", "-L", host, "-p", std::to_string(port)};
  echo_peers_.push_back(std::make_unique<ChildProcess>(lab_ ? lab_->peer.command(argv) : argv));
  // It prints nothing when ready; give it a moment to bind.
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  return port;
}

CommandResult RelaySite::runOnClient(std::vector<std::string> argv,
                                     std::chrono::milliseconds timeout) const {
  return runCommand(lab_ ? lab_->client.command(std::move(argv)) : std::move(argv), timeout);
}

std::unique_ptr<TurnTestClient> RelaySite::turnClient(const std::string& name) const {
  const auto [username, password] = credential(name);
  std::optional<NetworkNamespace::Inside> inside;
  if (lab_) inside.emplace(lab_->client);
  return std::make_unique<TurnTestClient>(socketAddress(clientHost(), 0), server(), username,
                                          password, false);
}

std::unique_ptr<LabSocket> RelaySite::peerSocket() const {
  return std::make_unique<LabSocket>(lab_ ? &lab_->peer : nullptr, peerHost());
}

std::uint64_t RelaySite::kernelPackets(const std::string& direction) const {
  return lab_ ? lab_->settledRelayedPackets(*tern_, direction, "kernel") : 0;
}

}  // namespace tern::test
