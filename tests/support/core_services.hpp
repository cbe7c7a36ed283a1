// The shared services a TurnServer needs, built for tests and the fuzzer: real credentials
// (a REST secret and a static user), real stateless nonces, the real peer policy and a
// simple quota. Known values so tests can sign requests.
#pragma once

#include <map>
#include <memory>
#include <string>

#include "auth/authenticator.hpp"
#include "auth/credential_store.hpp"
#include "auth/mobility_ticket.hpp"
#include "auth/nonce.hpp"
#include "relay/core/peer_policy.hpp"
#include "relay/core/server_options.hpp"
#include "relay/core/server_output.hpp"

namespace tern::test {

inline constexpr const char* kTestRealm = "example.org";
inline constexpr const char* kTestSecret = "north";
inline constexpr const char* kTestUser = "alice";
inline constexpr const char* kTestPassword = "wonderland";

// Counts per user and in total, like the shared quota of relay/io, without locks. A user's
// bandwidth buckets stay for the life of the quota (map nodes do not move), so two harnesses
// that share one quota (two workers) share them too.
class CountingQuota final : public core::AllocationQuota {
 public:
  CountingQuota(std::uint32_t max_total, std::uint32_t max_per_user)
      : max_total_(max_total), max_per_user_(max_per_user) {}
  Admission acquire(std::string_view user) noexcept override {
    if (max_total_ != 0 && total_ >= max_total_) return {Grant::kTotalQuotaReached, nullptr};
    auto& entry = per_user_[std::string(user)];
    if (max_per_user_ != 0 && entry.allocations >= max_per_user_) return {Grant::kUserQuotaReached, nullptr};
    ++entry.allocations;
    ++total_;
    return {Grant::kGranted, &entry.bandwidth};
  }
  Admission forceAcquire(std::string_view user) noexcept override {
    auto& entry = per_user_[std::string(user)];
    ++entry.allocations;
    ++total_;
    return {Grant::kGranted, &entry.bandwidth};
  }
  void release(std::string_view user) noexcept override {
    --total_;
    --per_user_[std::string(user)].allocations;
  }
  std::uint32_t total() const noexcept { return total_; }
  std::uint32_t allocationsOf(std::string_view user) const {
    const auto it = per_user_.find(std::string(user));
    return it == per_user_.end() ? 0 : it->second.allocations;
  }

 private:
  struct User {
    std::uint32_t allocations = 0;
    core::UserBandwidth bandwidth;
  };
  std::uint32_t max_total_, max_per_user_, total_ = 0;
  std::map<std::string, User> per_user_;
};

struct ServicesOptions {
  std::uint32_t max_total = 0;
  std::uint32_t max_per_user = 0;
  std::vector<std::string> allow_peers;
  std::vector<std::string> deny_peers;
  std::vector<std::string> own_addresses{"198.51.100.7"};
  // The relay IPs of RecordingOutput's relay sockets, which it marks open and closed here.
  std::shared_ptr<core::LiveRelayPorts> live_relays = std::make_shared<core::LiveRelayPorts>(
      std::vector{*wire::IpAddress::parse("198.51.100.7"), *wire::IpAddress::parse("2001:db8::7")});
  std::chrono::seconds nonce_lifetime{600};
};

inline core::ServerServices makeServices(const ServicesOptions& o = {}) {
  auth::CredentialOptions credentials;
  credentials.realm = kTestRealm;
  credentials.rest_secrets = {kTestSecret};
  credentials.static_users = {{kTestUser, kTestPassword}};
  std::array<std::uint8_t, 32> key{};
  key.fill(7);
  auto store = std::make_shared<const auth::CredentialStore>(credentials);
  auto nonces = std::make_shared<const auth::NonceIssuer>(key, o.nonce_lifetime);
  core::PeerPolicyOptions policy;
  for (const auto& c : o.allow_peers) policy.allow.push_back(*wire::Cidr::parse(c));
  for (const auto& c : o.deny_peers) policy.deny.push_back(*wire::Cidr::parse(c));
  for (const auto& a : o.own_addresses) policy.own_addresses.push_back(*wire::IpAddress::parse(a));
  policy.live_relays = o.live_relays;
  core::ServerServices services;
  services.authenticator = std::make_shared<const auth::Authenticator>(store, nonces);
  services.peer_policy = std::make_shared<const core::PeerPolicy>(policy);
  services.quota = std::make_shared<CountingQuota>(o.max_total, o.max_per_user);
  services.tickets = std::make_shared<const auth::MobilityTicketCodec>(key);
  return services;
}

}  // namespace tern::test
