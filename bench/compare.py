#!/usr/bin/python3
"""Side-by-side benchmark: tern, coturn (Debian package) and a bare UDP forwarder on the same
loads, interleaved (every repetition runs every scenario on every server in turn, each on a
freshly started server), printing medians and ratios. See bench/README.md.

    python3 bench/compare.py [--reps 3] [--only max160,voice] [--big] [--servers tern,tern-bps]
    python3 bench/compare.py --topology veth [--reps 3] [--duration 5] [--servers tern,tern-fast,coturn]

Needs the release build (build/release: tern, bench/tern-load, bench/tern-forwarder) and
coturn's turnserver. Everything runs on loopback, or with --topology veth in network
namespaces this script makes and deletes (bench/veth.py), and is stopped by PID.
"""
import argparse
import json
import os
import resource
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.join(ROOT, "build", "release")
TERN = os.path.join(BUILD, "relay", "app", "tern")
LOAD = os.path.join(BUILD, "bench", "tern-load")
FORWARDER = os.path.join(BUILD, "bench", "tern-forwarder")
BASELINE = []  # --baseline: the path of another tern binary
SECRET = "bench-secret"
PORT = 19478
RELAY_IPS = ["127.0.0.1", "127.0.0.3"]
CLIENT_IPS = ["127.0.1.1", "127.0.1.2"]
PEER_IP = "127.0.0.2"

# name: (tern-load arguments, which servers, what it measures)
SCENARIOS = {
    "max160": (["--allocations", "16", "--rate", "0", "--window", "32", "--size", "160", "--duration", "5"],
               ["tern", "coturn", "forwarder"], "closed loop, 160 B, both directions"),
    "max1200": (["--allocations", "16", "--rate", "0", "--window", "32", "--size", "1200", "--duration", "5"],
                ["tern", "coturn", "forwarder"], "closed loop, 1200 B, both directions"),
    "voice": (["--allocations", "1000", "--rate", "50", "--size", "160", "--duration", "5"],
              ["tern", "coturn", "forwarder"], "1000 allocations x 50 packets/s x 160 B, both directions"),
    "setup": (["--allocations", "10000", "--duration", "0", "--concurrency", "128"],
              ["tern", "coturn"], "authenticated Allocates (401 round trip included)"),
    "memory": (["--allocations", "10000", "--duration", "0", "--concurrency", "128"],
               ["tern", "coturn"], "10,000 allocations held; RSS growth per allocation"),
    "tcp160": (["--transport", "tcp", "--allocations", "16", "--rate", "0", "--window", "32", "--size", "160",
                "--duration", "5"], ["tern", "coturn"], "TURN over TCP, closed loop, 160 B"),
    "hold50k": (["--allocations", "50000", "--duration", "0", "--concurrency", "256"],
                ["tern"], "50,000 allocations held without error (fewer if the open-files limit is lower: "
                          "one descriptor per allocation in tern and in the generator)"),
    "churn": (["--allocations", "1000", "--rate", "50", "--duration", "1", "--churn", "180"],
              ["tern"], "3 minutes of cycles: 1000 allocations created, 1 s of voice media, deleted; the server's "
                        "RSS and descriptors after the first cycle and at the end"),
}
DEFAULT = ["max160", "max1200", "voice", "setup", "memory", "tcp160"]
# Long and tern-only: run once whatever --reps says.
ONCE = {"hold50k", "churn"}
# tern with both bandwidth limits on, far above any load here (nothing is dropped): what the
# buckets cost per packet. Every tern-load allocation belongs to one user, so the per-user
# bucket is shared by both workers, the contended case.
BANDWIDTH_LIMITS = ["--max-bps", "100G", "--max-bps-per-user", "100G"]


def binding_answered(port):
    request = struct.pack("!HHI12s", 0x0001, 0, 0x2112A442, os.urandom(12))
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(0.2)
        try:
            s.sendto(request, ("127.0.0.1", port))
            s.recvfrom(2048)
            return True
        except OSError:
            return False


