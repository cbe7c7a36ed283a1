// One TURN allocation (RFC 8656 §2.2, §9, §12): the relayed address bound to a client's
// 5-tuple, its permissions (per peer IP) and channel bindings (channel <-> peer address).
// Lists are small vectors that grow only on the control path; the packet path only reads them.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "relay/core/five_tuple.hpp"
#include "relay/core/server_output.hpp"
#include "relay/wire/stun_constants.hpp"

namespace tern::core {

struct Permission {
  IpAddress peer;  // normalised (IPv4-mapped IPv6 is IPv4)
  TimePoint expires;
};

struct ChannelBinding {
  std::uint16_t number = 0;
  SocketAddress peer;
  TimePoint expires;
};

// What one allocation relayed, for its usage record when it ends (RFC 6062 data included).
struct AllocationUsage {
  std::uint64_t packets_to_peer = 0;
  std::uint64_t bytes_to_peer = 0;
  std::uint64_t packets_to_client = 0;
  std::uint64_t bytes_to_client = 0;
};

class Allocation {
 public:
  Allocation(const FiveTuple& tuple, RelayId relay, const SocketAddress& relayed,
             std::string username, std::vector<std::uint8_t> key, TimePoint now);

  const FiveTuple& tuple() const noexcept { return tuple_; }
  RelayId relay() const noexcept { return relay_; }
  // The relayed transport address as advertised to the client (after --external-ip).
  const SocketAddress& relayed() const noexcept { return relayed_; }
  const std::string& username() const noexcept { return username_; }
  const std::vector<std::uint8_t>& key() const noexcept { return key_; }
  // The integrity attribute the client signs with, for responses sent later (RFC 6062 Connect).
  wire::AttributeType integrity() const noexcept { return integrity_; }
  void setIntegrity(wire::AttributeType integrity) noexcept { integrity_ = integrity; }
  TimePoint created() const noexcept { return created_; }
  AllocationUsage& usage() noexcept { return usage_; }
  const AllocationUsage& usage() const noexcept { return usage_; }
  TimePoint expires() const noexcept { return expires_; }
  void setExpiry(TimePoint t) noexcept { expires_ = t; }
  bool expired(TimePoint now) const noexcept { return now >= expires_; }

  // RFC 8656 §7.2: a retransmitted Allocate is answered with success again, not 437.
  const wire::TransactionId& allocateTransaction() const noexcept { return allocate_transaction_; }
  void setAllocateTransaction(const wire::TransactionId& t) noexcept { allocate_transaction_ = t; }
  // What that success carried besides the addresses and the lifetime, for the retransmission:
  // the RESERVATION-TOKEN of the port reserved with it, and whether ADDITIONAL-ADDRESS-FAMILY
  // was refused with ADDRESS-ERROR-CODE.
  const std::optional<std::uint64_t>& reservationToken() const noexcept {
    return reservation_token_;
  }
  bool additionalFamilyRefused() const noexcept { return additional_family_refused_; }
  void setAllocateExtras(std::optional<std::uint64_t> token,
                         bool additional_family_refused) noexcept {
    reservation_token_ = token;
    additional_family_refused_ = additional_family_refused;
  }

  // RFC 6062: the relayed address is a TCP listener, and data flows over TCP connections
  // (listed here by CONNECTION-ID) instead of Send/Data and channels.
  bool tcp() const noexcept { return tcp_; }
  void setTcp() noexcept { tcp_ = true; }
  const std::vector<ConnectionId>& connections() const noexcept { return connections_; }
  void addConnection(ConnectionId id) { connections_.push_back(id); }
  void removeConnection(ConnectionId id) noexcept;

  // RFC 8656 §9: permissions are per IP address; expired ones do not count.
  bool hasPermission(const IpAddress& peer, TimePoint now) const noexcept;
  // Installs or refreshes; false if that would exceed `max_permissions` live permissions.
  bool installPermission(const IpAddress& peer, TimePoint now, TimePoint expires,
                         std::size_t max_permissions);
  std::size_t activePermissions(TimePoint now) const noexcept;

  const ChannelBinding* channelByNumber(std::uint16_t number, TimePoint now) const noexcept;
  const ChannelBinding* channelByPeer(const SocketAddress& peer, TimePoint now) const noexcept;
  // Binds or refreshes; the caller has checked RFC 8656 §12.2's rules. False past the cap.
  bool bindChannel(std::uint16_t number, const SocketAddress& peer, TimePoint now,
                   TimePoint expires, std::size_t max_channels);
  std::size_t activeChannels(TimePoint now) const noexcept;

 private:
  FiveTuple tuple_;
  RelayId relay_;
  SocketAddress relayed_;
  std::string username_;
  std::vector<std::uint8_t> key_;  // long-term key, to sign responses (RFC 8489 §9.2.4)
  wire::AttributeType integrity_ = wire::AttributeType::kMessageIntegrity;
  TimePoint created_;
  TimePoint expires_;
  AllocationUsage usage_;
  wire::TransactionId allocate_transaction_{};
  std::optional<std::uint64_t> reservation_token_;
  bool additional_family_refused_ = false;
  bool tcp_ = false;
  std::vector<ConnectionId> connections_;
  std::vector<Permission> permissions_;
  std::vector<ChannelBinding> channels_;
};

}  // namespace tern::core
