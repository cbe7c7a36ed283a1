// The byte encoding of AllocationSnapshot (see allocation_snapshot.hpp). Format version 1,
// every integer big-endian:
//
//   record  = version:u8 (1)  body-length:u32  body
//   body    = worker:u8 transport:u8 client:addr server:addr
//             relay-count:u8 (1-2) { relay-id:u32 relayed:addr }
//             username:text key:text integrity:u16 (0x0008 or 0x001C)
//             has-token:u8 [token-expiry:i64] token-kid:text
//             created-ago:i64 expires-in:i64
//             packets-to-peer:u64 bytes-to-peer:u64 packets-to-client:u64 bytes-to-client:u64
//             bandwidth-full-in:i64 x2 requests-full-in:i64 requests-limited:u8
//             allocate-transaction:12 bytes has-reservation:u8 [reservation-token:u64]
//             additional-family-error:u16 tcp:u8 mobility-handle:u64
//             connection-count:u32 { connection-id:u32 }
//             permission-count:u32 { peer:ip expires-in:i64 }
//             channel-count:u32 { number:u16 peer:addr expires-in:i64 own-peer:u8 }
//
//   connection record = version:u8 (1)  body-length:u32  transport:u8 client:addr server:addr
//                       unread-length:u32 unread bytes
//
//   tcp connection record = version:u8 (1)  body-length:u32  transport:u8 (TCP) client:addr
//                           server:addr id:u32 (not 0) peer:addr bound:u8 deadline-in:i64
//
//   ip      = family:u8 (1: 4 bytes, 2: 16 bytes) address bytes
//   addr    = ip port:u16
//   text    = length:u32 bytes
//
// Times are nanoseconds relative to the snapshot's `now`, at most kMaxSnapshotNs either way.
// A body must be consumed exactly: trailing bytes are malformed, not ignored, so a later
// version cannot be half-read by this one.
#include "relay/core/allocation_snapshot.hpp"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "relay/wire/channel_data.hpp"

namespace tern::core {

namespace {

class Appender {
 public:
  explicit Appender(std::vector<std::uint8_t>& out) : out_(out) {}
  void u8(std::uint8_t v) { out_.push_back(v); }
  void u16(std::uint16_t v) {
    u8(static_cast<std::uint8_t>(v >> 8));
    u8(static_cast<std::uint8_t>(v));
  }
  void u32(std::uint32_t v) {
    u16(static_cast<std::uint16_t>(v >> 16));
    u16(static_cast<std::uint16_t>(v));
  }
  void u64(std::uint64_t v) {
    u32(static_cast<std::uint32_t>(v >> 32));
    u32(static_cast<std::uint32_t>(v));
  }
  void i64(std::int64_t v) { u64(static_cast<std::uint64_t>(v)); }
  void flag(bool v) { u8(v ? 1 : 0); }
  void bytes(wire::Bytes b) { out_.insert(out_.end(), b.begin(), b.end()); }
  void text(wire::Bytes b) {
    if (b.size() > kMaxSnapshotText) throw std::length_error("allocation snapshot: text too long");
    u32(static_cast<std::uint32_t>(b.size()));
    bytes(b);
  }
  void count(std::size_t n) {
    if (n > kMaxSnapshotEntries) throw std::length_error("allocation snapshot: list too long");
    u32(static_cast<std::uint32_t>(n));
  }
  void ip(const IpAddress& a) {
    u8(static_cast<std::uint8_t>(a.family()));
    bytes({a.data(), a.size()});
  }
  void address(const SocketAddress& a) {
    ip(a.ip);
    u16(a.port);
  }
  // Relative times are clamped into the bound the decoder enforces.
  void time(std::int64_t ns) { i64(std::clamp(ns, -kMaxSnapshotNs, kMaxSnapshotNs)); }