class Server:
    def __init__(self, kind, workdir, extra=(), log_level="warn"):
        """extra: more tern arguments (bench/upgrade.py)."""
        self.kind = kind
        self.log = open(os.path.join(workdir, f"{kind}.log"), "ab")
        if kind in ("tern", "tern-bps", "baseline"):
            args = [BASELINE[0] if kind == "baseline" else TERN, "serve", "--listen", f"127.0.0.1:{PORT}", "--realm", "bench", "--auth-secret", SECRET,
                    "--relay-ports", "20000-60000", "--allow-peer", "127.0.0.0/8",
                    "--max-allocations-per-user", "0", "--log-level", log_level,
                    # The generator's 128 Allocates in flight come from two addresses: tern's
                    # per-source limit on answers to unauthenticated requests (200/s) would make
                    # "setup" measure that limit, not the server; coturn has none.
                    "--unauthenticated-rate", "0"]
            for ip in RELAY_IPS:
                args += ["--relay-ip", ip]
            if kind == "tern-bps":
                args += BANDWIDTH_LIMITS
            args += list(extra)
        elif kind == "coturn":
            args = ["turnserver", "-n", "--listening-ip", "127.0.0.1", "--listening-port", str(PORT),
                    "--min-port", "20000", "--max-port", "60000", "--use-auth-secret",
                    "--static-auth-secret", SECRET, "--realm", "bench", "--allow-loopback-peers", "--no-cli",
                    "--no-tls", "--no-dtls", "--no-stdout-log", "--simple-log",
                    "--log-file", os.path.join(workdir, "coturn-turn.log"),
                    "--pidfile", os.path.join(workdir, "coturn.pid")]
            for ip in RELAY_IPS:
                args += ["--relay-ip", ip]
        else:
            args = [FORWARDER, "--listen", f"127.0.0.1:{PORT}", "--threads", "2"]
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 10
        while kind != "forwarder" and not binding_answered(PORT):
            if time.time() > deadline or self.process.poll() is not None:
                self.stop()
                raise RuntimeError(f"{kind} did not start; see {self.log.name}")
            time.sleep(0.05)
        if kind == "forwarder":
            time.sleep(0.2)

    def stop(self):
        stop_process(self.process, signal.SIGTERM)
        self.log.close()


def stop_process(process, signum):
    """Sends `signum` to a server this script started and waits; kills it after 10 s."""
    if process.poll() is None:
        process.send_signal(signum)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def held_allocations(wanted):
    """What the open-files limit lets one process hold, with room for everything else."""
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard == resource.RLIM_INFINITY:
        return wanted
    return min(wanted, hard - 2000)


def run(kind, scenario, workdir):
    args, _, _ = SCENARIOS[scenario]
    if scenario == "hold50k":
        held = held_allocations(50000)
        if held < 50000:
            sys.stderr.write(f"hold50k: the open-files hard limit allows {held} allocations, not 50,000\n")
        args = ["--allocations", str(held)] + args[2:]
    server = Server(kind, workdir)
    try:
        command = [LOAD, "--server", f"127.0.0.1:{PORT}", "--server-pid", str(server.process.pid),
                   "--peer-ip", PEER_IP, "--label", f"{kind}-{scenario}",
                   "--warmup", "0" if scenario == "churn" else "1"] + args
        for ip in CLIENT_IPS:
            command += ["--client-ip", ip]
        if kind == "forwarder":
            command.append("--raw")
        else:
            command += ["--secret", SECRET]
        out = subprocess.run(command, capture_output=True, text=True, timeout=900)
        return load_result(out, kind, scenario)
    finally:
        server.stop()


def load_result(out, kind, scenario):
    """tern-load's JSON line from a finished run (its stderr passed on)."""
    sys.stderr.write(out.stderr)
    lines = [l for l in out.stdout.splitlines() if l.startswith("{")]
    if not lines:
        raise RuntimeError(f"no result from {kind} {scenario}: {out.stderr}")
    return json.loads(lines[-1])


