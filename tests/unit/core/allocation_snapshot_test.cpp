// The upgrade hand-over's allocation snapshot (issue 20): Allocation <-> AllocationSnapshot
// with times relative to each process's clock, and the versioned, bounded byte encoding,
// which refuses truncated, oversized and malformed records without crashing.
#include "relay/core/allocation_snapshot.hpp"

#include <doctest/doctest.h>

#include <stdexcept>

#include "relay/wire/bytes.hpp"

using namespace tern;
using core::AllocationSnapshot;

namespace {

wire::SocketAddress addr(std::string_view text) { return *wire::SocketAddress::parse(text); }
wire::IpAddress ip(std::string_view text) { return *wire::IpAddress::parse(text); }

// Every field set, none at its default: a dual allocation with a token, usage, buckets,
// connections, permissions and channels of both families.
AllocationSnapshot fullSnapshot() {
  AllocationSnapshot s;
  s.worker = 3;
  s.tuple = {core::Transport::kDtls, addr("192.0.2.7:40000"), addr("198.51.100.1:3478")};
  s.relays = {{7, addr("198.51.100.7:50014")}, {9, addr("[2001:db8::7]:50018")}};
  s.username = "1700003600:alice";
  s.key = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15, 16,
           17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
  s.integrity = wire::AttributeType::kMessageIntegritySha256;
  s.token_expiry = 1'700'007'200;
  s.token_kid = "north-kid";
  s.created_ago_ns = 123'000'000'000;
  s.expires_in_ns = 456'000'000'000;
  s.usage = {11, 2200, 33, 4400};
  s.bandwidth_full_in_ns = {-5'000'000, 250'000'000};
  s.requests_full_in_ns = 1'500'000'000;
  s.requests_limited = true;
  s.allocate_transaction.fill(0xA7);
  s.reservation_token = 0xA00000000000000Bull;
  s.additional_family_error = 440;
  s.tcp = true;
  s.mobility_handle = 0xFEEDFACECAFEBEEFull;
  s.connections = {0x03000001, 0x03000002};
  s.permissions = {{ip("8.8.8.8"), 100'000'000'000}, {ip("2001:db8::99"), -1'000'000'000}};
  s.channels = {{0x4001, addr("8.8.8.8:5000"), 300'000'000'000, false},
                {0x4FFF, addr("[2001:db8::99]:6000"), 1, true}};
  return s;
}

void checkEqual(const AllocationSnapshot& a, const AllocationSnapshot& b) {
  CHECK(a.worker == b.worker);
  CHECK(a.tuple == b.tuple);
  REQUIRE(a.relays.size() == b.relays.size());
  for (std::size_t i = 0; i < a.relays.size(); ++i) {
    CHECK(a.relays[i].id == b.relays[i].id);
    CHECK(a.relays[i].relayed == b.relays[i].relayed);
  }
  CHECK(a.username == b.username);
  CHECK(a.key == b.key);
  CHECK(a.integrity == b.integrity);
  CHECK(a.token_expiry == b.token_expiry);
  CHECK(a.token_kid == b.token_kid);
  CHECK(a.created_ago_ns == b.created_ago_ns);
  CHECK(a.expires_in_ns == b.expires_in_ns);
  CHECK(a.usage.packets_to_peer == b.usage.packets_to_peer);
  CHECK(a.usage.bytes_to_peer == b.usage.bytes_to_peer);
  CHECK(a.usage.packets_to_client == b.usage.packets_to_client);
  CHECK(a.usage.bytes_to_client == b.usage.bytes_to_client);
  CHECK(a.bandwidth_full_in_ns == b.bandwidth_full_in_ns);
  CHECK(a.requests_full_in_ns == b.requests_full_in_ns);
  CHECK(a.requests_limited == b.requests_limited);
  CHECK(a.allocate_transaction == b.allocate_transaction);
  CHECK(a.reservation_token == b.reservation_token);
  CHECK(a.additional_family_error == b.additional_family_error);
  CHECK(a.tcp == b.tcp);
  CHECK(a.mobility_handle == b.mobility_handle);
  CHECK(a.connections == b.connections);
  CHECK(a.permissions == b.permissions);
  CHECK(a.channels == b.channels);
}

std::vector<std::uint8_t> encoded(const AllocationSnapshot& s) {
  std::vector<std::uint8_t> out;
  core::encodeSnapshot(s, out);
  return out;
}

std::string decodeError(const std::vector<std::uint8_t>& bytes) {
  wire::Bytes in(bytes);
  const auto decoded = core::decodeSnapshot(in);
  REQUIRE_FALSE(decoded.has_value());
  CHECK(in.size() == bytes.size());  // a refused record consumes nothing
  return decoded.error();
}

// A record whose body is `s` with no permissions, channels or connections, so its last eight
// bytes are the permission and channel counts.
std::vector<std::uint8_t> plainRecord() {
  AllocationSnapshot s = fullSnapshot();
  s.relays.resize(1);
  s.connections.clear();
  s.permissions.clear();
  s.channels.clear();
  return encoded(s);
}

}  // namespace

TEST_CASE(
    "an allocation snapshot survives encode and decode field for field, and decoding advances past "
    "it") {
  const AllocationSnapshot s = fullSnapshot();
  std::vector<std::uint8_t> bytes = encoded(s);
  CHECK(bytes[0] == core::kSnapshotVersion);
  AllocationSnapshot second = s;
  second.worker = 0;
  second.relays.resize(1);
  second.token_expiry.reset();
  second.reservation_token.reset();
  core::encodeSnapshot(second, bytes);
  wire::Bytes in(bytes);
  const auto first = core::decodeSnapshot(in);
  REQUIRE(first.has_value());
  checkEqual(*first, s);
  const auto next = core::decodeSnapshot(in);
  REQUIRE(next.has_value());
  checkEqual(*next, second);
  CHECK(in.empty());
}

TEST_CASE(
    "Allocation -> snapshot -> Allocation on another clock keeps every time relative to now") {
  const core::TimePoint old_now{std::chrono::seconds(5000)};
  const core::TimePoint new_now{std::chrono::seconds(7)};  // the new process's loop clock
  AllocationSnapshot s = fullSnapshot();
  // Bucket times are whole nanoseconds on the core clock: one of each sign.
  const auto restored = core::Allocation::restore(s, old_now);
  REQUIRE(restored != nullptr);
  CHECK(restored->relays().size() == 2);
  CHECK(restored->relay() == 7);
  CHECK(restored->expires() == old_now + std::chrono::seconds(456));
  CHECK(restored->created() == old_now - std::chrono::seconds(123));
  CHECK(restored->hasPermission(ip("8.8.8.8"), old_now));
  CHECK_FALSE(restored->hasPermission(ip("2001:db8::99"), old_now));  // expired a second ago
  CHECK(restored->channelByNumber(0x4001, old_now) != nullptr);
  CHECK(restored->mobilityHandle() == s.mobility_handle);
  // The same state taken again relative to another now, through bytes, restores the same.
  const AllocationSnapshot again = restored->snapshot(old_now);
  checkEqual(again, [&] {
    AllocationSnapshot expected = s;
    expected.worker = 0;  // the server sets it; the allocation does not know its worker
    return expected;
  }());
  std::vector<std::uint8_t> bytes = encoded(again);
  wire::Bytes in(bytes);
  const auto decoded = core::decodeSnapshot(in);
  REQUIRE(decoded.has_value());
  const auto moved = core::Allocation::restore(*decoded, new_now);
  REQUIRE(moved != nullptr);
  CHECK(moved->expires() == new_now + std::chrono::seconds(456));
  CHECK(moved->tokenExpiry() == s.token_expiry);
  CHECK(moved->integrity() == wire::AttributeType::kMessageIntegritySha256);
  CHECK(moved->bandwidth(metrics::Direction::kPeerToClient).fullAt() ==
        core::bucketTime(new_now) + 250'000'000);
  checkEqual(moved->snapshot(new_now), again);
}

TEST_CASE("every truncation of an encoded snapshot is refused with an error, never a crash") {
  const std::vector<std::uint8_t> bytes = encoded(fullSnapshot());
  for (std::size_t n = 0; n < bytes.size(); ++n) {
    const std::vector<std::uint8_t> cut(bytes.begin(),
                                        bytes.begin() + static_cast<std::ptrdiff_t>(n));
    CAPTURE(n);
    CHECK(decodeError(cut).find("truncated") != std::string::npos);
  }
  // The body cut short with its length field adjusted: still refused, now inside the body.
  for (std::size_t n = 5; n < bytes.size(); ++n) {
    std::vector<std::uint8_t> cut(bytes.begin(), bytes.begin() + static_cast<std::ptrdiff_t>(n));
    wire::storeU32(&cut[1], static_cast<std::uint32_t>(n - 5));
    CAPTURE(n);
    (void)decodeError(cut);
  }
}

TEST_CASE(
    "oversized texts and lists are refused: the encoder throws, the decoder answers an error") {
  AllocationSnapshot s = fullSnapshot();
  s.key.assign(core::kMaxSnapshotText + 1, 0x55);
  std::vector<std::uint8_t> out{0xEE};
  CHECK_THROWS_AS(core::encodeSnapshot(s, out), std::length_error);
  CHECK(out == std::vector<std::uint8_t>{0xEE});  // nothing half-written stays
  s = fullSnapshot();
  s.permissions.resize(core::kMaxSnapshotEntries + 1);
  CHECK_THROWS_AS(core::encodeSnapshot(s, out), std::length_error);

  // The username's length (body offset 28: worker, transport, two IPv4 addresses, one relay).
  std::vector<std::uint8_t> bytes = plainRecord();
  REQUIRE(wire::loadU32(&bytes[5 + 28]) == fullSnapshot().username.size());
  wire::storeU32(&bytes[5 + 28], static_cast<std::uint32_t>(core::kMaxSnapshotText + 1));
  CHECK(decodeError(bytes).find("too long") != std::string::npos);
  wire::storeU32(&bytes[5 + 28], 0xFFFFFFFF);
  CHECK(decodeError(bytes).find("too long") != std::string::npos);

  // The permission count: over the bound, and more than the bytes left could hold.
  bytes = plainRecord();
  const std::size_t permissions = bytes.size() - 8;
  REQUIRE(wire::loadU32(&bytes[permissions]) == 0);
  wire::storeU32(&bytes[permissions], static_cast<std::uint32_t>(core::kMaxSnapshotEntries + 1));
  CHECK(decodeError(bytes).find("too long") != std::string::npos);
  wire::storeU32(&bytes[permissions], 1000);
  CHECK(decodeError(bytes).find("too long") != std::string::npos);

  // A record longer than the bound is refused from its header alone.
  bytes = plainRecord();
  wire::storeU32(&bytes[1], static_cast<std::uint32_t>(core::kMaxSnapshotRecord + 1));
  CHECK(decodeError(bytes).find("too long") != std::string::npos);
}

TEST_CASE("an unknown version, trailing bytes and malformed values are refused") {
  std::vector<std::uint8_t> bytes = plainRecord();
  bytes[0] = 2;
  CHECK(decodeError(bytes).find("unknown version 2") != std::string::npos);

  bytes = plainRecord();
  bytes.push_back(0);
  wire::storeU32(&bytes[1], wire::loadU32(&bytes[1]) + 1);
  CHECK(decodeError(bytes).find("trailing") != std::string::npos);

  bytes = plainRecord();
  bytes[5 + 1] = 9;  // transport
  CHECK(decodeError(bytes).find("transport") != std::string::npos);
  bytes = plainRecord();
  bytes[5 + 2] = 3;  // the client address's family
  CHECK(decodeError(bytes).find("family") != std::string::npos);
  bytes = plainRecord();
  bytes[5 + 16] = 3;  // three relays
  CHECK(decodeError(bytes).find("1 or 2") != std::string::npos);

  AllocationSnapshot s = fullSnapshot();
  std::swap(s.relays[0], s.relays[1]);  // IPv6 first
  CHECK(decodeError(encoded(s)).find("IPv4 then IPv6") != std::string::npos);
  s = fullSnapshot();
  s.integrity = wire::AttributeType::kFingerprint;
  CHECK(decodeError(encoded(s)).find("integrity") != std::string::npos);
  s = fullSnapshot();
  s.channels[0].number = 0x3FFF;  // RFC 8656 §12: 0x4000-0x4FFF
  CHECK(decodeError(encoded(s)).find("channel number") != std::string::npos);

  // A flag byte other than 0 or 1 (the last byte: the last channel's own_peer).
  bytes = encoded(fullSnapshot());
  bytes.back() = 2;
  CHECK(decodeError(bytes).find("flag") != std::string::npos);
  // A time beyond a century.
  s = fullSnapshot();
  bytes = encoded(s);
  const std::size_t last_time = bytes.size() - 1 - 8;
  REQUIRE(static_cast<std::int64_t>((std::uint64_t{wire::loadU32(&bytes[last_time])} << 32) |
                                    wire::loadU32(&bytes[last_time + 4])) == 1);
  wire::storeU32(&bytes[last_time], 0x7FFFFFFF);
  CHECK(decodeError(bytes).find("time") != std::string::npos);
}
