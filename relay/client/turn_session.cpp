// See turn_session.hpp.
#include "relay/client/turn_session.hpp"

#include "auth/crypto.hpp"
#include "auth/message_integrity.hpp"
#include "auth/nonce.hpp"
#include "relay/wire/attributes.hpp"
#include "relay/wire/builder.hpp"
#include "relay/wire/channel_data.hpp"

namespace tern::client {

namespace {
using wire::Method;
wire::TransactionId randomTransactionId() {
  wire::TransactionId tid{};
  auth::randomBytes(tid);
  return tid;
}
}  // namespace

TurnSession::TurnSession(std::string username, std::string password, Security security)
    : username_(std::move(username)), password_(std::move(password)), security_(security) {}

void TurnSession::addCredentials(wire::MessageBuilder& b) const {
  // RFC 8489 §9.2.3: once the server has named its realm and nonce, every request carries
  // USERNAME (or USERHASH), REALM, NONCE, the negotiated algorithms and the integrity.
  if (use_userhash_) {
    const auto hash = auth::userhash(username_, realm_);
    b.add(wire::attr::Userhash{wire::Bytes{hash.data(), hash.size()}});
  } else {
    b.add(wire::attr::Username{username_});
  }
  b.add(wire::attr::Realm{realm_}).add(wire::attr::Nonce{nonce_});
  if (!sha256_integrity_) {
    auth::addIntegrity(b, wire::AttributeType::kMessageIntegrity, key_);
    return;
  }
  if (!echoed_algorithms_.empty()) {
    wire::attr::PasswordAlgorithms echoed;
    for (std::uint16_t id : echoed_algorithms_) echoed.algorithms.push(wire::attr::PasswordAlgorithm{id, {}});
    b.add(echoed).add(wire::attr::PasswordAlgorithm{algorithm_, {}});
  }
  auth::addIntegrity(b, wire::AttributeType::kMessageIntegritySha256, key_);
}

bool TurnSession::learnChallenge(const wire::MessageView& response, std::string_view realm, std::string_view nonce) {
  realm_ = std::string(realm);
  nonce_ = std::string(nonce);
  algorithm_ = static_cast<std::uint16_t>(auth::PasswordAlgorithmId::kMd5);
  echoed_algorithms_.clear();
  use_userhash_ = false;
  sha256_integrity_ = false;
  if (security_ != Security::kClassic) {
    const std::uint32_t features = auth::NonceIssuer::featuresOf(nonce);
    const auto offered = response.get<wire::attr::PasswordAlgorithms>();
    if (features & auth::security_feature::kPasswordAlgorithms) {
      // RFC 8489 §9.2.5: the cookie says the server sent PASSWORD-ALGORITHMS; its absence
      // means someone removed it to bid us down to MD5.
      if (!offered) return false;
      for (const auto& a : offered->algorithms) {
        echoed_algorithms_.push_back(a.algorithm);
        if (a.algorithm == static_cast<std::uint16_t>(auth::PasswordAlgorithmId::kSha256)) {
          algorithm_ = a.algorithm;
        }
      }
    }
    // A server without the cookie is an RFC 5389 one, which knows only MESSAGE-INTEGRITY.
    sha256_integrity_ = features != 0;
    use_userhash_ = security_ == Security::kSha256Userhash && (features & auth::security_feature::kUsernameAnonymity);
  }
  key_ = auth::longTermKey(static_cast<auth::PasswordAlgorithmId>(algorithm_), username_, realm_, password_);
  return true;
}

template <class AddAttributes>
std::vector<std::uint8_t> TurnSession::request(std::uint16_t method, AddAttributes&& add) {
  std::vector<std::uint8_t> buf(1024);
  wire::MessageBuilder b(buf, static_cast<Method>(method), wire::MessageClass::kRequest, randomTransactionId());
  add(b);
  if (!nonce_.empty()) addCredentials(b);
  b.addFingerprint();
  buf.resize(b.finish().value().size());
  return buf;
}

std::vector<std::uint8_t> TurnSession::allocate(const AllocateOptions& options) {
  return request(static_cast<std::uint16_t>(Method::kAllocate), [&](wire::MessageBuilder& b) {
    b.add(wire::attr::RequestedTransport{options.transport});
    if (options.lifetime) b.add(wire::attr::Lifetime{*options.lifetime});
    if (options.address_family) b.add(wire::attr::RequestedAddressFamily{*options.address_family});
    if (options.dont_fragment) b.add(wire::attr::DontFragment{});
    if (options.even_port) b.add(wire::attr::EvenPort{*options.even_port});
    if (options.reservation_token) b.add(wire::attr::ReservationToken{*options.reservation_token});
    // RFC 8016 §3.1: zero length; the codec's MobilityTicket needs a value, so raw.
    if (options.mobility) b.addRaw(static_cast<std::uint16_t>(wire::AttributeType::kMobilityTicket), {});
  });
}

std::vector<std::uint8_t> TurnSession::refresh(std::optional<std::uint32_t> lifetime) {
  return request(static_cast<std::uint16_t>(Method::kRefresh), [&](wire::MessageBuilder& b) {
    if (lifetime) b.add(wire::attr::Lifetime{*lifetime});
    if (!mobility_ticket_.empty()) b.add(wire::attr::MobilityTicket{mobility_ticket_});
  });
}

std::vector<std::uint8_t> TurnSession::createPermission(std::span<const wire::SocketAddress> peers) {
  return request(static_cast<std::uint16_t>(Method::kCreatePermission), [&](wire::MessageBuilder& b) {
    for (const auto& p : peers) b.add(wire::attr::XorPeerAddress{p});
  });
}

std::vector<std::uint8_t> TurnSession::channelBind(std::uint16_t channel, const wire::SocketAddress& peer) {
  return request(static_cast<std::uint16_t>(Method::kChannelBind), [&](wire::MessageBuilder& b) {
    b.add(wire::attr::ChannelNumber{channel}).add(wire::attr::XorPeerAddress{peer});
  });
}

std::vector<std::uint8_t> TurnSession::connect(const wire::SocketAddress& peer) {
  return request(static_cast<std::uint16_t>(Method::kConnect),
                 [&](wire::MessageBuilder& b) { b.add(wire::attr::XorPeerAddress{peer}); });
}

std::vector<std::uint8_t> TurnSession::connectionBind(std::uint32_t connection_id) {
  return request(static_cast<std::uint16_t>(Method::kConnectionBind),
                 [&](wire::MessageBuilder& b) { b.add(wire::attr::ConnectionId{connection_id}); });
}

std::vector<std::uint8_t> TurnSession::sendIndication(const wire::SocketAddress& peer, wire::Bytes data) {
  std::vector<std::uint8_t> buf(data.size() + 128);
  wire::MessageBuilder b(buf, Method::kSend, wire::MessageClass::kIndication, randomTransactionId());
  b.add(wire::attr::XorPeerAddress{peer}).add(wire::attr::Data{data});
  buf.resize(b.finish().value().size());
  return buf;
}

std::vector<std::uint8_t> TurnSession::channelData(std::uint16_t channel, wire::Bytes data, bool pad) {
  std::vector<std::uint8_t> out(wire::kChannelDataHeaderSize + (pad ? wire::padTo4(data.size()) : data.size()));
  wire::writeChannelDataHeader(out.data(), channel, static_cast<std::uint16_t>(data.size()));
  std::copy(data.begin(), data.end(), out.begin() + wire::kChannelDataHeaderSize);
  return out;
}

std::optional<TurnSession::PeerMessage> TurnSession::readDataIndication(
    const wire::MessageView& message) {
  if (message.method() != static_cast<std::uint16_t>(Method::kData) ||
      message.messageClass() != wire::MessageClass::kIndication) {
    return std::nullopt;
  }
  const auto peer = message.get<wire::attr::XorPeerAddress>();
  if (!peer) return std::nullopt;
  PeerMessage out{peer->address, std::nullopt, message.get<wire::attr::Icmp>()};
  if (auto data = message.get<wire::attr::Data>()) out.data = data->value;
  if (!out.data && !out.icmp) return std::nullopt;
  return out;
}

TurnSession::Outcome TurnSession::onResponse(const wire::MessageView& response) {
  const auto integrity =
      sha256_integrity_ ? wire::AttributeType::kMessageIntegritySha256 : wire::AttributeType::kMessageIntegrity;
  last_signed_ = !key_.empty() && auth::verifyIntegrity(response, integrity, key_);
  if (response.messageClass() == wire::MessageClass::kSuccessResponse) {
    last_error_code_ = 0;
    last_error_reason_.clear();
    if (auto r = response.get<wire::attr::XorRelayedAddress>()) relayed_ = r->address;
    if (auto m = response.get<wire::attr::XorMappedAddress>()) mapped_ = m->address;
    if (auto l = response.get<wire::attr::Lifetime>()) lifetime_ = l->seconds;
    if (auto t = response.get<wire::attr::MobilityTicket>()) mobility_ticket_.assign(t->value.begin(), t->value.end());
    return Outcome::kSuccess;
  }
  auto error = response.get<wire::attr::ErrorCode>();
  last_error_code_ = error ? error->code : 0;
  last_error_reason_ = error ? std::string(error->reason) : std::string("no ERROR-CODE");
  const auto realm = response.get<wire::attr::Realm>();
  const auto nonce = response.get<wire::attr::Nonce>();
  const bool learnable = realm && nonce;
  // RFC 8489 §9.2.5: the first 401 names the realm and nonce; a 438 names a fresh nonce.
  // A second 401 means the credentials are wrong: retrying would not help.
  const bool first_401 = last_error_code_ == 401 && !retried_unauthenticated_;
  if (learnable && (first_401 || last_error_code_ == 438)) {
    if (last_error_code_ == 401) retried_unauthenticated_ = true;
    if (!learnChallenge(response, realm->value, nonce->value)) {
      last_error_reason_ = "bid-down: nonce cookie offers password algorithms, PASSWORD-ALGORITHMS missing";
      return Outcome::kError;
    }
    return Outcome::kRetry;
  }
  return Outcome::kError;
}

}  // namespace tern::client
