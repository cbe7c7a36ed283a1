// A sans-I/O TURN client session (RFC 8656 §7-§12, RFC 8489 §9.2): builds Allocate, Refresh,
// CreatePermission and ChannelBind requests signed with long-term credentials, learns REALM
// and NONCE from 401 and 438 answers, and reads what responses grant. The caller owns the
// socket; tests, `tern probe` and the load generator share it.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "relay/wire/address.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "relay/wire/message.hpp"

namespace tern::client {

class TurnSession {
 public:
  // How requests prove the credentials (RFC 8489 §9.2).
  enum class Security : std::uint8_t {
    // RFC 5389 style: MD5 key, MESSAGE-INTEGRITY; what most deployed clients send.
    kClassic,
    // RFC 8489: when the server's nonce cookie offers password algorithms, SHA-256 key,
    // PASSWORD-ALGORITHMS copied back, PASSWORD-ALGORITHM and MESSAGE-INTEGRITY-SHA256;
    // a 401 whose cookie offers them without PASSWORD-ALGORITHMS is a bid-down attack.
    kSha256,
    // kSha256, and USERHASH instead of USERNAME when the cookie offers username anonymity.
    kSha256Userhash,
  };

  TurnSession(std::string username, std::string password, Security security = Security::kClassic);

  struct AllocateOptions {
    std::optional<std::uint32_t> lifetime;
    std::uint8_t transport = 17;                  // REQUESTED-TRANSPORT: UDP
    std::optional<std::uint8_t> address_family;   // REQUESTED-ADDRESS-FAMILY
    bool dont_fragment = false;
    // RFC 8016 §3.1: ask for a MOBILITY-TICKET (an empty one in the request).
    bool mobility = false;
    // RFC 8656 §7.2: EVEN-PORT, its R bit asking the server to keep the next port too; or
    // RESERVATION-TOKEN, claiming a port kept that way.
    std::optional<bool> even_port;
    std::optional<std::uint64_t> reservation_token;
  };
  std::vector<std::uint8_t> allocate(const AllocateOptions& options);
  std::vector<std::uint8_t> refresh(std::optional<std::uint32_t> lifetime);
  std::vector<std::uint8_t> createPermission(std::span<const wire::SocketAddress> peers);
  std::vector<std::uint8_t> channelBind(std::uint16_t channel, const wire::SocketAddress& peer);
  // RFC 6062 §4.3: a TCP connection from the relayed address to `peer` (TCP allocations).
  std::vector<std::uint8_t> connect(const wire::SocketAddress& peer);
  // RFC 6062 §4.4: sent on a new connection to the server, to make it the data connection of
  // the peer connection `connection_id` (from Connect's response or a ConnectionAttempt).
  std::vector<std::uint8_t> connectionBind(std::uint32_t connection_id);
  // Indications and ChannelData carry no credentials (RFC 8656 §11, §12).
  static std::vector<std::uint8_t> sendIndication(const wire::SocketAddress& peer, wire::Bytes data);
  static std::vector<std::uint8_t> channelData(std::uint16_t channel, wire::Bytes data, bool pad);

  // What a Data indication from the server says (RFC 8656 §11.4, §11.6): the peer, and the
  // application data it sent or the ICMP error a datagram to it caused. Checking that the
  // peer's IP has a live permission (RFC 8656 §11.6: SHOULD) is the caller's part.
  struct PeerMessage {
    wire::SocketAddress peer;
    std::optional<wire::Bytes> data;  // borrows the indication's bytes
    std::optional<wire::attr::Icmp> icmp;
  };
  // Nothing if `message` is not a Data indication, has no XOR-PEER-ADDRESS, or has neither
  // DATA nor ICMP: RFC 8656 §11.4 and §11.6 have the client discard those.
  static std::optional<PeerMessage> readDataIndication(const wire::MessageView& message);

  enum class Outcome : std::uint8_t {
    kSuccess,
    kRetry,  // 401 or 438 taught us REALM/NONCE: send the request again, rebuilt
    kError,
  };
  // Reads a response to one of this session's requests. On 401 (first time) and 438 it
  // learns the realm and nonce; the caller rebuilds the request and sends it again.
  Outcome onResponse(const wire::MessageView& response);

  std::uint16_t lastErrorCode() const noexcept { return last_error_code_; }
  const std::string& lastErrorReason() const noexcept { return last_error_reason_; }
  const std::optional<wire::SocketAddress>& relayed() const noexcept { return relayed_; }
  const std::optional<wire::SocketAddress>& mapped() const noexcept { return mapped_; }
  std::uint32_t lifetime() const noexcept { return lifetime_; }
  // RFC 8016: the latest MOBILITY-TICKET the server issued; refresh() sends it, so a Refresh
  // from a new local address moves the allocation there. Empty: none.
  const std::vector<std::uint8_t>& mobilityTicket() const noexcept { return mobility_ticket_; }
  void setMobilityTicket(std::vector<std::uint8_t> ticket) { mobility_ticket_ = std::move(ticket); }
  // After the client's address changed (RFC 8016): a server may bind its nonces to the
  // client's address and answer the next request 401 with a fresh one; that 401 is retried
  // like the first of the session, not taken for wrong credentials.
  void addressChanged() noexcept { retried_unauthenticated_ = false; }
  bool authenticated() const noexcept { return !nonce_.empty(); }
  // Whether the last success response carried a MESSAGE-INTEGRITY that verifies.
  bool lastResponseSigned() const noexcept { return last_signed_; }
  // For tests that need to misbehave: override the nonce sent next.
  void setNonce(std::string nonce) { nonce_ = std::move(nonce); }
  // For tests that play a man in the middle: the PASSWORD-ALGORITHMS list sent back.
  void setEchoedAlgorithms(std::vector<std::uint16_t> algorithms) { echoed_algorithms_ = std::move(algorithms); }
  // The algorithm the key was derived with (RFC 8489 §18.5: 1 = MD5, 2 = SHA-256).
  std::uint16_t passwordAlgorithm() const noexcept { return algorithm_; }
  const std::string& nonce() const noexcept { return nonce_; }

 private:
  template <class AddAttributes>
  std::vector<std::uint8_t> request(std::uint16_t method, AddAttributes&& add);

  // RFC 8489 §9.2.5: learns the key, algorithm and PASSWORD-ALGORITHMS from a 401 or 438;
  // false when the answer is a bid-down attempt.
  bool learnChallenge(const wire::MessageView& response, std::string_view realm, std::string_view nonce);
  void addCredentials(wire::MessageBuilder& b) const;

  std::string username_;
  std::string password_;
  Security security_;
  std::uint16_t algorithm_ = 1;                 // MD5 until a challenge offers better
  std::vector<std::uint16_t> echoed_algorithms_;  // PASSWORD-ALGORITHMS, empty: leave out
  bool use_userhash_ = false;
  bool sha256_integrity_ = false;
  std::string realm_;
  std::string nonce_;
  std::vector<std::uint8_t> key_;
  bool retried_unauthenticated_ = false;
  std::uint16_t last_error_code_ = 0;
  std::string last_error_reason_;
  std::optional<wire::SocketAddress> relayed_;
  std::optional<wire::SocketAddress> mapped_;
  std::uint32_t lifetime_ = 0;
  std::vector<std::uint8_t> mobility_ticket_;
  bool last_signed_ = false;
};

}  // namespace tern::client
