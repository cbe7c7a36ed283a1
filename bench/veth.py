"""compare.py --topology veth: the load generator, the relay and the peers each in a network
namespace of their own, linked by veth pairs, so relayed packets cross real interfaces and a
kernel fast path (issue 21) can attach to the relay's two. See bench/README.md.

    load (tern-load's clients)  --veth--  relay (tern or turnserver)  --veth--  peer (tern-load's peers)
    load0 192.0.2.10, .11              relay-c 192.0.2.1 | relay-p 198.51.100.1     peer0 198.51.100.2

tern-load runs in the load namespace and opens its peer sockets in the peer namespace
(--peer-netns), so one process keeps both ends and one clock. The metric is relayed packets
per second of the whole machine's busy CPU less the generator's own: in the kernel fast path
the relay's work happens in softirq, charged to no process.
"""
import ctypes
import json
import os
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

import compare

CLONE_NEWNET = 0x40000000
LIBC = ctypes.CDLL(None, use_errno=True)
PORT = compare.PORT
CLIENT_IPS = ["192.0.2.10", "192.0.2.11"]
RELAY_CLIENT_SIDE = "192.0.2.1"
RELAY_PEER_SIDE = "198.51.100.1"
PEER_IP = "198.51.100.2"
# Interface names live in their namespace, so fixed names cannot collide between runs.
LOAD_IF, RELAY_CLIENT_IF, RELAY_PEER_IF, PEER_IF = "load0", "relay-c", "relay-p", "peer0"
SERVERS = ["tern", "tern-fast", "coturn"]
# name: (tern-load arguments besides --duration, what it measures)
SCENARIOS = {
    "max160": (["--allocations", "100", "--rate", "0", "--window", "32", "--size", "160"],
               "100 allocations, closed loop (32 packets in flight per allocation and direction), 160 B, "
               "both directions"),
    "voice": (["--allocations", "1000", "--rate", "50", "--size", "160"],
              "1000 allocations x 50 packets/s x 160 B, both directions"),
}


class ServerDidNotStart(RuntimeError):
    pass


def setns(path):
    """Moves the calling thread into the network namespace at `path`."""
    fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    try:
        if LIBC.setns(fd, CLONE_NEWNET) != 0:
            errno = ctypes.get_errno()
            raise OSError(errno, f"setns {path}: {os.strerror(errno)}")
    finally:
        os.close(fd)


