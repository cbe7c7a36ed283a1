#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ (RFC 5769 / RFC 8489 B.1 vectors,
every TURN method and attribute, malformed variants, ChannelData, multi-frame streams,
RFC 7635 access tokens with hostile length fields, long-term credential requests for
rest_auth_fuzz, upgrade hand-over allocation snapshots).

Seeds are named seed-*.bin and are rewritten on every run; inputs the fuzzer found are kept
under their libFuzzer (SHA-1) names and left alone. Run from anywhere:
    python3 tests/fuzz/make_corpus.py
"""
import hashlib
import hmac
import pathlib
import re
import struct
import zlib

HERE = pathlib.Path(__file__).resolve().parent
VECTORS = HERE.parent / "vectors" / "stun_vectors.hpp"

COOKIE = 0x2112A442
TID = bytes(range(1, 13))


def vectors():
    """The hex vectors of tests/vectors/stun_vectors.hpp, by C++ name."""
    text = VECTORS.read_text()
    out = {}
    for m in re.finditer(r"inline constexpr std::string_view (k\w+) =\s*((?:\s*\"[0-9a-f]+\")+);", text):
        out[m.group(1)] = bytes.fromhex("".join(re.findall(r"\"([0-9a-f]+)\"", m.group(2))))
    return out


def msg_type(method, cls):
    # RFC 8489 §5: class bits C1 (bit 8) and C0 (bit 4) interleaved with the method.
    return ((method & 0x000F) | ((method & 0x0070) << 1) | ((method & 0x0F80) << 2)
            | ((cls & 1) << 4) | ((cls & 2) << 7))


REQUEST, INDICATION, SUCCESS, ERROR = 0, 1, 2, 3
BINDING, ALLOCATE, REFRESH, SEND, DATA, CREATE_PERMISSION, CHANNEL_BIND = 1, 3, 4, 6, 7, 8, 9
CONNECT, CONNECTION_BIND, CONNECTION_ATTEMPT = 0xA, 0xB, 0xC


def attr(t, value, pad=b"\0"):
    padding = (pad * 4)[: (-len(value)) % 4]
    return struct.pack("!HH", t, len(value)) + value + padding


def header(t, length, tid=TID):
    return struct.pack("!HHI", t, length, COOKIE) + tid


def message(method, cls, attrs, tid=TID, key=None, sha256_key=None, fingerprint=False):
    body = b"".join(attrs)
    if key is not None:  # RFC 8489 §14.5
        mac = hmac.new(key, header(msg_type(method, cls), len(body) + 24, tid) + body, hashlib.sha1)
        body += attr(0x0008, mac.digest())
    if sha256_key is not None:  # RFC 8489 §14.6
        mac = hmac.new(sha256_key, header(msg_type(method, cls), len(body) + 36, tid) + body,
                       hashlib.sha256)
        body += attr(0x001C, mac.digest())
    if fingerprint:  # RFC 8489 §14.7
        crc = zlib.crc32(header(msg_type(method, cls), len(body) + 8, tid) + body) ^ 0x5354554E
        body += attr(0x8028, struct.pack("!I", crc))
    return header(msg_type(method, cls), len(body), tid) + body


def xor_addr(t, ip, port, tid=TID):
    port ^= COOKIE >> 16
    if ":" in ip:
        import ipaddress
        raw = ipaddress.IPv6Address(ip).packed
        mask = struct.pack("!I", COOKIE) + tid
        return attr(t, struct.pack("!BBH", 0, 2, port) + bytes(a ^ b for a, b in zip(raw, mask)))
    raw = bytes(int(x) for x in ip.split("."))
    mask = struct.pack("!I", COOKIE)
    return attr(t, struct.pack("!BBH", 0, 1, port) + bytes(a ^ b for a, b in zip(raw, mask)))


def plain_addr(t, ip, port):
    import ipaddress
    a = ipaddress.ip_address(ip)
    return attr(t, struct.pack("!BBH", 0, 1 if a.version == 4 else 2, port) + a.packed)


def error_code(t, code, reason, family=None):
    first = b"\0\0" if family is None else bytes([family, 0])
    return attr(t, first + bytes([code // 100, code % 100]) + reason.encode())


def u32(t, v):
    return attr(t, struct.pack("!I", v))


KEY = b"VOkJxbRl1RmTxUk/WvJxBt"
SHA256_KEY = hashlib.sha256(b"user:example.org:pass").digest()


def stun_seeds():
    v = vectors()
    seeds = {
        "rfc5769-2.1-request": v["kRfc5769Request"],
        "rfc5769-2.2-response-ipv4": v["kRfc5769ResponseV4"],
        "rfc5769-2.3-response-ipv6": v["kRfc5769ResponseV6"],
        "rfc5769-2.4-long-term": v["kRfc5769LongTermRequest"],
        "rfc8489-b1-corrected": v["kRfc8489B1Request"],
    }
    b1 = bytearray(v["kRfc8489B1Request"])
    b1[3] = 0x9C
    seeds["rfc8489-b1-printed-length"] = bytes(b1)
    seeds["rfc5769-2.1-truncated"] = v["kRfc5769Request"][:60]
    flipped = bytearray(v["kRfc5769Request"])
    flipped[30] ^= 0x01
    seeds["rfc5769-2.1-flipped"] = bytes(flipped)
    seeds["binding-header-only"] = header(0x0001, 0)

    seeds["allocate-request"] = message(ALLOCATE, REQUEST, [
        attr(0x0019, bytes([17, 0, 0, 0])), u32(0x000D, 600), attr(0x001A, b""),
        attr(0x0018, b"\x80"), attr(0x0017, b"\x02\0\0\0"), attr(0x8000, b"\x02\0\0\0"),
        attr(0x0006, b"user"), attr(0x0014, b"example.org"), attr(0x0015, b"nonce-1234"),
        attr(0x8022, b"tern fuzz seed")], key=KEY, fingerprint=True)
    seeds["allocate-success"] = message(ALLOCATE, SUCCESS, [
        xor_addr(0x0016, "192.0.2.15", 50000), xor_addr(0x0016, "2001:db8::15", 50001),
        xor_addr(0x0020, "198.51.100.7", 41234), u32(0x000D, 600),
        attr(0x0022, bytes(range(8))), attr(0x8001, b"\x02\0\x04\x28Address Family not Supported")],
        key=KEY, fingerprint=True)
    seeds["allocate-error-401"] = message(ALLOCATE, ERROR, [
        error_code(0x0009, 401, "Unauthenticated"), attr(0x0014, b"example.org"),
        attr(0x0015, b"obMatJos2AAACf//499k954d6OL34oL9FSTvy64sA"),
        attr(0x8002, bytes.fromhex("00010000" "00020000" "12340003aabbcc00")),
        attr(0x802E, b"https://auth.example.org")], fingerprint=True)
    seeds["allocate-error-420"] = message(ALLOCATE, ERROR, [
        error_code(0x0009, 420, "Unknown Attribute"), attr(0x000A, bytes.fromhex("7fff0024"))])
    seeds["allocate-userhash-sha256"] = message(ALLOCATE, REQUEST, [
        attr(0x001E, hashlib.sha256(b"user:example.org").digest()), attr(0x0014, b"example.org"),
        attr(0x0015, b"nonce"), attr(0x001D, bytes.fromhex("00020000")),
        attr(0x0019, bytes([6, 0, 0, 0]))], sha256_key=SHA256_KEY, fingerprint=True)
    seeds["refresh-request"] = message(REFRESH, REQUEST, [u32(0x000D, 0), attr(0x8030, b"ticket")],
                                       key=KEY)
    seeds["create-permission"] = message(CREATE_PERMISSION, REQUEST, [
        xor_addr(0x0012, "192.0.2.99", 0), xor_addr(0x0012, "2001:db8::99", 0)], key=KEY)
    seeds["channel-bind"] = message(CHANNEL_BIND, REQUEST, [
        attr(0x000C, bytes.fromhex("40000000")), xor_addr(0x0012, "192.0.2.99", 9999)], key=KEY)
    seeds["send-indication"] = message(SEND, INDICATION, [
        xor_addr(0x0012, "192.0.2.99", 9999), attr(0x0013, b"hello peer"), attr(0x001A, b"")])
    seeds["data-indication"] = message(DATA, INDICATION, [
        xor_addr(0x0012, "2001:db8::99", 9999), attr(0x0013, bytes(range(37))),
        attr(0x8004, bytes.fromhex("00000301deadbeef"))])
    seeds["connect"] = message(CONNECT, REQUEST, [xor_addr(0x0012, "192.0.2.99", 80)])
    seeds["connection-bind"] = message(CONNECTION_BIND, REQUEST, [u32(0x002A, 0xCAFEF00D)])
    seeds["connection-attempt"] = message(CONNECTION_ATTEMPT, INDICATION, [
        u32(0x002A, 7), xor_addr(0x0012, "192.0.2.99", 80)])
    seeds["binding-mapped-alternate"] = message(BINDING, ERROR, [
        error_code(0x0009, 300, "Try Alternate"), plain_addr(0x8023, "192.0.2.2", 3478),
        plain_addr(0x0001, "2001:db8::2", 3478), attr(0x8003, b"turn.example.org"),
        attr(0x001B, b"opaque-access-token")])
    seeds["after-integrity-ignored"] = message(BINDING, REQUEST, [
        attr(0x0006, b"user"), attr(0x0008, bytes(20)), attr(0x8022, b"ignored"),
        attr(0x7FFF, b"ignored"), attr(0x001C, bytes(16))], fingerprint=True)
    seeds["unknown-required"] = message(BINDING, REQUEST, [
        attr(0x7FFF, b"x"), attr(0x0024, b"\0\0\0\1"), attr(0x8FFF, b"opt"), attr(0x7FFF, b"")])
    seeds["fingerprint-not-last"] = header(0x0001, 16) + attr(0x8028, bytes(4)) + attr(0x8022, b"x")
    seeds["bad-mi-length"] = message(BINDING, REQUEST, [attr(0x0008, bytes(19))])
    seeds["attribute-overrun"] = header(0x0001, 8) + bytes.fromhex("0006000861626364")
    seeds["pad-0x20"] = message(BINDING, REQUEST, [attr(0x0006, b"evtj:h6vY", b" ")])
    # Short inputs are also parsed as address text by the target.
    seeds["text-socket-v4"] = b"192.0.2.1:3478"
    seeds["text-socket-v6"] = b"[2001:db8::1]:3478"
    seeds["text-mapped-v4"] = b"::ffff:1.2.3.4"
    return seeds


def cd(channel, data, pad=True):
    out = struct.pack("!HH", channel, len(data)) + data
    return out + b"\0" * ((-len(data)) % 4 if pad else 0)


def channel_seeds():
    return {
        "valid": cd(0x4000, b"\xde\xad\xbe\xef"),
        "valid-padded": cd(0x4001, b"abc"),
        "valid-unpadded": cd(0x4001, b"abc", pad=False),
        "empty-4fff": cd(0x4FFF, b""),
        "channel-3fff": cd(0x3FFF, b"x"),
        "channel-5000": cd(0x5000, b"x"),
        "short": b"\x40\x00\x00",
        "length-past-end": bytes.fromhex("40000010") + b"abcd",
        "large": cd(0x4ABC, bytes(range(256)) * 4),
        "stun-not-cd": vectors()["kRfc5769ResponseV4"],
    }


def framer_input(stream, sizes=(), small=False):
    flags = (0x80 if small else 0) | len(sizes)
    return bytes([flags]) + bytes(sizes) + stream


def framer_seeds():
    v = vectors()
    stun1, stun2 = v["kRfc5769ResponseV4"], v["kRfc5769Request"]
    stream = stun1 + cd(0x4000, b"\x01\x02\x03\x04\x05") + stun2 + cd(0x4FFF, b"")
    big = header(0x0016, 0x0400) + attr(0x0013, bytes(0x03FC))
    bad_cookie = bytearray(stun2)
    bad_cookie[5] ^= 1
    return {
        "one-stun": framer_input(stun1),
        "four-frames-one-chunk": framer_input(stream),
        "four-frames-byte-by-byte": framer_input(stream, sizes=[0]),
        "four-frames-uneven": framer_input(stream, sizes=[0, 3, 1, 7]),
        "partial-tail": framer_input(stream[:-3], sizes=[2]),
        "too-big-for-small-framer": framer_input(stun1 + big, sizes=[1], small=True),
        "fits-small-framer": framer_input(stun1 + cd(0x4002, bytes(200)), small=True),
        "invalid-first-byte": framer_input(stun1 + b"\x80\xe1\x00\x01" + bytes(8)),
        "bad-cookie-second": framer_input(stun1 + bytes(bad_cookie)),
        "http-get": framer_input(b"GET / HTTP/1.1\r\nHost: turn\r\n\r\n"),
    }


def server_input(*packets):
    """turn_server_fuzz records: [flags][length][packet]; flags pick client, TCP and a clock step."""
    out = b""
    for flags, packet in packets:
        out += struct.pack("!BH", flags, len(packet)) + packet
    return out


def server_seeds():
    v = vectors()
    binding = message(0x001, 0b00, [])
    binding_fp = message(0x001, 0b00, [], fingerprint=True)
    unknown = message(0x001, 0b00, [attr(0x7F01, b"ab")], fingerprint=True)
    broken = bytearray(message(0x001, 0b00, [attr(0x8022, b"tern")]))
    broken[23] = 0x40  # SOFTWARE claims 64 bytes
    indication = message(0x001, 0b01, [])
    allocate = message(0x003, 0b00, [u32(0x0019, 17 << 24)])
    # Flag 0x08 has the harness sign the request as a valid user; the last byte of a packet
    # being odd also sends it to the first relay as peer traffic.
    tids = [bytes([i]) * 12 for i in range(1, 9)]
    udp = struct.pack("!I", 17 << 24)
    turn_flow = server_input(
        (0x08, message(ALLOCATE, REQUEST, [attr(0x0019, udp), u32(0x000D, 1800)], tid=tids[0])),
        (0x08, message(CREATE_PERMISSION, REQUEST, [xor_addr(0x0012, "8.8.8.8", 3478, tids[1]),
                                                     xor_addr(0x0012, "1.1.1.1", 53, tids[1])], tid=tids[1])),
        (0x08, message(CHANNEL_BIND, REQUEST, [u32(0x000C, 0x4000 << 16),
                                                xor_addr(0x0012, "8.8.8.8", 3478, tids[2])], tid=tids[2])),
        (0x10, cd(0x4000, b"media-1")),
        (0x00, message(SEND, INDICATION, [xor_addr(0x0012, "1.1.1.1", 53, tids[3]), attr(0x0013, b"send!")],
                       tid=tids[3])),
        (0x08, message(REFRESH, REQUEST, [u32(0x000D, 0)], tid=tids[4])),
    )
    pairs = server_input(
        (0x08, message(ALLOCATE, REQUEST, [attr(0x0019, udp), attr(0x0018, b"\x80")], tid=tids[5])),
        (0x09, message(ALLOCATE, REQUEST, [attr(0x0019, udp), attr(0x0022, bytes(8))], tid=tids[6])),
        (0xF8, message(REFRESH, REQUEST, [u32(0x000D, 600)], tid=tids[7])),
    )
    # RFC 6062 over TCP (flag 0x04): a TCP allocation, a permission for the peer that the
    # harness connects from (8.8.4.4), a Connect, and a ConnectionBind from another client.
    tcp = struct.pack("!I", 6 << 24)
    tcp_flow = server_input(
        (0x0C, message(ALLOCATE, REQUEST, [attr(0x0019, tcp)], tid=tids[0])),
        (0x0C, message(CREATE_PERMISSION, REQUEST, [xor_addr(0x0012, "8.8.4.4", 443, tids[1])], tid=tids[1])),
        (0x0C, message(CONNECT, REQUEST, [xor_addr(0x0012, "8.8.8.8", 443, tids[2])], tid=tids[2])),
        (0x0D, message(CONNECTION_BIND, REQUEST, [u32(0x002A, 0x00ABCDEF)], tid=tids[3])),
        (0x3C, message(REFRESH, REQUEST, [u32(0x000D, 0)], tid=tids[4])),
    )
    # RFC 8656 §11.5: a packet's last byte with bit 4 set reports an ICMP error about 8.8.8.8
    # (bit 5: an IPv6 peer) to the first relay; its first two bytes are the type and code.
    icmp_flow = server_input(
        (0x08, message(ALLOCATE, REQUEST, [attr(0x0019, udp)], tid=tids[0])),
        (0x08, message(CREATE_PERMISSION, REQUEST, [xor_addr(0x0012, "8.8.8.8", 3478, tids[1])],
                       tid=tids[1])),
        (0x10, bytes([3, 3, 0, 0x10])),   # port unreachable: a Data indication with ICMP
        (0x10, bytes([3, 4, 0, 0x10])),   # fragmentation needed: Error Data is the MTU
        (0x10, bytes([5, 0, 0, 0x10])),   # redirect: not passed on
        (0x10, bytes([1, 4, 0, 0x30])),   # ICMPv6 about a peer without permission
    )
    return {
        "turn-flow": turn_flow,
        "icmp-flow": icmp_flow,
        "tcp-allocation-flow": tcp_flow,
        "even-port-pairs": pairs,
        "binding-udp-tcp": server_input((0x00, binding), (0x15, binding_fp)),
        "rfc5769-requests": server_input((0x01, v["kRfc5769Request"]), (0x02, v["kRfc5769LongTermRequest"]),
                                         (0x03, v["kRfc8489B1Request"])),
        "errors": server_input((0x00, unknown), (0x04, bytes(broken)), (0x20, allocate)),
        "not-requests": server_input((0x00, indication), (0x01, v["kRfc5769ResponseV4"]),
                                     (0x02, cd(0x4000, b"media")), (0x03, b"\x80garbage")),
    }


# RFC 7635 §6.2 tokens sealed over the fixed inputs of coturn's rfc5769check OAuth test (the
# same vectors as tests/unit/auth/oauth_token_test.cpp); oauth_token_fuzz holds that key.
OAUTH_NONCE = b"h4j3k2l2n4b5"
OAUTH_A256 = bytes.fromhex(
    "000c68346a336b326c326e346235617ef134a3d5e44e9a19cc7dc104b0c03d03b2a551d8fdf5cd3b6dca6f10"
    "cfb77e5b2ddec84d293a5c50499359f0c2e26f76")
OAUTH_A128 = bytes.fromhex(
    "000c68346a336b326c326e3462357fb9e99f0827be3df1e1bd651493d3031d36df57079784aee5eacb65fa"
    "d4f27fab1a3f97974b69f851b24bf5af09eda357e0")
# Authentic under that key, but the sealed key_length says 0xFFFF (coturn CVE-2026-43994).
OAUTH_KEY_LENGTH_FFFF = bytes.fromhex(
    "000c68346a336b326c326e3462359e95f134a3d5e44e9a19cc7dc104b0c03d03b2a551d8fdf5cd3b6dca6f10"
    "cfb77e5b0e7c29b6de14027ba5d1e62f6df93435")


def oauth_block(key_length, mac_key, timestamp=92470300704768, lifetime=3600):
    return struct.pack("!H", key_length) + mac_key + struct.pack("!QI", timestamp, lifetime)


def oauth_seeds():
    """oauth_token_fuzz inputs: [flags][token], or with flag 0x01 [flags][nonce][block to seal]."""
    mac20, mac32 = b"ZksjpweoixXmvn67534m", bytes(range(32))
    return {
        "token-a256": b"\x00" + OAUTH_A256,
        "token-a128": b"\x02" + OAUTH_A128,
        "token-other-server": b"\x04" + OAUTH_A256,
        "token-truncated": b"\x00" + OAUTH_A256[:40],
        "token-nonce-length-ffff": b"\x00" + b"\xff\xff" + bytes(300),
        "token-nonce-length-0": b"\x00" + b"\x00\x00" + OAUTH_A256[2:],
        "token-key-length-ffff-authentic": b"\x00" + OAUTH_KEY_LENGTH_FFFF,
        "sealed-mac20": b"\x01" + OAUTH_NONCE + oauth_block(20, mac20),
        "sealed-mac32-a128": b"\x03" + OAUTH_NONCE + oauth_block(32, mac32),
        "sealed-key-length-ffff": b"\x01" + OAUTH_NONCE + oauth_block(0xFFFF, mac20),
        "sealed-key-length-32-in-20": b"\x01" + OAUTH_NONCE + oauth_block(32, mac20),
        "sealed-lifetime-0-max-time": b"\x01" + OAUTH_NONCE + oauth_block(20, mac20, 2**64 - 1, 0),
        "sealed-long-block": b"\x01" + OAUTH_NONCE + oauth_block(100, bytes(100)),
    }


def rest_built(flags, who, algo, expiry_offset=3600, flip=0, user=b"alice"):
    """rest_auth_fuzz mode 2: the harness builds and signs the request these choices describe."""
    return bytes([flags | 0x02, who, algo]) + struct.pack("!hH", expiry_offset, flip) + user


def rest_text(text, time_ms=1_000_000_000, position=0, replacement=b"x", ttl=3600, flags=0):
    """rest_auth_fuzz mode 3: [flags][issue time][position][replacement][ttl][text]."""
    return (bytes([flags | 0x03]) + struct.pack("!QH", time_ms, position) + replacement
            + struct.pack("!h", ttl) + text)


def rest_auth_seeds():
    """rest_auth_fuzz inputs; the first byte's low two bits pick the mode (see the target)."""
    v = vectors()
    now = 1_700_000_000
    rest_user = f"{now + 86400}:alice".encode()
    algorithms = attr(0x8002, struct.pack("!HHHH", 2, 0, 1, 0))
    sha256 = attr(0x001D, struct.pack("!HH", 2, 0))
    nonce = attr(0x0015, b"obMatJos2AAAD")
    realm = attr(0x0014, b"tern")
    userhash = attr(0x001E, hashlib.sha256(b"bob:tern").digest())
    token = attr(0x0031, OAUTH_A256)
    return {
        # Mode 0: requests as they arrive.
        "raw-rfc5769-long-term": b"\x00" + v["kRfc5769LongTermRequest"],
        "raw-rfc8489-b1-userhash": b"\x00" + v["kRfc8489B1Request"],
        "raw-static-only-store": b"\x04" + v["kRfc5769LongTermRequest"],
        # Mode 1: re-signed with a fresh nonce; integrity MI, -SHA256, both, truncated.
        "resign-rest-md5": b"\x01" + message(ALLOCATE, REQUEST, [attr(0x0006, rest_user), realm, nonce],
                                               key=b"k"),
        "resign-rest-sha256": b"\x11" + message(ALLOCATE, REQUEST, [attr(0x0006, rest_user), realm, nonce,
                                                                     algorithms, sha256]),
        "resign-static-both-fingerprint": b"\xa1" + message(BINDING, REQUEST,
                                                             [attr(0x0006, b"bob"), realm, nonce]),
        "resign-static-truncated": b"\x31" + message(BINDING, REQUEST, [attr(0x0006, b"1000:dave"), realm, nonce]),
        "resign-userhash": b"\x01" + message(BINDING, REQUEST, [userhash, realm, nonce, algorithms, sha256]),
        "resign-expired-retired": b"\x41" + message(BINDING, REQUEST, [attr(0x0006, b"1000:eve"), realm, nonce]),
        "resign-access-token": b"\x01" + message(ALLOCATE, REQUEST, [attr(0x0006, b"2783466234"), realm,
                                                                      nonce, token]),
        # Mode 2: built by the harness (who, algorithm row, expiry, flip, user).
        "built-static-md5": rest_built(0x00, 0x00, 0),
        "built-rest-secret0-sha256": rest_built(0x20, 0x11, 2),
        "built-rest-secret1-both-fingerprint": rest_built(0x80, 0x22, 1),
        "built-rest-retired": rest_built(0x00, 0x03, 0),
        "built-rest-expired": rest_built(0x40, 0x01, 0, expiry_offset=-1),
        "built-dave-userhash-truncated": rest_built(0x00, 0x3C, 2 | (3 << 3)),
        "built-stale-nonce": rest_built(0x00, 0x41, 0),
        "built-nonce-other-client": rest_built(0x00, 0x81, 0),
        "built-nonce-ahead": rest_built(0x00, 0xC0, 0),
        "built-bid-down": rest_built(0x00, 0x01, 4),
        "built-no-nonce-bit-sha256": rest_built(0x08, 0x01, 3),
        "built-static-only-store-rest": rest_built(0x04, 0x01, 0),
        "built-flip-username": rest_built(0x10, 0x01, 0, flip=20 * 8 + 40),
        "built-flip-mac": rest_built(0x30, 0x11, 2, flip=0xFFF0),
        # Mode 3: text.
        "text-rest-user": rest_text(rest_user),
        "text-leading-zeros": rest_text(b"0001700003600:bob", position=30),
        "text-expiry-only": rest_text(b"1700003600", ttl=-1),
        "text-overflow": rest_text(b"9223372036854775808:x", time_ms=2**63 + 5, ttl=32767),
        "text-int64-max": rest_text(b"9223372036854775807:x", flags=0x08),
        "text-static": rest_text(b"bob", replacement=b"o"),
        "text-static-rest-form": rest_text(b"1000:dave"),
        "text-signed": rest_text(b"-5:alice", position=60, flags=0xf4),
        "text-colon-first": rest_text(b":alice", ttl=-700),
    }