 private:
  std::vector<std::uint8_t>& out_;
};

void encodeBody(const AllocationSnapshot& s, Appender& w) {
  w.u8(s.worker);
  w.u8(static_cast<std::uint8_t>(s.tuple.transport));
  w.address(s.tuple.client);
  w.address(s.tuple.server);
  if (s.relays.empty() || s.relays.size() > 2)
    throw std::length_error("allocation snapshot: 1 or 2 relays");
  w.u8(static_cast<std::uint8_t>(s.relays.size()));
  for (const RelayEndpoint& r : s.relays) {
    w.u32(r.id);
    w.address(r.relayed);
  }
  w.text(wire::asBytes(s.username));
  w.text(s.key);
  w.u16(static_cast<std::uint16_t>(s.integrity));
  w.flag(s.token_expiry.has_value());
  if (s.token_expiry) w.i64(*s.token_expiry);
  w.text(wire::asBytes(s.token_kid));
  w.time(s.created_ago_ns);
  w.time(s.expires_in_ns);
  w.u64(s.usage.packets_to_peer);
  w.u64(s.usage.bytes_to_peer);
  w.u64(s.usage.packets_to_client);
  w.u64(s.usage.bytes_to_client);
  for (std::int64_t t : s.bandwidth_full_in_ns) w.time(t);
  w.time(s.requests_full_in_ns);
  w.flag(s.requests_limited);
  w.bytes(s.allocate_transaction);
  w.flag(s.reservation_token.has_value());
  if (s.reservation_token) w.u64(*s.reservation_token);
  w.u16(s.additional_family_error);
  w.flag(s.tcp);
  w.u64(s.mobility_handle);
  w.count(s.connections.size());
  for (ConnectionId id : s.connections) w.u32(id);
  w.count(s.permissions.size());
  for (const auto& p : s.permissions) {
    w.ip(p.peer);
    w.time(p.expires_in_ns);
  }
  w.count(s.channels.size());
  for (const auto& c : s.channels) {
    w.u16(c.number);
    w.address(c.peer);
    w.time(c.expires_in_ns);
    w.flag(c.own_peer);
  }
}

// Reads a body; the first problem found is kept and everything after it reads as zero.
class Decoder {
 public:
  explicit Decoder(wire::Bytes body) noexcept : r_(body) {}

  const char* error() const noexcept {
    if (error_ != nullptr) return error_;
    if (!r_.ok()) return "truncated";
    return nullptr;
  }
  void fail(const char* why) noexcept {
    if (error_ == nullptr) error_ = why;
  }
  bool atEnd() const noexcept { return r_.atEnd(); }

  std::uint8_t u8() noexcept { return r_.u8(); }
  std::uint16_t u16() noexcept { return r_.u16(); }
  std::uint32_t u32() noexcept { return r_.u32(); }
  std::uint64_t u64() noexcept {
    const std::uint64_t hi = r_.u32();
    return (hi << 32) | r_.u32();
  }
  std::int64_t i64() noexcept { return static_cast<std::int64_t>(u64()); }
  bool flag() noexcept {
    const std::uint8_t v = u8();
    if (v > 1) fail("a flag is neither 0 nor 1");
    return v == 1;
  }
  std::int64_t time() noexcept {
    const std::int64_t t = i64();
    if (t < -kMaxSnapshotNs || t > kMaxSnapshotNs) fail("a time is out of range");
    return t;
  }
  wire::Bytes text() noexcept {
    const std::uint32_t n = u32();
    if (n > kMaxSnapshotText) {
      fail("a text or key is too long");
      return {};
    }
    return r_.bytes(n);
  }
  // A list's length, refused when it is over the bound or longer than the bytes left could
  // hold (so a lying count never reserves memory).
  std::size_t count(std::size_t min_entry) noexcept {
    const std::uint32_t n = u32();
    if (!r_.ok()) return 0;
    if (n > kMaxSnapshotEntries || std::size_t{n} * min_entry > r_.remaining()) {
      fail("a list is too long");
      return 0;
    }
    return n;
  }
  IpAddress ip() noexcept {
    const std::uint8_t family = u8();
    if (family == static_cast<std::uint8_t>(wire::AddressFamily::kIPv4)) {
      std::array<std::uint8_t, 4> b{};
      const wire::Bytes raw = r_.bytes(b.size());
      if (!raw.empty()) std::copy(raw.begin(), raw.end(), b.begin());
      return IpAddress::v4(b);
    }
    if (family == static_cast<std::uint8_t>(wire::AddressFamily::kIPv6)) {
      std::array<std::uint8_t, 16> b{};
      const wire::Bytes raw = r_.bytes(b.size());
      if (!raw.empty()) std::copy(raw.begin(), raw.end(), b.begin());
      return IpAddress::v6(b);
    }
    fail("an address family is unknown");
    return {};
  }
  SocketAddress address() noexcept {
    SocketAddress a;
    a.ip = ip();
    a.port = u16();
    return a;
  }
  void bytes(std::span<std::uint8_t> out) noexcept {
    const wire::Bytes raw = r_.bytes(out.size());
    if (!raw.empty()) std::copy(raw.begin(), raw.end(), out.begin());
  }

