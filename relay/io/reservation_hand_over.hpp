// The wire form of a worker's unclaimed EVEN-PORT reservations (RFC 8656 §7.2) in its upgrade
// bundle (upgrade_bundle.hpp, docs/upgrade.md). A reservation holds no socket, only a port of
// the range, so the record is the token, the reserved address and what is left of the hold.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "relay/io/reservations.hpp"
#include "relay/wire/bytes.hpp"

namespace tern::io {

// Appends the section: count:u32 { token:u64 family:u8 (1: 4 bytes, 2: 16 bytes) ip port:u16
// remaining-ms:u32 }, big-endian.
void encodeReservations(const std::vector<HandedReservation>& reservations,
                        std::vector<std::uint8_t>& out);
// Reads the section from the front of `in` and consumes it; an error text for a malformed one
// (a zero token, a hold over ReservationRegistry::kHold, a count the payload cannot hold).
std::optional<std::string> decodeReservations(wire::Bytes& in, std::vector<HandedReservation>& out);

}  // namespace tern::io
