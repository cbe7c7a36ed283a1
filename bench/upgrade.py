#!/usr/bin/python3
"""Upgrading under load: tern hands 10,000 allocations to a new process while a call runs.

    python3 bench/upgrade.py [--reps 3] [--idle 10000] [--calls 4] [--json FILE]

Each repetition starts a fresh tern (release build, set up as bench/compare.py sets it up),
opens --idle allocations that carry no media and --calls voice calls (50 packets/s x 160 B
both ways) with tern-load, sends tern SIGUSR2 while the calls run, and reads: the hand-over
time tern logs (`upgraded ... milliseconds=N`), the wall time from the signal to that line,
the largest gap between two packets a call's receiver saw in each direction, the calls'
loss, the new process's tern_allocations_active, and how many allocations still answer a
Refresh afterwards. A control run (the same, no signal) comes first in every repetition:
the gaps this machine shows with no upgrade at all. Prints medians. See bench/README.md.

A separate script, not a compare.py scenario: it signals the server in mid-run, follows its
log and ends a process compare.py never started (the new tern), and it has no coturn or
forwarder column. It reuses compare.py's server set-up, addresses and formatting.
"""
import argparse
import calendar
import ctypes
import json
import os
import re
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.dont_write_bytecode = True  # no bench/__pycache__ from importing compare
import compare  # noqa: E402

METRICS_PORT = compare.PORT + 2
PR_SET_CHILD_SUBREAPER = 36
WARMUP = 1.0
SIGNAL_AFTER = 2.0  # seconds into the measured window
DURATION = 8.0
# A plain log line: "<ts> <level> <event> key=value ...", values with spaces JSON-quoted.
LINE = re.compile(r"^(\S+) \w+ (upgraded|upgrade failed)\b(.*)$")
PHASE = re.compile(r"^(\S+) \w+ (taking over|taken over)\b")
FIELD = re.compile(r'(\w+)=("(?:[^"\\]|\\.)*"|\S+)')


def become_subreaper():
    """The new tern is the old one's child; when the old one exits it is re-parented to us."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_CHILD_SUBREAPER): {os.strerror(ctypes.get_errno())}")


def raise_file_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < needed:
        sys.exit(f"the open-files hard limit is {hard}; {needed} allocations need more (use --idle)")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def log_time(stamp):
    """A plain log line's timestamp (UTC, milliseconds) as seconds since the epoch."""
    t = time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")
    return calendar.timegm(t) + int(stamp[20:23]) / 1000


def follow_log(path, offset, deadline, server):
    """The first `upgraded` or `upgrade failed` line after `offset`: (timestamp, event, fields,
    line); None if none came before the deadline or the old tern died without writing one.
    Reads only what was appended since the last look: the log holds a line per allocation,
    and parsing it all again every 10 ms would take a core from the processes measured."""
    gone_at = None
    pending = b""
    with open(path, "rb") as f:
        f.seek(offset)
        while time.time() < deadline:
            pending += f.read()
            lines = pending.split(b"\n")
            pending = lines.pop()  # an unfinished line waits for its end
            for raw in lines:
                m = LINE.match(raw.decode(errors="replace"))
                if m:
                    return log_time(m.group(1)), m.group(2), dict(FIELD.findall(m.group(3))), raw.decode()
            if server.poll() is not None:
                gone_at = gone_at or time.time()
                if time.time() - gone_at > 1:
                    return None
            time.sleep(0.01)
    return None


def phases(path, offset, signalled):
    """Milliseconds from the signal to the new process holding every socket (`taking over`)
    and to its last worker serving them (`taken over`)."""
    out = {}
    with open(path, "rb") as f:
        f.seek(offset)
        for raw in f.read().decode(errors="replace").splitlines():
            m = PHASE.match(raw)
            if m:
                key = "received_ms" if m.group(2) == "taking over" else "restored_ms"
                out[key] = 1000 * (log_time(m.group(1)) - signalled)
    return out