 private:
  wire::ByteReader r_;
  const char* error_ = nullptr;
};

void decodeHead(Decoder& d, AllocationSnapshot& s) {
  s.worker = d.u8();
  const std::uint8_t transport = d.u8();
  if (transport > static_cast<std::uint8_t>(Transport::kDtls)) d.fail("the transport is unknown");
  s.tuple.transport = static_cast<Transport>(transport);
  s.tuple.client = d.address();
  s.tuple.server = d.address();
  const std::uint8_t relays = d.u8();
  if (relays < 1 || relays > 2) d.fail("an allocation has 1 or 2 relayed addresses");
  for (std::uint8_t i = 0; i < relays && i < 2 && d.error() == nullptr; ++i) {
    RelayEndpoint r;
    r.id = d.u32();
    r.relayed = d.address();
    s.relays.push_back(r);
  }
  // RFC 8656 §7.2: a dual allocation has one relayed address per family, IPv4 first.
  if (s.relays.size() == 2 && (!s.relays[0].relayed.ip.isV4() || !s.relays[1].relayed.ip.isV6())) {
    d.fail("a dual allocation's relayed addresses are not IPv4 then IPv6");
  }
  const wire::Bytes username = d.text();
  s.username.assign(wire::asText(username));
  const wire::Bytes key = d.text();
  s.key.assign(key.begin(), key.end());
  const auto integrity = static_cast<wire::AttributeType>(d.u16());
  if (integrity != wire::AttributeType::kMessageIntegrity &&
      integrity != wire::AttributeType::kMessageIntegritySha256) {
    d.fail("the integrity attribute is unknown");
  }
  s.integrity = integrity;
  if (d.flag()) s.token_expiry = d.i64();
  const wire::Bytes kid = d.text();
  s.token_kid.assign(wire::asText(kid));
  s.created_ago_ns = d.time();
  s.expires_in_ns = d.time();
}

void decodeState(Decoder& d, AllocationSnapshot& s) {
  s.usage.packets_to_peer = d.u64();
  s.usage.bytes_to_peer = d.u64();
  s.usage.packets_to_client = d.u64();
  s.usage.bytes_to_client = d.u64();
  for (std::int64_t& t : s.bandwidth_full_in_ns) t = d.time();
  s.requests_full_in_ns = d.time();
  s.requests_limited = d.flag();
  d.bytes(s.allocate_transaction);
  if (d.flag()) s.reservation_token = d.u64();
  s.additional_family_error = d.u16();
  s.tcp = d.flag();
  s.mobility_handle = d.u64();
}

void decodeLists(Decoder& d, AllocationSnapshot& s) {
  const std::size_t connections = d.count(4);
  s.connections.reserve(connections);
  for (std::size_t i = 0; i < connections; ++i) s.connections.push_back(d.u32());
  const std::size_t permissions = d.count(1 + 4 + 8);
  s.permissions.reserve(permissions);
  for (std::size_t i = 0; i < permissions && d.error() == nullptr; ++i) {
    AllocationSnapshot::Permission p;
    p.peer = d.ip();
    p.expires_in_ns = d.time();
    s.permissions.push_back(p);
  }
  const std::size_t channels = d.count(2 + 7 + 8 + 1);
  s.channels.reserve(channels);
  for (std::size_t i = 0; i < channels && d.error() == nullptr; ++i) {
    AllocationSnapshot::Channel c;
    c.number = d.u16();
    // RFC 8656 §12: channel numbers are 0x4000-0x4FFF.
    if (!wire::isValidChannel(c.number)) d.fail("a channel number is out of range");
    c.peer = d.address();
    c.expires_in_ns = d.time();
    c.own_peer = d.flag();
    s.channels.push_back(c);
  }
}

std::int64_t relative(TimePoint t, TimePoint now) noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(t - now).count();
}

TimePoint absolute(std::int64_t ns, TimePoint now) noexcept {
  // Clamped as the decoder bounds it, so a hand-made snapshot cannot overflow the clock.
  return now + std::chrono::nanoseconds(std::clamp(ns, -kMaxSnapshotNs, kMaxSnapshotNs));
}

}  // namespace