def metrics(scenario, r):
    """The numbers a scenario is judged by."""
    if scenario in ("max160", "max1200", "tcp160"):
        low, high = sorted([r["pps_up"], r["pps_down"]])
        return {"packets per server CPU-s": r["packets_per_server_cpu_second"],
                "up pps": r["pps_up"], "down pps": r["pps_down"],
                "slower/faster direction": low / high if high else 0}
    if scenario == "voice":
        return {"loss %": 100 * max(r["loss_up"], r["loss_down"]),
                "p50 us": max(r["latency_up_us"]["p50"], r["latency_down_us"]["p50"]),
                "p99 us": max(r["latency_up_us"]["p99"], r["latency_down_us"]["p99"]),
                "max us": max(r["latency_up_us"]["max"], r["latency_down_us"]["max"]),
                "packets per server CPU-s": r["packets_per_server_cpu_second"]}
    if scenario == "setup":
        return {"allocations/s": r["allocations_per_second"],
                "allocations per server CPU-s": r["ready"] / r["allocate_server_cpu"] if r["allocate_server_cpu"] else 0,
                "failed": r["failed"]}
    if scenario == "churn":
        return {"cycles": r["cycles"], "lost packets": r["lost"], "failed": r["failed"],
                "RSS KiB after warm-up": r["rss_warm_kib"], "RSS KiB at the end": r["rss_end_kib"],
                "descriptors after warm-up": r["fds_warm"], "descriptors at the end": r["fds_end"]}
    if scenario in ("memory", "hold50k"):
        return {"RSS bytes per allocation": r["rss_per_allocation_bytes"], "ready": r["ready"],
                "failed": r["failed"]}
    return {}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--only", help="comma-separated scenarios (default: " + ",".join(DEFAULT) +
                                       "; with --topology veth: max160,voice)")
    parser.add_argument("--big", action="store_true",
                        help="also hold 50,000 allocations on tern and run the 3-minute churn")
    parser.add_argument("--json", help="write every raw result to this file")
    parser.add_argument("--servers", help="comma-separated servers to run (of tern, tern-bps, baseline, coturn, "
                                          "forwarder; default: each scenario's own); tern-bps is tern with --max-bps "
                                          "and --max-bps-per-user set far above the load")
    parser.add_argument("--baseline", metavar="TERN_BINARY",
                        help="another tern binary (an earlier commit's release build) run wherever tern runs, "
                             "interleaved with it: the 'baseline' column and the tern/baseline ratio")
    parser.add_argument("--topology", choices=["loopback", "veth"], default="loopback",
                        help="veth: generator, relay and peers in three network namespaces linked by veth pairs; "
                             "servers tern, tern-fast (--fast-path on), coturn; packets per machine CPU-s "
                             "(bench/veth.py; needs root)")
    parser.add_argument("--duration", type=float, default=5, help="--topology veth: seconds measured per run")
    a = parser.parse_args()
    if a.topology == "veth":
        import veth
        veth.main(a)
        return
    if not a.only:
        a.only = ",".join(DEFAULT)
    if a.baseline:
        BASELINE.append(os.path.abspath(a.baseline))
    scenarios = [s for s in a.only.split(",") if s]
    if a.big:
        scenarios += ["hold50k", "churn"]
    for s in scenarios:
        if s not in SCENARIOS:
            sys.exit(f"unknown scenario {s}; known: {', '.join(SCENARIOS)}")
    for path in (TERN, LOAD, FORWARDER):
        if not os.access(path, os.X_OK):
            sys.exit(f"missing {path}: build the release preset first (see bench/README.md)")
    results = {}
    raw = []
    with tempfile.TemporaryDirectory(prefix="tern-bench-") as workdir:
        for rep in range(a.reps):
            for scenario in scenarios:
                if rep > 0 and scenario in ONCE:
                    continue
                kinds = SCENARIOS[scenario][1]
                if a.servers:
                    kinds = [k for k in a.servers.split(",")
                             if k in kinds or (k in ("tern-bps", "baseline") and "tern" in kinds)]
                elif a.baseline and "tern" in kinds:
                    kinds = ["baseline"] + list(kinds)
                for kind in kinds:
                    r = run(kind, scenario, workdir)
                    raw.append(r)
                    for name, value in metrics(scenario, r).items():
                        results.setdefault((scenario, name), {}).setdefault(kind, []).append(value)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(raw, f, indent=1)

    print(f"Medians of {a.reps} interleaved repetitions ({time.strftime('%Y-%m-%d')}, "
          f"{os.cpu_count()} CPUs, coturn {coturn_version()}).\n")
    limited = any("tern-bps" in by_kind for by_kind in results.values())
    baseline = any("baseline" in by_kind for by_kind in results.values())
    if baseline:
        print("| scenario | metric | tern | baseline | coturn | tern/baseline | tern/coturn | baseline/coturn |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    elif limited:
        print("| scenario | metric | tern | tern-bps | coturn | forwarder | tern-bps/tern | tern/coturn | tern/forwarder |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    else:
        print("| scenario | metric | tern | coturn | forwarder | tern/coturn | tern/forwarder |")
        print("| --- | --- | ---: | ---: | ---: | ---: | ---: |")
    for (scenario, name), by_kind in results.items():
        med = {k: statistics.median(v) for k, v in by_kind.items()}

        def cell(k):
            return fmt(med[k]) if k in med else ""

        def ratio(x, y):
            return f"{med[x] / med[y]:.2f}" if x in med and y in med and med[y] else ""

        if baseline:
            print(f"| {scenario} | {name} | {cell('tern')} | {cell('baseline')} | {cell('coturn')} | "
                  f"{ratio('tern', 'baseline')} | {ratio('tern', 'coturn')} | {ratio('baseline', 'coturn')} |")
        elif limited:
            print(f"| {scenario} | {name} | {cell('tern')} | {cell('tern-bps')} | {cell('coturn')} | "
                  f"{cell('forwarder')} | {ratio('tern-bps', 'tern')} | {ratio('tern', 'coturn')} | "
                  f"{ratio('tern', 'forwarder')} |")
        else:
            print(f"| {scenario} | {name} | {cell('tern')} | {cell('coturn')} | {cell('forwarder')} | "
                  f"{ratio('tern', 'coturn')} | {ratio('tern', 'forwarder')} |")
    print()
    for s in scenarios:
        print(f"- {s}: {SCENARIOS[s][2]}")


def fmt(v):
    if isinstance(v, float) and v < 10:
        return f"{v:.3f}"
    return f"{v:,.0f}"


def coturn_version():
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "coturn"], capture_output=True, text=True)
        return out.stdout.strip() or "?"
    except OSError:
        return "?"


if __name__ == "__main__":
    main()
