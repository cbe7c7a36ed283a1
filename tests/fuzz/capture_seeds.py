#!/usr/bin/python3
"""Captures what real TURN clients send to and receive from a real `tern serve` on loopback
and turns the messages into fuzz seeds named capture-<client>-<transport>[-<mode>]-<what>.bin:

  stun_message_fuzz   every distinct STUN request and response (method, class or error code,
                      attribute types), e.g. capture-uclient-udp-allocate-401.bin
  channel_data_fuzz   ChannelData datagrams, one per direction and client
  stream_framer_fuzz  each TCP connection's first 4 KiB, client and server side
  turn_server_fuzz    each client's datagrams to the server in turn_server_fuzz's input format:
                      requests that carried MESSAGE-INTEGRITY lose USERNAME, REALM, NONCE,
                      USERHASH, PASSWORD-ALGORITHM(S), the integrity attributes and FINGERPRINT
                      and get the "sign" flag, so the harness signs them for its own user and
                      they reach the allocation state machine; requests the server challenged
                      stay unsigned, as they were

Clients: coturn's turnutils_uclient (UDP and TCP, ChannelData and Send indications, TURN REST
credentials, RFC 8016 mobility, RFC 7635 OAuth, RFC 6062 TCP relay), python3-aioice
(tests/integration/clients/aioice_echo.py, UDP and TCP) and Debian's Chromium driven by
tests/browser/webrtc_relay.mjs (UDP and TCP; needs `npm ci` in tests/browser). TLS is
encrypted and left out. Each client runs alone with tcpdump on lo filtering the server port;
peers are on 127.0.0.2. Every process this script starts is stopped by its own PID.

    sudo apt-get install tcpdump coturn python3-aioice chromium    # as root; tcpdump needs it
    python3 tests/fuzz/capture_seeds.py [--tern build/asan/relay/app/tern] [--only uclient,aioice]
                                        [--merge | --merge-only] [--keep-pcaps DIR]

Seeds are written to --out (default build/fuzz/capture/<target>/). With --merge, each target's
libFuzzer binary (the `fuzz` preset, build/fuzz/tests/fuzz/<target>) keeps only the captures
that add coverage to make_corpus.py's seed-*.bin files and copies them, under their capture
names, into tests/fuzz/corpus/<target>/ in place of the previous capture-*.bin files. Captured bytes differ from run to run (transaction IDs, nonces,
ports), so re-running replaces the capture-* files rather than reproducing them bit for bit.
"""
import argparse
import hashlib
import os
import pathlib
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent
COOKIE = 0x2112A442

USER, PASSWORD = "fuzz", "fuzzpass"
REST_SECRET = "capture-secret"
REALM = "tern.test"
# coturn 4.6's built-in keys for turnutils_uclient -J (as tests/integration/oauth_test.cpp).
OAUTH_KEYS = ("north MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE= A256GCM\n"
              "union MTIzNDU2Nzg5MDEyMzQ1Ng== A128GCM\n"
              "oldempire MTIzNDU2Nzg5MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTI= A256GCM\n")
OAUTH_SERVER = "relay.tern.test"
PEER_IP = "127.0.0.2"

METHODS = {0x001: "binding", 0x003: "allocate", 0x004: "refresh", 0x006: "send", 0x007: "data",
           0x008: "create-permission", 0x009: "channel-bind", 0x00A: "connect",
           0x00B: "connection-bind", 0x00C: "connection-attempt"}
CLASSES = {0: "request", 1: "indication", 2: "success"}
# Stripped from signed requests for turn_server_fuzz, which adds its own credentials.
CREDENTIAL_ATTRS = {0x0006, 0x0014, 0x0015, 0x0008, 0x001C, 0x8028, 0x001E, 0x001D, 0x8002}
INTEGRITY_ATTRS = {0x0008, 0x001C}


# --- Processes -------------------------------------------------------------------------------