AllocationSnapshot Allocation::snapshot(TimePoint now) const {
  AllocationSnapshot s;
  s.tuple = tuple_;
  s.relays.assign(relays_.begin(), relays_.begin() + static_cast<std::ptrdiff_t>(relay_count_));
  s.username = username_;
  s.key = key_;
  s.integrity = integrity_;
  s.token_expiry = token_expiry_;
  s.token_kid = token_kid_;
  s.created_ago_ns = -relative(created_, now);
  s.expires_in_ns = relative(expires_, now);
  s.usage = usage_;
  for (std::size_t d = 0; d < bandwidth_.size(); ++d) {
    s.bandwidth_full_in_ns[d] = bandwidth_[d].fullAt() - bucketTime(now);
  }
  s.requests_full_in_ns = requests_.fullAt() - bucketTime(now);
  s.requests_limited = requests_limited_;
  s.allocate_transaction = allocate_transaction_;
  s.reservation_token = reservation_token_;
  s.additional_family_error = additional_family_error_;
  s.tcp = tcp_;
  s.mobility_handle = mobility_handle_;
  s.connections = connections_;
  s.permissions.reserve(permissions_.size());
  for (const Permission& p : permissions_)
    s.permissions.push_back({p.peer, relative(p.expires, now)});
  s.channels.reserve(channels_.size());
  for (const ChannelBinding& c : channels_) {
    s.channels.push_back({c.number, c.peer, relative(c.expires, now), c.own_peer});
  }
  return s;
}

std::unique_ptr<Allocation> Allocation::restore(const AllocationSnapshot& s, TimePoint now) {
  if (s.relays.empty()) return nullptr;  // the decoder refuses such a snapshot
  auto a = std::make_unique<Allocation>(s.tuple, s.relays[0].id, s.relays[0].relayed, s.username,
                                        s.key, absolute(-s.created_ago_ns, now));
  // relay_count_ stays in step with relays_ through addRelay, which ignores a third.
  for (std::size_t i = 1; i < s.relays.size(); ++i) a->addRelay(s.relays[i]);
  a->integrity_ = s.integrity;
  a->token_expiry_ = s.token_expiry;
  a->token_kid_ = s.token_kid;
  a->expires_ = absolute(s.expires_in_ns, now);
  a->usage_ = s.usage;
  for (std::size_t d = 0; d < a->bandwidth_.size(); ++d) {
    a->bandwidth_[d].setFullAt(bucketTime(absolute(s.bandwidth_full_in_ns[d], now)));
  }
  a->requests_.setFullAt(bucketTime(absolute(s.requests_full_in_ns, now)));
  a->requests_limited_ = s.requests_limited;
  a->allocate_transaction_ = s.allocate_transaction;
  a->reservation_token_ = s.reservation_token;
  a->additional_family_error_ = s.additional_family_error;
  a->tcp_ = s.tcp;
  a->mobility_handle_ = s.mobility_handle;
  a->connections_ = s.connections;
  a->permissions_.reserve(s.permissions.size());
  for (const auto& p : s.permissions)
    a->permissions_.push_back({p.peer, absolute(p.expires_in_ns, now)});
  a->channels_.reserve(s.channels.size());
  for (const auto& c : s.channels) {
    a->channels_.push_back({c.number, c.peer, absolute(c.expires_in_ns, now), c.own_peer});
  }
  return a;
}