def snapshot_addr(ip, port):
    """allocation_snapshot.cpp's addr: family byte, address bytes, port (IPv4 given as 4 bytes)."""
    return (b"\x01" if len(ip) == 4 else b"\x02") + ip + struct.pack(">H", port)


def snapshot_record(relays=1, token=True, permissions=1, channels=1, connections=1, version=1):
    """One AllocationSnapshot record (format version 1, big-endian; see allocation_snapshot.cpp)."""
    v4, v6 = bytes([198, 51, 100, 7]), bytes([0x20, 0x01, 0x0D, 0xB8] + [0] * 11 + [7])
    peer = bytes([8, 8, 8, 8])
    text = lambda b: struct.pack(">I", len(b)) + b
    body = b"\x02\x00" + snapshot_addr(bytes([192, 0, 2, 7]), 40000) + snapshot_addr(v4, 3478)
    body += bytes([relays]) + struct.pack(">I", 7) + snapshot_addr(v4, 50014)
    if relays == 2:
        body += struct.pack(">I", 9) + snapshot_addr(v6, 50018)
    body += text(b"1700003600:alice") + text(bytes(range(16))) + struct.pack(">H", 0x0008)
    body += (b"\x01" + struct.pack(">q", 1_700_007_200) if token else b"\x00") + text(b"kid" if token else b"")
    body += struct.pack(">qq", 123_000_000_000, 456_000_000_000)
    body += struct.pack(">QQQQ", 11, 2200, 33, 4400) + struct.pack(">qqq", -5_000_000, 250_000_000, 1_500_000_000)
    body += b"\x01" + bytes([0xA7] * 12) + b"\x01" + struct.pack(">Q", 0xA00B) + struct.pack(">H", 440)
    body += b"\x00" + struct.pack(">Q", 0xFEEDFACECAFEBEEF)
    body += struct.pack(">I", connections) + b"".join(struct.pack(">I", 0x03000001 + i) for i in range(connections))
    body += struct.pack(">I", permissions) + b"".join(snapshot_addr(peer, 0)[:-2] + struct.pack(">q", 10**11)
                                                     for _ in range(permissions))
    body += struct.pack(">I", channels) + b"".join(struct.pack(">H", 0x4001 + i) + snapshot_addr(peer, 5000 + i)
                                                  + struct.pack(">q", 3 * 10**11) + b"\x00" for i in range(channels))
    return bytes([version]) + struct.pack(">I", len(body)) + body


