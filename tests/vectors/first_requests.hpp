// The first request each real client sends a TURN server over UDP, before it has any
// credentials, captured from the clients tern's integration tests drive (a UDP proxy in
// front of tern recorded them; only the transaction ids are random). The answers to these
// are what a spoofed-source flood would try to reflect, so the unit tests bound their size.
#pragma once

#include <string_view>

namespace tern::test::vectors {

// Headless Chromium (Debian's), RTCPeerConnection with a turn: URL over UDP: first a bare
// Binding on the TURN socket, then an Allocate with REQUESTED-TRANSPORT alone.
inline constexpr std::string_view kChromiumBinding = "000100002112a4425564412f694f487341757a4f";
inline constexpr std::string_view kChromiumAllocate =
    "000300082112a4424248595a585a6c6c4d4347700019000411000000";

// python3-aioice's TURN client: LIFETIME 600, REQUESTED-TRANSPORT.
inline constexpr std::string_view kAioiceAllocate =
    "000300102112a442f2c3c84baa40e87678d60e6e000d0004000002580019000411000000";

// coturn's turnutils_uclient: REQUESTED-TRANSPORT, LIFETIME, then for its RTP allocation
// EVEN-PORT with the R bit and REQUESTED-ADDRESS-FAMILY, for its RTCP allocation the
// RESERVATION-TOKEN, and with -c (no pair) REQUESTED-ADDRESS-FAMILY; each with FINGERPRINT.
inline constexpr std::string_view kUclientRtpAllocate =
    "000300282112a442c686de9d3ac88a53a48935440019000411000000000d00040000030900180001800000000017"
    "000401000000802800040545f913";
inline constexpr std::string_view kUclientRtcpAllocate =
    "000300242112a4424f9806b69def6668c86a951f0019000411000000000d00040000030900220008cb0ca33d44bf"
    "918b8028000428d04aa3";
inline constexpr std::string_view kUclientSingleAllocate =
    "000300202112a4426abdd8c2a4a770362e6bb50e0019000411000000000d00040000030900170004010000008028"
    "000427852e20";

// coturn's turnutils_stunclient: a bare Binding.
inline constexpr std::string_view kStunclientBinding = "000100002112a442d55ed8e08004038f2c3303b0";

}  // namespace tern::test::vectors