class Process:
    """A child process stopped by its own PID (never by name)."""

    def __init__(self, argv, **kwargs):
        self.argv = argv
        self.proc = subprocess.Popen(argv, **kwargs)

    def stop(self, sig=signal.SIGTERM, timeout=10):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def free_port():
    """A port free for UDP and TCP on 127.0.0.1."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as t:
            t.bind(("127.0.0.1", 0))
            port = t.getsockname()[1]
            try:
                with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:
                    u.bind(("127.0.0.1", port))
                return port
            except OSError:
                continue
    raise RuntimeError("no free port")


def wait_for_stun(port, timeout=20):
    """Waits until a STUN Binding to 127.0.0.1:port is answered (before any capture starts)."""
    request = struct.pack("!HHI", 0x0001, 0, COOKIE) + os.urandom(12)
    deadline = time.monotonic() + timeout
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.5)
        while time.monotonic() < deadline:
            s.sendto(request, ("127.0.0.1", port))
            try:
                if s.recv(2048)[8:20] == request[8:20]:
                    return
            except OSError:
                time.sleep(0.2)
    raise RuntimeError(f"tern did not answer on port {port}")


class TcpEchoPeer:
    """A TCP echo peer on PEER_IP for RFC 6062 (turnutils_uclient -T), in a thread of ours."""

    def __init__(self, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((PEER_IP, port))
        self.sock.listen(16)
        self.sock.settimeout(0.5)
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.running:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                continue
            threading.Thread(target=self.echo, args=(conn,), daemon=True).start()

    @staticmethod
    def echo(conn):
        conn.settimeout(10)
        with conn:
            try:
                while data := conn.recv(65536):
                    conn.sendall(data)
            except OSError:
                pass

    def close(self):
        self.running = False
        self.thread.join()
        self.sock.close()


# --- pcap --------------------------------------------------------------------------------------

def read_pcap(path):
    """Yields (time, proto, src, sport, dst, dport, seq, flags, payload) for IPv4/IPv6 UDP and
    TCP packets of a classic pcap file (Ethernet, Linux cooked v1 or v2 link types)."""
    data = pathlib.Path(path).read_bytes()
    if len(data) < 24:
        return
    magic = data[:4]
    endian = "<" if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1") else ">"
    nanos = magic in (b"\x4d\x3c\xb2\xa1", b"\xa1\xb2\x3c\x4d")
    linktype = struct.unpack(endian + "I", data[20:24])[0]
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, incl, _ = struct.unpack(endian + "IIII", data[pos:pos + 16])
        frame = data[pos + 16:pos + 16 + incl]
        pos += 16 + incl
        t = sec + frac / (1e9 if nanos else 1e6)
        if linktype == 1:
            ethertype, ip = struct.unpack("!H", frame[12:14])[0], frame[14:]
        elif linktype == 113:
            ethertype, ip = struct.unpack("!H", frame[14:16])[0], frame[16:]
        elif linktype == 276:
            ethertype, ip = struct.unpack("!H", frame[0:2])[0], frame[20:]
        else:
            raise RuntimeError(f"unsupported pcap link type {linktype}")
        if ethertype == 0x0800 and len(ip) >= 20:
            ihl = (ip[0] & 0x0F) * 4
            total = struct.unpack("!H", ip[2:4])[0]
            proto, src, dst = ip[9], socket.inet_ntoa(ip[12:16]), socket.inet_ntoa(ip[16:20])
            l4 = ip[ihl:total]
        elif ethertype == 0x86DD and len(ip) >= 40:
            proto = ip[6]
            src = socket.inet_ntop(socket.AF_INET6, ip[8:24])
            dst = socket.inet_ntop(socket.AF_INET6, ip[24:40])
            l4 = ip[40:40 + struct.unpack("!H", ip[4:6])[0]]
        else:
            continue
        if proto == 17 and len(l4) >= 8:
            sport, dport, length = struct.unpack("!HHH", l4[:6])
            yield t, "udp", src, sport, dst, dport, 0, 0, l4[8:length]
        elif proto == 6 and len(l4) >= 20:
            sport, dport, seq = struct.unpack("!HHI", l4[:8])
            offset = (l4[12] >> 4) * 4
            yield t, "tcp", src, sport, dst, dport, seq, l4[13], l4[offset:]


def tcp_streams(packets):
    """Reassembles each direction of each TCP connection:
    {(src, sport, dst, dport): (bytes, [(offset, time of the segment starting there)])}."""
    segments, isn = {}, {}
    for t, proto, src, sport, dst, dport, seq, flags, payload in packets:
        if proto != "tcp":
            continue
        key = (src, sport, dst, dport)
        if flags & 0x02:  # SYN
            isn[key] = (seq + 1) & 0xFFFFFFFF
        if payload:
            segments.setdefault(key, []).append((seq, t, payload))
    streams = {}
    for key, segs in segments.items():
        base = isn.get(key, min(s for s, _, _ in segs))
        out, times = bytearray(), []
        for seq, t, payload in sorted(segs, key=lambda s: ((s[0] - base) & 0xFFFFFFFF, s[1])):
            rel = (seq - base) & 0xFFFFFFFF
            if rel > len(out):
                break  # a gap: stop at what arrived in order
            if rel + len(payload) > len(out):
                times.append((len(out), t))
                out += payload[len(out) - rel:]
        streams[key] = (bytes(out), times)
    return streams


def time_at(times, offset):
    """When the byte at `offset` of a reassembled stream arrived."""
    best = times[0][1]
    for start, t in times:
        if start > offset:
            break
        best = t
    return best


def frames(stream):
    """Splits a TURN-over-TCP byte stream into (offset, frame): STUN messages and padded
    ChannelData."""
    out, pos = [], 0
    while len(stream) - pos >= 4:
        kind = stream[pos] >> 6
        length = struct.unpack("!H", stream[pos + 2:pos + 4])[0]
        if kind == 0:
            size = 20 + length
        elif kind == 1:
            size = 4 + length + (-length) % 4  # RFC 8656 §12.5: padded over TCP
        else:
            break
        if len(stream) - pos < size:
            break
        out.append((pos, stream[pos:pos + size]))
        pos += size
    return out


# --- STUN --------------------------------------------------------------------------------------

def is_stun(b):
    return len(b) >= 20 and b[0] >> 6 == 0 and struct.unpack("!I", b[4:8])[0] == COOKIE


def attributes(b):
    """[(type, value)] of a STUN message, in order."""
    out, pos = [], 20
    end = min(len(b), 20 + struct.unpack("!H", b[2:4])[0])
    while end - pos >= 4:
        t, n = struct.unpack("!HH", b[pos:pos + 4])
        out.append((t, b[pos + 4:pos + 4 + n]))
        pos += 4 + n + (-n) % 4
    return out


def method_and_class(b):
    t = struct.unpack("!H", b[:2])[0]
    method = (t & 0x000F) | ((t & 0x00E0) >> 1) | ((t & 0x3E00) >> 2)
    return method, ((t >> 4) & 1) | ((t >> 7) & 2)


def describe(b):
    """e.g. "allocate-401", "channel-bind-success", "send-indication"."""
    method, cls = method_and_class(b)
    name = METHODS.get(method, f"method-{method:03x}")
    if cls == 3:
        for t, v in attributes(b):
            if t == 0x0009 and len(v) >= 4:
                return f"{name}-{(v[2] & 7) * 100 + v[3]}"
        return f"{name}-error"
    return f"{name}-{CLASSES[cls]}"


def strip_credentials(b):
    """The request without the attributes the turn_server_fuzz harness adds itself."""
    body = b"".join(struct.pack("!HH", t, len(v)) + v + b"\0" * ((-len(v)) % 4)
                    for t, v in attributes(b) if t not in CREDENTIAL_ATTRS)
    return b[:2] + struct.pack("!H", len(body)) + b[4:20] + body


# --- Scenarios ---------------------------------------------------------------------------------

def uclient(*extra):
    def argv(ctx):
        return (["turnutils_uclient", "-e", PEER_IP, "-r", str(ctx["peer_port"]), "-p", str(ctx["port"]),
                 "-n", "4", "-m", "1", "-l", "100", "-z", "5"] + list(extra) + ["127.0.0.1"])
    return argv


def static_user():
    return ["-u", USER, "-w", PASSWORD]


def aioice(transport):
    def argv(ctx):
        return ["/usr/bin/python3", str(ROOT / "tests/integration/clients/aioice_echo.py"),
                "--server", f"127.0.0.1:{ctx['port']}", "--username", USER, "--password", PASSWORD,
                "--peer-host", PEER_IP, "--transport", transport, "--sizes", "1,160,1200"]
    return argv


def chromium(transport):
    def argv(ctx):
        return ["node", str(ROOT / "tests/browser/webrtc_relay.mjs"),
                "--url", f"turn:127.0.0.1:{ctx['port']}?transport={transport}",
                "--username", USER, "--credential", PASSWORD, "--messages", "3"]
    return argv


# (tag, client, argv builder)
SCENARIOS = [
    ("uclient-udp", "uclient", uclient(*static_user())),
    ("uclient-udp-send", "uclient", uclient(*static_user(), "-s")),
    ("uclient-tcp", "uclient", uclient(*static_user(), "-t")),
    ("uclient-tcp-send", "uclient", uclient(*static_user(), "-t", "-s")),
    ("uclient-udp-rest", "uclient", uclient("-u", "restuser", "-W", REST_SECRET)),
    ("uclient-udp-mobility", "uclient", uclient("-M", "-c", "-u", "restuser", "-W", REST_SECRET)),
    ("uclient-udp-oauth", "uclient", uclient("-J", "-u", "north")),
    ("uclient-tcp-relay", "uclient", uclient(*static_user(), "-t", "-T")),
    ("aioice-udp", "aioice", aioice("udp")),
    ("aioice-tcp", "aioice", aioice("tcp")),
    ("chromium-udp", "chromium", chromium("udp")),
    ("chromium-tcp", "chromium", chromium("tcp")),
]


def capture(tag, argv, ctx, workdir):
    """Runs one client while tcpdump records the server port; returns the pcap's path."""
    pcap = workdir / f"{tag}.pcap"
    # --immediate-mode: without it, packets wait in the kernel for a full block or a timeout,
    # and those of a client that finishes quickly are lost when tcpdump stops.
    dump = Process(["tcpdump", "-i", "lo", "--immediate-mode", "-U", "-n", "-s", "0", "-w", str(pcap),
                    f"port {ctx['port']}"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # tcpdump says "listening on lo" once it captures.
        line = dump.proc.stderr.readline().decode(errors="replace")
        if "listening" not in line:
            raise RuntimeError(f"tcpdump did not start: {line.strip()}")
        client = Process(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(ROOT))
        try:
            out, _ = client.proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            client.stop(signal.SIGKILL)
            out = b"(timed out)"
        print(f"  {tag}: exit {client.proc.returncode}; " + out.decode(errors="replace").strip()[-160:]
              .replace("\n", " | "))
        time.sleep(1)
    finally:
        dump.stop(signal.SIGINT)
    return pcap


def extract(tag, pcap, port, seeds):
    """Adds the seeds of one capture to `seeds` ({target: {name: bytes}})."""
    packets = list(read_pcap(pcap))
    # (time, client transport, client endpoint, to_server, message)
    messages = []
    for t, proto, src, sport, dst, dport, _, _, payload in packets:
        if proto == "udp" and payload:
            to_server = dport == port
            messages.append((t, "udp", (src, sport) if to_server else (dst, dport), to_server, payload))
    streams = tcp_streams(packets)
    # Connections numbered in the order they carried data.
    connections = {}
    for (src, sport, dst, dport), (stream, times) in sorted(streams.items(), key=lambda s: s[1][1][0][1]):
        to_server = dport == port
        endpoint = (src, sport) if to_server else (dst, dport)
        number = connections.setdefault(endpoint, len(connections) + 1)
        for offset, f in frames(stream):
            messages.append((time_at(times, offset), "tcp", endpoint, to_server, f))
        side = "client" if to_server else "server"
        # stream_framer_fuzz: [flags][chunk sizes][stream]; the client side in one chunk, the
        # server side in chunks of 1 + 8 * (5, 17, 2) bytes.
        head = stream[:4096]
        name = f"capture-{tag}-connection-{number}-{side}-stream"
        seeds["stream_framer_fuzz"][name] = (b"\x00" + head if to_server else b"\x03\x05\x11\x02" + head)
    messages.sort(key=lambda m: m[0])

    seen = set()
    for _, transport, _, to_server, m in messages:
        if is_stun(m):
            key = (to_server, describe(m), tuple(sorted({t for t, _ in attributes(m)})))
            if key in seen:
                continue
            seen.add(key)
            name = f"capture-{tag}-{describe(m)}"
            n = 2
            while name in seeds["stun_message_fuzz"]:
                name, n = f"capture-{tag}-{describe(m)}-{n}", n + 1
            seeds["stun_message_fuzz"][name] = m
        elif len(m) >= 4 and m[0] >> 6 == 1:
            name = f"capture-{tag}-channel-data-{'to-server' if to_server else 'to-client'}"
            seeds["channel_data_fuzz"].setdefault(name, m)

    # turn_server_fuzz: the clients' packets, in order, as [flags][length][packet]; flags bits
    # 0-1 client, bit 2 TCP, bit 3 sign, bits 4-7 seconds since the previous packet.
    clients, records, last, data_packets = {}, b"", None, 0
    for t, transport, endpoint, to_server, m in messages:
        if not to_server:
            continue
        index = clients.setdefault((transport, endpoint), len(clients) % 4)
        flags = index | (0x04 if transport == "tcp" else 0)
        packet = m
        if is_stun(m):
            _, cls = method_and_class(m)
            if cls == 0 and any(a in INTEGRITY_ATTRS for a, _ in attributes(m)):
                packet = strip_credentials(m)
                flags |= 0x08
            elif cls != 0:
                data_packets += 1
        else:
            data_packets += 1
        if data_packets > 6 and not (is_stun(m) and method_and_class(m)[1] == 0):
            continue  # a few data packets show relaying; more only lengthen the input
        step = 0 if last is None else min(15, int(t - last))
        last = t
        records += struct.pack("!BH", flags | (step << 4), len(packet)) + packet
        if len(records) > 6000:
            break
    if records:
        seeds["turn_server_fuzz"][f"capture-{tag}-session"] = records


# --- Output ------------------------------------------------------------------------------------

TARGETS = ["stun_message_fuzz", "channel_data_fuzz", "stream_framer_fuzz", "turn_server_fuzz"]


def write(seeds, out):
    for target in TARGETS:
        d = out / target
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        for name, data in seeds[target].items():
            (d / f"{name}.bin").write_bytes(data)
        print(f"{target}: {len(seeds[target])} captured seeds in {d}")


def merge(out, fuzz_build):
    """Replaces the capture-*.bin files of tests/fuzz/corpus/<target>/ with the captures that
    add coverage (libFuzzer's features: edges and their hit counts) to make_corpus.py's seeds.
    merge_corpus.py then adds the fuzzer's own finds on top."""
    for target in TARGETS:
        binary = fuzz_build / "tests" / "fuzz" / target
        corpus = HERE / "corpus" / target
        with tempfile.TemporaryDirectory() as tmp:
            merged = pathlib.Path(tmp)
            for seed in corpus.glob("seed-*.bin"):
                shutil.copy(seed, merged / seed.name)
            before = {p.name for p in merged.iterdir()}
            run = Process([str(binary), "-merge=1", str(merged), str(out / target)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            if run.proc.wait() != 0:
                raise RuntimeError(f"{target}: merge failed")
            by_hash = {hashlib.sha1(p.read_bytes()).hexdigest(): p for p in (out / target).iterdir()}
            added = [by_hash[p.name] for p in merged.iterdir() if p.name not in before and p.name in by_hash]
        for old in corpus.glob("capture-*.bin"):
            old.unlink()
        for p in added:
            shutil.copy(p, corpus / p.name)
        print(f"{target}: {len(added)} of {len(list((out / target).iterdir()))} captures add coverage")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tern", default=str(ROOT / "build/asan/relay/app/tern"))
    p.add_argument("--out", default=str(ROOT / "build/fuzz/capture"))
    p.add_argument("--only", default="", help="comma-separated clients: uclient,aioice,chromium")
    p.add_argument("--merge", action="store_true", help="merge coverage-adding captures into the corpora")
    p.add_argument("--merge-only", action="store_true", help="merge an earlier run's --out, capture nothing")
    p.add_argument("--fuzz-build", default=str(ROOT / "build/fuzz"))
    p.add_argument("--keep-pcaps", help="copy each client's pcap into this directory")
    args = p.parse_args()
    only = set(filter(None, args.only.split(",")))

    out = pathlib.Path(args.out)
    if args.merge_only:
        merge(out, pathlib.Path(args.fuzz_build))
        return
    seeds = {t: {} for t in TARGETS}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = pathlib.Path(tmp)
        secret_file = workdir / "secret"
        secret_file.write_text(REST_SECRET + "\n")
        key_file = workdir / "oauth-keys"
        key_file.write_text(OAUTH_KEYS)
        port, peer_port = free_port(), free_port()
        ctx = {"port": port, "peer_port": peer_port}
        tern = Process([args.tern, "serve", "--listen", f"127.0.0.1:{port}", "--workers", "1",
                        "--realm", REALM, "--user", f"{USER}:{PASSWORD}", "--auth-secret-file", str(secret_file),
                        "--oauth-key-file", str(key_file), "--oauth-server-name", OAUTH_SERVER,
                        "--relay-ip", "127.0.0.1", "--relay-ports", "62000-62999", "--allow-peer", "127.0.0.0/8",
                        "--log-level", "warn"],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peer = Process(["turnutils_peer", "-L", PEER_IP, "-p", str(peer_port)],
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        tcp_peer = TcpEchoPeer(peer_port)
        try:
            wait_for_stun(port)
            for tag, client, argv in SCENARIOS:
                if only and client not in only:
                    continue
                pcap = capture(tag, argv(ctx), ctx, workdir)
                extract(tag, pcap, port, seeds)
                if args.keep_pcaps:
                    pathlib.Path(args.keep_pcaps).mkdir(parents=True, exist_ok=True)
                    shutil.copy(pcap, args.keep_pcaps)
        finally:
            tcp_peer.close()
            peer.stop()
            code = tern.stop(signal.SIGINT)  # SIGTERM would drain allocations first
            if code not in (0, None):
                print(f"tern exited with {code}", file=sys.stderr)
    write(seeds, out)
    if args.merge:
        merge(out, pathlib.Path(args.fuzz_build))


if __name__ == "__main__":
    main()