def snapshot_seeds():
    full = snapshot_record(relays=2, permissions=3, channels=2, connections=2)
    return {
        "full": full,
        "plain": snapshot_record(token=False, permissions=0, channels=0, connections=0),
        "two-records": full + snapshot_record(),
        "truncated": full[:-7],
        "unknown-version": snapshot_record(version=2),
        "huge-count": snapshot_record(permissions=0, channels=0)[:-8] + struct.pack(">II", 0xFFFFFFFF, 0),
    }


def tcp_connection_record(bound=False, transport=1, conn_id=0x01ABCDEF, deadline=12_345_000_000, version=1):
    """One TcpConnectionSnapshot record (format version 1, big-endian; see allocation_snapshot.cpp)."""
    v6 = bytes([0x20, 0x01, 0x0D, 0xB8] + [0] * 11 + [0x99])
    body = bytes([transport]) + snapshot_addr(bytes([192, 0, 2, 7]), 40000)
    body += snapshot_addr(bytes([198, 51, 100, 1]), 3478) + struct.pack(">I", conn_id)
    body += snapshot_addr(v6, 6000) + bytes([1 if bound else 0]) + struct.pack(">q", deadline)
    return bytes([version]) + struct.pack(">I", len(body)) + body


def tcp_connection_seeds():
    waiting = tcp_connection_record()
    return {
        "waiting": waiting,
        "bound-then-waiting": tcp_connection_record(bound=True, deadline=0) + waiting,
        "truncated": waiting[:-3],
        "tls": tcp_connection_record(transport=2),
        "id-zero": tcp_connection_record(conn_id=0),
        "unknown-version": tcp_connection_record(version=2),
    }


def write(target, seeds):
    d = HERE / "corpus" / target
    d.mkdir(parents=True, exist_ok=True)
    for old in d.glob("seed-*.bin"):
        old.unlink()
    for name, data in seeds.items():
        (d / f"seed-{name}.bin").write_bytes(data)
    print(f"{target}: {len(seeds)} seeds, {len(list(d.iterdir()))} files")


if __name__ == "__main__":
    write("stun_message_fuzz", stun_seeds())
    write("channel_data_fuzz", channel_seeds())
    write("stream_framer_fuzz", framer_seeds())
    write("turn_server_fuzz", server_seeds())
    write("oauth_token_fuzz", oauth_seeds())
    write("rest_auth_fuzz", rest_auth_seeds())
    write("allocation_snapshot_fuzz", snapshot_seeds())
    write("tcp_connection_snapshot_fuzz", tcp_connection_seeds())