class Topology:
    """The three namespaces, named with this script's PID so parallel runs cannot collide;
    deleted on exit, whatever the exit (deleting a namespace deletes its veth ends)."""

    def __init__(self):
        tag = f"tern-bench-{os.getpid()}"
        self.names = {side: f"{tag}-{side}" for side in ("load", "relay", "peer")}
        self.made = []

    def __enter__(self):
        try:
            self._create()
        except BaseException:
            self.delete()
            raise
        return self

    def __exit__(self, *exc):
        self.delete()

    def _create(self):
        for name in self.names.values():
            sh("ip", "netns", "add", name)
            self.made.append(name)
        load, relay, peer = self.names["load"], self.names["relay"], self.names["peer"]
        # Each pair is made inside its namespaces, never in the host's.
        sh("ip", "-n", load, "link", "add", LOAD_IF, "type", "veth", "peer", "name", RELAY_CLIENT_IF, "netns", relay)
        sh("ip", "-n", peer, "link", "add", PEER_IF, "type", "veth", "peer", "name", RELAY_PEER_IF, "netns", relay)
        for ip in CLIENT_IPS:
            sh("ip", "-n", load, "addr", "add", f"{ip}/24", "dev", LOAD_IF)
        sh("ip", "-n", relay, "addr", "add", f"{RELAY_CLIENT_SIDE}/24", "dev", RELAY_CLIENT_IF)
        sh("ip", "-n", relay, "addr", "add", f"{RELAY_PEER_SIDE}/24", "dev", RELAY_PEER_IF)
        sh("ip", "-n", peer, "addr", "add", f"{PEER_IP}/24", "dev", PEER_IF)
        for ns, ifs in ((load, [LOAD_IF]), (relay, [RELAY_CLIENT_IF, RELAY_PEER_IF]), (peer, [PEER_IF])):
            for name in ["lo"] + ifs:
                sh("ip", "-n", ns, "link", "set", name, "up")
        # bpf_fib_lookup answers only with forwarding on; the user-space relays do not care.
        self.run("relay", ["sysctl", "-qw", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1"])
        # Full checksums, as from a real NIC, and receivers that verify what the relay wrote.
        self.run("load", ["ethtool", "-K", LOAD_IF, "tx", "off", "rx", "off"], stdout=subprocess.DEVNULL)
        self.run("peer", ["ethtool", "-K", PEER_IF, "tx", "off", "rx", "off"], stdout=subprocess.DEVNULL)
        # What the generator sends must not be relayed inside its own system calls. A plain
        # veth hands a packet to the receiving end's backlog and the softirq that relays it
        # (tern's socket, or the fast path's program all the way into the peer's socket) runs
        # when the sender's send re-enables bottom halves: charged to the generator's process
        # time, which the metric subtracts. GRO on the relay's two ends gives them NAPI, and
        # threaded NAPI polls them in kernel threads, as a NIC's interrupt would: the relay's
        # receive work lands in no user process. (veth queues to NAPI only packets from a
        # device without TSO: "tx off" on load0 and peer0 has turned TSO off there, and
        # "tso off" here does it for what the relay sends towards the generator.)
        for name in (RELAY_CLIENT_IF, RELAY_PEER_IF):
            self.run("relay", ["ethtool", "-K", name, "gro", "on", "tso", "off"], stdout=subprocess.DEVNULL)
            sh("ip", "netns", "exec", relay, "sh", "-c", f"echo 1 > /sys/class/net/{name}/threaded")
        # The same on the generator's two ends: what the relay sends is received there by
        # threads of their own (napi/load0-*, napi/peer0-*), which tern-load counts as its own
        # (--own-kernel-threads): on a real network that work is the clients' and peers'
        # hosts', not the relay's. Without TSO off on the relay's ends it would not happen:
        # the packets would go to load0's and peer0's backlog and be received inside the
        # relay's own napi threads or system calls, charged to the relay.
        for side, name in (("load", LOAD_IF), ("peer", PEER_IF)):
            self.run(side, ["ethtool", "-K", name, "gro", "on"], stdout=subprocess.DEVNULL)
            sh("ip", "netns", "exec", self.names[side], "sh", "-c", f"echo 1 > /sys/class/net/{name}/threaded")

    def delete(self):
        while self.made:
            name = self.made.pop()
            subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)

    def path(self, side):
        return f"/run/netns/{self.names[side]}"

    def popen(self, side, args, **kwargs):
        path = self.path(side)
        return subprocess.Popen(args, preexec_fn=lambda: setns(path), **kwargs)

    def run(self, side, args, check=True, **kwargs):
        path = self.path(side)
        return subprocess.run(args, preexec_fn=lambda: setns(path), check=check, **kwargs)

    def udp_socket(self, side):
        """A UDP socket that lives in `side`'s namespace (this thread comes back home)."""
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
        try:
            setns(self.path(side))
            try:
                return socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            finally:
                if LIBC.setns(home, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns back to the host's namespace")
        finally:
            os.close(home)


def sh(*args):
    subprocess.run(args, check=True, stdout=subprocess.DEVNULL)


def tern_has_fast_path():
    """Whether this tern knows --fast-path: before issue 21 it does not, and its user-space
    path is simply its only one."""
    out = subprocess.run([compare.TERN, "serve", "--help"], capture_output=True, text=True, timeout=10)
    return "--fast-path" in out.stdout


class Server:
    def __init__(self, kind, topology, workdir, fast_path_known):
        self.kind = kind
        self.log = open(os.path.join(workdir, f"veth-{kind}.log"), "ab")
        start_of_log = self.log.tell()
        if kind in ("tern", "tern-fast"):
            args = [compare.TERN, "serve", "--listen", f"{RELAY_CLIENT_SIDE}:{PORT}", "--realm", "bench",
                    "--auth-secret", compare.SECRET, "--relay-ports", "20000-60000", "--relay-ip", RELAY_PEER_SIDE,
                    "--allow-peer", f"{PEER_IP}/32", "--max-allocations-per-user", "0", "--log-level", "warn",
                    "--unauthenticated-rate", "0"]
            if kind == "tern-fast":
                args += ["--fast-path", "on", "--fast-path-interface", RELAY_CLIENT_IF,
                         "--fast-path-interface", RELAY_PEER_IF]
            elif fast_path_known:
                args += ["--fast-path", "off"]
        else:
            args = ["turnserver", "-n", "--listening-ip", RELAY_CLIENT_SIDE, "--listening-port", str(PORT),
                    "--relay-ip", RELAY_PEER_SIDE, "--min-port", "20000", "--max-port", "60000",
                    "--use-auth-secret", "--static-auth-secret", compare.SECRET, "--realm", "bench", "--no-cli",
                    "--no-tls", "--no-dtls", "--no-stdout-log", "--simple-log",
                    "--log-file", os.path.join(workdir, "veth-coturn-turn.log"),
                    "--pidfile", os.path.join(workdir, "veth-coturn.pid")]
        self.process = topology.popen("relay", args, stdout=self.log, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 10
            while not binding_answered(topology):
                if time.time() > deadline or self.process.poll() is not None:
                    raise ServerDidNotStart(what_it_said(self.log.name, start_of_log) or "no answer")
                time.sleep(0.05)
        except BaseException:
            self.stop()
            raise

    def stop(self):
        # tern drains on SIGTERM (calls an interrupted run left open would hold it up to
        # --drain-timeout); SIGINT ends it at once. coturn ends on SIGTERM.
        compare.stop_process(self.process, signal.SIGINT if self.kind.startswith("tern") else signal.SIGTERM)
        self.log.close()


def binding_answered(topology):
    request = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, os.urandom(12))
    with topology.udp_socket("load") as s:
        s.settimeout(0.2)
        try:
            s.sendto(request, (RELAY_CLIENT_SIDE, PORT))
            s.recvfrom(2048)
            return True
        except OSError:
            return False


def what_it_said(path, offset):
    """The server's output since `offset`, on one line: why it did not start."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            text = f.read(2000).decode(errors="replace")
    except OSError:
        return ""
    return " / ".join(l.strip() for l in text.splitlines() if l.strip())


INTERFACES = {"load": [LOAD_IF], "relay": [RELAY_CLIENT_IF, RELAY_PEER_IF], "peer": [PEER_IF]}


def drop_counts(topology):
    """Where a packet can be lost on its way, as counters read in each namespace: a veth end's
    transmit drops (the far end's NAPI ring, 256 packets, was full: its thread was not
    scheduled in time) and UDP's receive-buffer drops (a socket's owner did not read in time)."""
    counts = {"relay's veth rings": 0, "generator's veth rings": 0, "relay sockets": 0, "generator sockets": 0}
    for side, names in INTERFACES.items():
        links = json.loads(topology.run(side, ["ip", "-s", "-j", "link", "show"], capture_output=True, text=True).stdout)
        # A drop on the generator's ends was a ring into the relay, and the other way round.
        ring = "relay's veth rings" if side != "relay" else "generator's veth rings"
        counts[ring] += sum(l["stats64"]["tx"]["dropped"] for l in links if l["ifname"] in names)
        # /proc/net is the reading process's namespace: cat runs in `side`'s.
        snmp = topology.run(side, ["cat", "/proc/net/snmp"], capture_output=True, text=True).stdout
        udp = [line.split()[1:] for line in snmp.splitlines() if line.startswith("Udp:")]
        errors = int(dict(zip(udp[0], udp[1]))["RcvbufErrors"])
        counts["relay sockets" if side == "relay" else "generator sockets"] += errors
    return counts


def run(topology, kind, scenario, workdir, duration, fast_path_known):
    drops_before = drop_counts(topology)
    server = Server(kind, topology, workdir, fast_path_known)
    try:
        command = [compare.LOAD, "--server", f"{RELAY_CLIENT_SIDE}:{PORT}", "--secret", compare.SECRET,
                   "--server-pid", str(server.process.pid), "--peer-ip", PEER_IP,
                   "--peer-netns", topology.names["peer"], "--label", f"{kind}-{scenario}", "--warmup", "1",
                   "--duration", str(duration), "--own-kernel-threads", f"napi/{LOAD_IF}-",
                   "--own-kernel-threads", f"napi/{PEER_IF}-"] + SCENARIOS[scenario][0]
        for ip in CLIENT_IPS:
            command += ["--client-ip", ip]
        # Bounded in count (the scenario's allocations) and in time (set-up retries give up;
        # this timeout ends a generator that hangs anyway).
        # Exit status 1 (some allocations failed) still reports; "failed" is in the JSON.
        out = topology.run("load", command, check=False, capture_output=True, text=True, timeout=120 + duration)
        result = compare.load_result(out, kind, scenario)
        # Over the whole run (set-up, warm-up and drain included), next to the window's loss.
        result["drops"] = {k: v - drops_before[k] for k, v in drop_counts(topology).items()}
        return result
    finally:
        server.stop()


def metrics(scenario, r):
    relayed = (r["pps_up"] + r["pps_down"]) * r["seconds"]
    # The whole machine's busy time less the generator's own: its process time and its two
    # interfaces' receive threads. What remains is the relay's process and kernel work, the
    # veth transmits towards the generator, and whatever else the machine ran meanwhile.
    cpu = r["machine_cpu"] - r["generator_cpu"] - r.get("generator_kthreads_cpu", 0)
    m = {"packets per machine CPU-s": relayed / cpu if cpu > 0 else 0,
         "machine CPU-s less generator": cpu, "server process CPU-s": r["server_cpu"]}
    m["loss %"] = 100 * max(r["loss_up"], r["loss_down"])
    for where, count in r["drops"].items():
        m[f"dropped in {where}"] = count
    if scenario == "max160":
        m.update({"up pps": r["pps_up"], "down pps": r["pps_down"]})
    else:
        m["p99 us"] = max(r["latency_up_us"]["p99"], r["latency_down_us"]["p99"])
    return m


def main(a):
    scenarios = [s for s in (a.only or ",".join(SCENARIOS)).split(",") if s]
    kinds = [k for k in (a.servers or ",".join(SERVERS)).split(",") if k]
    for s in scenarios:
        if s not in SCENARIOS:
            sys.exit(f"unknown scenario {s} for --topology veth; known: {', '.join(SCENARIOS)}")
    for k in kinds:
        if k not in SERVERS:
            sys.exit(f"unknown server {k} for --topology veth; known: {', '.join(SERVERS)}")
    for path in (compare.TERN, compare.LOAD):
        if not os.access(path, os.X_OK):
            sys.exit(f"missing {path}: build the release preset first (see bench/README.md)")
    if os.geteuid() != 0:
        sys.exit("--topology veth makes network namespaces: run it as root")
    # SIGTERM and SIGHUP end the run as Ctrl-C does: through the finally blocks that stop the
    # servers and delete the namespaces. SIGINT too when started in the background, where
    # the shell has it ignored.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, lambda number, _frame: sys.exit(128 + number))
    fast_path_known = tern_has_fast_path()
    results, raw, skipped = {}, [], {}
    with tempfile.TemporaryDirectory(prefix="tern-bench-veth-") as workdir, Topology() as topology:
        for rep in range(a.reps):
            for scenario in scenarios:
                for kind in kinds:
                    if kind in skipped:
                        continue
                    try:
                        r = run(topology, kind, scenario, workdir, a.duration, fast_path_known)
                    except ServerDidNotStart as e:
                        if kind != "tern-fast":
                            raise
                        # Until the fast path is merged tern rejects --fast-path; the other
                        # servers' numbers still stand.
                        skipped[kind] = str(e)
                        print(f"tern-fast: skipped (tern did not start with --fast-path on: {e})", flush=True)
                        continue
                    raw.append(r)
                    for name, value in metrics(scenario, r).items():
                        results.setdefault((scenario, name), {}).setdefault(kind, []).append(value)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(raw, f, indent=1)
    report(a, scenarios, results, skipped)


def report(a, scenarios, results, skipped):
    print(f"Topology veth: medians of {a.reps} interleaved repetitions of {a.duration:g} s "
          f"({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, coturn {compare.coturn_version()}).\n")
    print("| scenario | metric | tern | tern-fast | coturn | tern-fast/tern | tern-fast/coturn | tern/coturn |")
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for (scenario, name), by_kind in results.items():
        med = {k: statistics.median(v) for k, v in by_kind.items()}

        def cell(k):
            return compare.fmt(med[k]) if k in med else ""

        def ratio(x, y):
            return f"{med[x] / med[y]:.2f}" if x in med and y in med and med[y] else ""

        print(f"| {scenario} | {name} | {cell('tern')} | {cell('tern-fast')} | {cell('coturn')} | "
              f"{ratio('tern-fast', 'tern')} | {ratio('tern-fast', 'coturn')} | {ratio('tern', 'coturn')} |")
    print()
    for s in scenarios:
        print(f"- {s}: {SCENARIOS[s][1]}")
    for kind, why in skipped.items():
        print(f"- {kind}: skipped: {why}")
