// The STUN test vectors of RFC 5769 §2.1-2.4 and RFC 8489 Appendix B.1, as hex, shared by the
// unit tests and the fuzz corpus generator (../shared/vectors/stun-test-vectors.md).
#pragma once

#include <string_view>

namespace tern::test::vectors {

// RFC 5769 §2: every vector shares this transaction id except §2.4 and B.1.
inline constexpr std::string_view kRfc5769TransactionId = "b7e7a701bc34d686fa87dfae";
// RFC 5769 §2.1-2.3: the short-term password; the key is the password itself.
inline constexpr std::string_view kShortTermPassword = "VOkJxbRl1RmTxUk/WvJxBt";

// RFC 5769 §2.1: Binding request with SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME,
// MESSAGE-INTEGRITY and FINGERPRINT. Its padding bytes are 0x20, not 0x00.
inline constexpr std::string_view kRfc5769Request =
    "000100582112a442b7e7a701bc34d686fa87dfae802200105354554e207465737420636c69656e7400240004"
    "6e0001ff80290008932ff9b151263b36000600096576746a3a68367659202020000800149aeaa70cbfd8cb56"
    "781ef2b5b2d3f249c1b571a280280004e57a3bcf";

// RFC 5769 §2.2: success response, XOR-MAPPED-ADDRESS 192.0.2.1:32853. SOFTWARE padded with
// 0x20.
inline constexpr std::string_view kRfc5769ResponseV4 =
    "0101003c2112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000080001a147"
    "e112a643000800142b91f599fd9e90c38c7489f92af9ba53f06be7d780280004c07d4c96";

// RFC 5769 §2.3: success response, XOR-MAPPED-ADDRESS [2001:db8:1234:5678:11:2233:4455:6677]
// port 32853. SOFTWARE padded with 0x20.
inline constexpr std::string_view kRfc5769ResponseV6 =
    "010100482112a442b7e7a701bc34d686fa87dfae8022000b7465737420766563746f7220002000140002a147"
    "0113a9faa5d3f179bc25f4b5bed2b9d900080014a382954e4be67bf11784c97c8292c275bfe3ed4180280004"
    "c8fb0b4c";

// RFC 5769 §2.4: request with long-term credentials (MD5 key), no FINGERPRINT.
inline constexpr std::string_view kRfc5769LongTermRequest =
    "000100602112a44278ad3433c6ad72c029da412e00060012e3839ee38388e383aae38383e382afe382b90000"
    "0015001c662f2f3439396b39353464364f4c33346f4c394653547679363473410014000b6578616d706c652e"
    "6f72670000080014f67024656dd64a3e02b8e0712e85c9a28ca89666";

// RFC 8489 Appendix B.1 with the header length corrected from the printed 0x009c to 0x0090,
// the only value for which its MESSAGE-INTEGRITY-SHA256 verifies.
inline constexpr std::string_view kRfc8489B1Request =
    "000100902112a44278ad3433c6ad72c029da412e001e00204a3cf38fef6992bda952c6780417da0f24819415"
    "569e60b205c46e41407f1704001500296f624d61744a6f733241414143662f2f3439396b39353464364f4c33"
    "346f4c394653547679363473410000000014000b6578616d706c652e6f726700001d000400020000001c0020"
    "b5c7bf005b6c52a21c51c5e892f81924136296cb927c43149309278cc6518e65";

// RFC 5769 §2.4 and RFC 8489 B.1 credentials. The password "The<U+00AD>M<U+00AA>tr<U+2168>"
// becomes "TheMatrIX" after OpaqueString preparation (RFC 8265), which auth/ expects done.
inline constexpr std::string_view kLongTermUsername =
    "\xE3\x83\x9E\xE3\x83\x88\xE3\x83\xAA\xE3\x83\x83\xE3\x82\xAF\xE3\x82\xB9";  // マトリックス
inline constexpr std::string_view kLongTermPassword = "TheMatrIX";
inline constexpr std::string_view kLongTermRealm = "example.org";
inline constexpr std::string_view kRfc5769Nonce = "f//499k954d6OL34oL9FSTvy64sA";
inline constexpr std::string_view kRfc8489Nonce = "obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA";

}  // namespace tern::test::vectors