def allocations_active():
    """tern_allocations_active summed over its labels, from whoever serves /metrics now."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return -1
    total = 0
    for line in text.splitlines():
        if line.startswith("tern_allocations_active"):
            total += float(line.split()[-1])
    return int(total)


def stop_pid(pid):
    """SIGTERM to a process we reap as subreaper; SIGKILL after 10 s."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.time() + 10
    while time.time() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not ours: wait until it is gone
            done = 0 if os.path.exists(f"/proc/{pid}") else pid
        if done == pid:
            return
        time.sleep(0.05)
    os.kill(pid, signal.SIGKILL)
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def start_load(a):
    command = [compare.LOAD, "--server", f"127.0.0.1:{compare.PORT}", "--secret", compare.SECRET,
               "--peer-ip", compare.PEER_IP, "--label", "upgrade", "--allocations", str(a.calls),
               "--idle", str(a.idle), "--rate", "50", "--size", "160", "--warmup", str(WARMUP),
               "--duration", str(DURATION), "--concurrency", "128", "--refresh-at-end"]
    for ip in compare.CLIENT_IPS:
        command += ["--client-ip", ip]
    load = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = threading.Event()
    errors = []

    def read_stderr():
        for line in load.stderr:
            errors.append(line)
            if "allocations ready" in line:
                ready.set()
        ready.set()

    reader = threading.Thread(target=read_stderr, daemon=True)
    reader.start()
    return load, ready, errors, reader


def one_run(a, workdir, upgrade):
    log_path = os.path.join(workdir, "tern.log")
    server = compare.Server("tern", workdir, extra=["--metrics-listen", f"127.0.0.1:{METRICS_PORT}"],
                            log_level=a.log_level)
    new_pid = 0
    load = None
    result = {"upgrade": upgrade}
    try:
        load, ready, errors, reader = start_load(a)
        if not ready.wait(120) or load.poll() is not None:
            raise RuntimeError("tern-load did not set up: " + "".join(errors))
        ready_at = time.time()
        time.sleep(WARMUP + SIGNAL_AFTER)
        if upgrade:
            offset = os.path.getsize(log_path)  # what came before cannot be the answer
            signalled = time.time()
            os.kill(server.process.pid, signal.SIGUSR2)
            seen = follow_log(log_path, offset, signalled + 60, server.process)
            if seen is None:
                with open(log_path, "rb") as f:
                    f.seek(offset)
                    lines = f.read().decode(errors="replace").splitlines()
                tail = "\n".join([l for l in lines if " allocation " not in l][-20:])
                raise RuntimeError(f"no `upgraded` line (tern exit status {server.process.poll()}):\n{tail}")
            stamp, event, fields, raw = seen
            if event != "upgraded":
                raise RuntimeError(f"tern: {raw}")
            new_pid = int(fields.get("pid", 0))
            result.update(handover_ms=float(fields.get("milliseconds", -1)),
                          wall_ms=1000 * (stamp - signalled),
                          handed_allocations=int(fields.get("allocations", -1)),
                          handed_descriptors=int(fields.get("descriptors", -1)),
                          inside_window=stamp < ready_at + WARMUP + DURATION - 0.5)
            server.process.wait(timeout=30)  # the old tern exits once the new one serves
        time.sleep(1)
        result["metrics_active"] = allocations_active()
        out, _ = load.communicate(timeout=300)
        reader.join(5)
        lines = [l for l in out.splitlines() if l.startswith("{")]
        if not lines:
            raise RuntimeError("no result from tern-load: " + "".join(errors))
        r = json.loads(lines[-1])
        result.update(gap_up_ms=r["max_gap_up_us"] / 1000, gap_down_ms=r["max_gap_down_us"] / 1000,
                      loss_up=r["loss_up"], loss_down=r["loss_down"], kept=r["kept"],
                      total=r["allocations"] + r["idle"], ready=r["ready"],
                      latency_max_up_ms=r["latency_up_us"]["max"] / 1000,
                      latency_max_down_ms=r["latency_down_us"]["max"] / 1000, load=r)
        if upgrade:
            result.update(phases(log_path, offset, signalled))  # read once the calls have ended
            # Where the largest gap began, from the signal: lines it up with tern's log.
            result.update(gap_up_from_signal_ms=r["max_gap_up_from_unix_ms"] - 1000 * signalled,
                          gap_down_from_signal_ms=r["max_gap_down_from_unix_ms"] - 1000 * signalled)
        return result
    finally:
        if load is not None and load.poll() is None:
            load.kill()
            load.wait()
        if new_pid:
            stop_pid(new_pid)
        server.stop()