namespace {

// One record: version, body length, the body `write` appends. Nothing stays of a record that
// could not be written whole.
template <class Write>
void encodeRecord(std::vector<std::uint8_t>& out, const char* what, Write write) {
  const std::size_t start = out.size();
  try {
    Appender w(out);
    w.u8(kSnapshotVersion);
    w.u32(0);  // the body's length, filled in below
    write(w);
  } catch (...) {
    out.resize(start);
    throw;
  }
  const std::size_t body = out.size() - start - 5;
  if (body > kMaxSnapshotRecord) {
    out.resize(start);
    throw std::length_error(std::string(what) + ": record too long");
  }
  wire::storeU32(&out[start + 1], static_cast<std::uint32_t>(body));
}

// The body of the record at the front of `in`, with `in` advanced past it only on success;
// `read` decodes it. An error text names `what` and the first problem.
template <class T, class Read>
Expected<T, std::string> decodeRecord(wire::Bytes& in, const char* what, Read read) {
  wire::ByteReader record(in);
  const std::uint8_t version = record.u8();
  const std::uint32_t length = record.u32();
  if (!record.ok()) return Unexpected(std::string(what) + ": truncated header");
  if (version != kSnapshotVersion) return Unexpected(std::string(what) + ": unknown version " + std::to_string(version));
  if (length > kMaxSnapshotRecord) return Unexpected(std::string(what) + ": record too long");
  const wire::Bytes body = record.bytes(length);
  if (!record.ok()) return Unexpected(std::string(what) + ": truncated");
  Decoder d(body);
  T value;
  read(d, value);
  if (d.error() == nullptr && !d.atEnd()) d.fail("trailing bytes in the record");
  if (const char* why = d.error()) return Unexpected(std::string(what) + ": " + why);
  in = in.subspan(record.position());
  return value;
}

}  // namespace

void encodeSnapshot(const AllocationSnapshot& s, std::vector<std::uint8_t>& out) {
  encodeRecord(out, "allocation snapshot", [&](Appender& w) { encodeBody(s, w); });
}

Expected<AllocationSnapshot, std::string> decodeSnapshot(wire::Bytes& in) {
  return decodeRecord<AllocationSnapshot>(in, "allocation snapshot", [](Decoder& d, AllocationSnapshot& s) {
    decodeHead(d, s);
    if (d.error() == nullptr) decodeState(d, s);
    if (d.error() == nullptr) decodeLists(d, s);
  });
}

void encodeConnection(const ConnectionSnapshot& c, std::vector<std::uint8_t>& out) {
  if (c.unread.size() > kMaxConnectionUnread) throw std::length_error("connection snapshot: too much unread");
  encodeRecord(out, "connection snapshot", [&](Appender& w) {
    w.u8(static_cast<std::uint8_t>(c.tuple.transport));
    w.address(c.tuple.client);
    w.address(c.tuple.server);
    w.u32(static_cast<std::uint32_t>(c.unread.size()));
    w.bytes(c.unread);
  });
}

Expected<ConnectionSnapshot, std::string> decodeConnection(wire::Bytes& in) {
  return decodeRecord<ConnectionSnapshot>(in, "connection snapshot", [](Decoder& d, ConnectionSnapshot& c) {
    const std::uint8_t transport = d.u8();
    if (transport != static_cast<std::uint8_t>(Transport::kTcp)) d.fail("only plain TCP connections move");
    c.tuple.transport = Transport::kTcp;
    c.tuple.client = d.address();
    c.tuple.server = d.address();
    const std::uint32_t unread = d.u32();
    if (unread > kMaxConnectionUnread) {
      d.fail("too much unread");
      return;
    }
    c.unread.resize(unread);
    d.bytes(c.unread);
  });
}

void encodeTcpConnection(const TcpConnectionSnapshot& c, std::vector<std::uint8_t>& out) {
  encodeRecord(out, "tcp connection snapshot", [&](Appender& w) {
    w.u8(static_cast<std::uint8_t>(c.control.transport));
    w.address(c.control.client);
    w.address(c.control.server);
    w.u32(c.id);
    w.address(c.peer);
    w.flag(c.bound);
    w.time(c.deadline_in_ns);
  });
}

Expected<TcpConnectionSnapshot, std::string> decodeTcpConnection(wire::Bytes& in) {
  return decodeRecord<TcpConnectionSnapshot>(
      in, "tcp connection snapshot", [](Decoder& d, TcpConnectionSnapshot& c) {
        // RFC 6062 §4.1: a TCP allocation's control connection is TCP (TLS never moves).
        if (d.u8() != static_cast<std::uint8_t>(Transport::kTcp))
          d.fail("only plain TCP allocations move");
        c.control.transport = Transport::kTcp;
        c.control.client = d.address();
        c.control.server = d.address();
        c.id = d.u32();
        if (c.id == 0) d.fail("connection id 0");
        c.peer = d.address();
        c.bound = d.flag();
        c.deadline_in_ns = d.time();
      });
}

}  // namespace tern::core