ROWS = [("hand-over ms (tern's log)", "handover_ms"), ("signal to `upgraded` line, wall ms", "wall_ms"),
        ("signal to the new process holding every socket (`taking over`), ms", "received_ms"),
        ("signal to its last worker serving them (`taken over`), ms", "restored_ms"),
        ("the largest gap began, ms after the signal", "gap_up_from_signal_ms"),
        ("largest gap client->peer ms", "gap_up_ms"), ("largest gap peer->client ms", "gap_down_ms"),
        ("max one-way latency client->peer ms", "latency_max_up_ms"),
        ("max one-way latency peer->client ms", "latency_max_down_ms"),
        ("loss client->peer %", "loss_up"), ("loss peer->client %", "loss_down"),
        ("allocations answering Refresh afterwards", "kept"), ("tern_allocations_active after", "metrics_active")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--idle", type=int, default=10000, help="allocations without media")
    parser.add_argument("--calls", type=int, default=4, help="voice calls at 50 packets/s each way")
    parser.add_argument("--no-control", action="store_true", help="skip the run without an upgrade")
    parser.add_argument("--log-level", default="info",
                        help="tern's (info, its default, logs a line per allocation created: what an operator runs)")
    parser.add_argument("--json", help="write every raw result to this file")
    parser.add_argument("--workdir", help="keep tern's log (tern.log) in this directory instead of a temporary one")
    a = parser.parse_args()
    for path in (compare.TERN, compare.LOAD):
        if not os.access(path, os.X_OK):
            sys.exit(f"missing {path}: build the release preset first (see bench/README.md)")
    load_before = os.getloadavg()
    become_subreaper()
    raise_file_limit(a.idle + a.calls + 1000)
    runs = []
    if a.workdir:
        os.makedirs(a.workdir, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tern-upgrade-") as scratch:
        workdir = a.workdir or scratch
        for rep in range(a.reps):
            for upgrade in ([True] if a.no_control else [False, True]):
                r = one_run(a, workdir, upgrade)
                r["rep"] = rep
                runs.append(r)
                shown = {k: r[k] for k in r if k != "load"}
                sys.stderr.write(f"rep {rep + 1}: {json.dumps(shown)}\n")
                if r.get("inside_window") is False:
                    sys.stderr.write(f"rep {rep + 1}: the hand-over ended after the calls' measured window; "
                                     "its gap is not measured\n")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(runs, f, indent=1)
    total = a.idle + a.calls
    load = os.getloadavg()
    print(f"Medians of {a.reps} repetitions ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs): "
          f"{a.idle:,} idle allocations and {a.calls} calls of 50 packets/s x 160 B each way, "
          f"SIGUSR2 {SIGNAL_AFTER:.0f} s into {DURATION:.0f} s of measured call; load average at the start "
          f"{load_before[0]:.1f}, at the end {load[0]:.1f}.\n")
    print("| metric | no upgrade | upgrade | per-repetition (upgrade) |")
    print("| --- | ---: | ---: | --- |")
    for name, key in ROWS:
        cells = []
        for upgrade in (False, True):
            values = [r[key] * (100 if key.startswith("loss") else 1) for r in runs
                      if r["upgrade"] == upgrade and key in r]
            cells.append(values)
        med = [compare.fmt(statistics.median(v)) if v else "" for v in cells]
        each = ", ".join(compare.fmt(v) for v in cells[1])
        print(f"| {name} | {med[0]} | {med[1]} | {each} |")
    print(f"\nallocations: {total:,} per run (the calls' included); a gap is the longest time between "
          f"two packets of one call in one direction at its receiver (the send interval is 20 ms).")


if __name__ == "__main__":
    main()
