#!/usr/bin/python3
"""Upgrade soak: an in-place upgrade (SIGUSR2, docs/upgrade.md) lands in the middle of the
soak's churn, and neither process may lose or leak anything over it.

    upgrade_soak.py --tern BUILD/relay/app/tern --load BUILD/bench/tern-load [--seconds 10]

1. Hand-over under churn: the old process's figures at rest are read as it starts. Then two
   tern-load --churn runs, one over UDP and one over TCP, cycle allocations (create, bind,
   media at 50 packets/s each way, delete) for 8 s. Once both transports have allocations
   alive, SIGUSR2 goes to tern; the churn runs on through the hand-over and after it, some
   three cycles of each transport, against the new process. Asserted: UDP, whose allocations
   move, lost no allocation and no packet (the plain soak's own tolerance: none). Plain TCP
   connections move too, unless writes were still queued on one, which then stays with its
   allocation in the old process, drained (docs/upgrade.md); the old process also accepts
   connections until it lets go, and one whose Allocate arrives after the hand-over is
   refused (508) as in any drain, so up to one cycle's allocations may fail there; those that
   succeeded lose no packet.
2. The old process exits 0 by itself, sooner than --drain-timeout (its TCP calls ended; the
   drain was not cut short), and its log says how many allocations moved.
3. Accounting, from the log both processes share: the old process says it handed over as
   many allocations as the new one says it took over, none lost: every UDP allocation alive
   when the old process froze (created and not ended before the new one logged `taken
   over`), and at most the TCP ones alive then; each of those UDP allocations, by its relayed
   address, then has its usage record (`allocation ended`) from the new process, or is still
   alive there; UDP and TCP allocations were created there after it.
4. The new process at rest, once the churn has ended: as many descriptors and libuv handles
   as the old one held at its start (the hand-over left none behind, per moved allocation or
   at all). These figures are its post-warm-up level, its warm-up being the cycles of both
   transports it served in the hand-over churn (as many as the plain soak's warm-up).
5. Then, as the plain soak judges a fresh process (soak.judge): --seconds of churn, half UDP
   and half TCP; descriptors and handles exactly back at that level, heap and RSS within the
   plain soak's margins, nothing failed or lost; SIGINT, exit 0.

The length is fixed (TERN_SOAK_SECONDS lengthens only the plain soak): what the hand-over
could leave behind shows within seconds, and the plain soak covers long runs of the same code.
"""
import argparse
import ctypes
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import soak

HAND_OVER_CHURN = 8.0  # seconds of churn the upgrade lands in (and the new process warms up in)
ALLOCATIONS = 200  # per tern-load cycle, as in the plain soak
PR_SET_CHILD_SUBREAPER = 36


# The new process is the old one's child; once the old one exits it is re-parented to the
# nearest subreaper. Becoming one lets this script reap it, and so wait for it.
def become_subreaper():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER)")


class Adopted:
    """The new process: not started here, stopped here by its PID."""

    def __init__(self, pid):
        self.pid = pid
        self.status = None

    def running(self):
        if self.status is not None:
            return False
        try:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:  # not our child yet: its parent, the old process, lives
            try:
                os.kill(self.pid, 0)
                return True
            except ProcessLookupError:
                self.status = -1
                return False
        if pid == self.pid:
            self.status = os.waitstatus_to_exitcode(status)
            return False
        return True

    def stop(self, signum, timeout):
        if self.running():
            os.kill(self.pid, signum)
        deadline = time.monotonic() + timeout
        while self.running() and time.monotonic() < deadline:
            time.sleep(0.05)
        return None if self.running() else self.status


def wait_for(condition, seconds, step=0.05):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(step)
    return condition()


def log_fields(line):
    return dict(re.findall(r" (\w+)=(\S+)", line))


def start_churn(load, relay, transport):
    command = soak.churn_command(load, relay, transport, HAND_OVER_CHURN, ALLOCATIONS, None)
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


# Step 1: SIGUSR2 once both transports have allocations alive. Returns the `upgraded` line's
# fields, the monotonic time it was seen, and tern-load's results by transport.
def hand_over_under_churn(load, relay, problems):
    loads = {t: start_churn(load, relay, t) for t in ("udp", "tcp")}
    try:
        def both_active():
            text = relay.metrics()
            return all(soak.metric_sum(text, "tern_allocations_active", f'transport="{t}"') > 0 for t in loads)

        if not wait_for(both_active, 10, 0.1):
            problems.append("no moment with UDP and TCP allocations alive at once to upgrade in")
        os.kill(relay.process.pid, signal.SIGUSR2)
        pattern = r" upgraded (pid=\d+ allocations=\d+ descriptors=\d+ milliseconds=\d+)"
        found = wait_for(lambda: re.search(pattern + r"| upgrade failed.*", relay.output()), 40)
        seen = time.monotonic()
        exited = ExitWatch(relay.process)
        results = {}
        for transport, process in loads.items():
            out, err = process.communicate(timeout=HAND_OVER_CHURN + 120)
            results[transport] = soak.churn_result(process.returncode, out, err, failures_ok=transport == "tcp")
            print(f"hand-over churn {transport}: {results[transport]}", flush=True)
    finally:
        for process in loads.values():
            if process.poll() is None:
                process.kill()
                process.wait()
    if not found or not found.group(1):
        raise RuntimeError("no upgrade:\n" + (found.group(0) if found else relay.output()[-4000:]))
    upgraded = {k: int(v) for k, v in log_fields(" " + found.group(1)).items()}
    print(f"upgraded: {upgraded}", flush=True)
    return upgraded, seen, exited, results


def judge_churn(results, upgraded, problems):
    udp, tcp = results["udp"], results["tcp"]
    if udp["failed"] or udp["lost"]:
        problems.append(f"UDP across the hand-over: {udp['failed']} allocations failed, {udp['lost']} packets lost")
    if tcp["failed"] > ALLOCATIONS or tcp["lost"]:
        problems.append(f"TCP across the hand-over: {tcp['failed']} allocations failed (at most one cycle's "
                        f"{ALLOCATIONS} may), {tcp['lost']} packets lost")
    if upgraded["allocations"] == 0:
        problems.append("the upgrade handed over no allocation: it did not land in the churn")


# Step 3, from the shared log: the allocations alive at the freeze, by transport and relayed
# address.
def alive_at(lines, until):
    alive = {"udp": set(), "tcp": set()}
    for line in lines[:until]:
        transport = next((t for t in alive if f" transport={t} " in line), None)
        if transport is None or " allocation " not in line:
            continue
        relayed = log_fields(line)["relayed"]
        if " allocation created " in line:
            alive[transport].add(relayed)
        elif " allocation ended " in line:
            alive[transport].discard(relayed)
    return alive


def judge_accounting(log, upgraded, active_udp, problems):
    lines = log.splitlines()
    taken = [i for i, l in enumerate(lines) if " taken over " in l]
    if not taken:
        problems.append("the new process logged no `taken over`")
        return
    alive = alive_at(lines, taken[0])
    after = lines[taken[0]:]
    created_after = {t: sum(1 for l in after if " allocation created " in l and f" transport={t} " in l)
                     for t in ("udp", "tcp")}
    ended_after = {}
    for line in after:
        if " allocation ended " in line and " transport=udp " in line:
            f = log_fields(line)
            ended_after.setdefault(f["relayed"], f)  # the first end after the freeze is the moved one
    handed = sum(int(log_fields(l)["allocations"]) for l in lines if " handed over " in l)
    took = sum(int(log_fields(lines[i])["allocations"]) for i in taken)
    lost = sum(int(log_fields(lines[i])["lost"]) for i in taken)
    udp, tcp = len(alive["udp"]), len(alive["tcp"])
    print(f"accounting: {udp} UDP and {tcp} TCP allocations alive at the freeze; handed over {handed}, "
          f"upgraded line {upgraded['allocations']}, taken over {took}, lost {lost}; "
          f"{created_after['udp']} UDP and {created_after['tcp']} TCP allocations created after it", flush=True)
    if not (handed == upgraded["allocations"] == took) or lost or not udp <= handed <= udp + tcp:
        problems.append(f"allocations at the freeze: {udp} UDP (all must move) and {tcp} TCP; handed over "
                        f"{handed}, upgraded line {upgraded['allocations']}, taken over {took}, lost {lost}")
    if created_after["udp"] == 0 or created_after["tcp"] == 0:
        problems.append(f"{created_after['udp']} UDP and {created_after['tcp']} TCP allocations created in the new "
                        "process: the churn did not go on")
    missing = sorted(r for r in alive["udp"] if r not in ended_after)
    reasons = sorted({ended_after[r]["reason"] for r in alive["udp"] if r in ended_after})
    print(f"moved UDP allocations' usage records: {udp - len(missing)}, reasons {reasons}", flush=True)
    if len(missing) > active_udp:
        problems.append(f"{len(missing)} moved allocations have no usage record and {active_udp} UDP allocations "
                        f"are alive: {missing[:5]}")


class ExitWatch:
    """When the old process exits, seen while the churn still runs."""

    def __init__(self, process):
        self.process = process
        self.at = None
        self.thread = threading.Thread(target=self._wait, daemon=True)
        self.thread.start()

    def _wait(self):
        self.process.wait()
        self.at = time.monotonic()


# Step 2: the old process, left with TCP calls only, ends on its own, before --drain-timeout.
def judge_old_exit(relay, seen, exited, drain_timeout, problems):
    exited.thread.join(timeout=max(0.0, seen + drain_timeout + 10 - time.monotonic()))
    if exited.at is None:
        relay.process.kill()
        exited.thread.join()
    status = relay.process.returncode
    took = exited.at - seen
    print(f"old process exited {status} {took:.1f} s after the upgrade", flush=True)
    if status != 0 or took >= drain_timeout or " drain timeout" in relay.output():
        problems.append(f"old process exited with {status} after {took:.1f} s (--drain-timeout {drain_timeout})")


def run(args, workdir, problems):
    # The test's own copy: an upgrade starts the binary at the running one's path, and a
    # rebuild meanwhile must not change what starts.
    binary = os.path.join(workdir, "tern")
    shutil.copy2(args.tern, binary)
    relay = soak.Relay(binary, workdir, drain_timeout=args.drain_timeout)
    adopted = None
    try:
        fresh = relay.figures()
        print(f"old process at its start: {fresh}", flush=True)
        upgraded, seen, exited, results = hand_over_under_churn(args.load, relay, problems)
        adopted = Adopted(upgraded["pid"])
        relay.pid = adopted.pid
        judge_churn(results, upgraded, problems)
        judge_old_exit(relay, seen, exited, args.drain_timeout, problems)
        active_udp = int(soak.metric_sum(relay.metrics(), "tern_allocations_active", 'transport="udp"'))
        judge_accounting(relay.output(), upgraded, active_udp, problems)
        base, end, totals = soak.soak(args.load, relay, args.seconds, ALLOCATIONS, chunk=args.seconds / 2,
                                      warm_up=False)
        for what, name in (("fds", "descriptors"), ("handles", "libuv handles")):
            if base[what] != fresh[what]:
                problems.append(f"the hand-over left {name} behind: {fresh[what]} in the old process at its "
                                f"start, {base[what]} in the new one at rest")
        problems += [f"new process: {p}" for p in soak.judge(base, end, totals)]
        status = adopted.stop(signal.SIGINT, 20)
        if status != 0:
            problems.append(f"new process exited with status {status}")
    finally:
        if relay.process.poll() is None:
            relay.process.kill()
            relay.process.wait()
        if adopted is None:  # failed before it was known: the log may still name it
            m = re.search(r" upgraded pid=(\d+)", relay.output())
            adopted = Adopted(int(m.group(1))) if m else None
        if adopted is not None and adopted.stop(signal.SIGKILL, 5) is None:
            problems.append(f"new process {adopted.pid} did not end")
    if problems:
        print(relay.output()[-4000:])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tern", required=True)
    parser.add_argument("--load", required=True)
    parser.add_argument("--seconds", type=float, default=10, help="churn in the new process after its warm-up")
    parser.add_argument("--drain-timeout", type=int, default=15)
    args = parser.parse_args()
    become_subreaper()
    problems = []
    with tempfile.TemporaryDirectory(prefix="tern-upgrade-soak-") as workdir:
        run(args, workdir, problems)
    if problems:
        print("UPGRADE SOAK FAILED:\n  " + "\n  ".join(problems))
        return 1
    print("upgrade soak passed: nothing lost over the hand-over, every moved allocation accounted for, the new "
          "process back at its warm-up level")
    return 0


if __name__ == "__main__":
    sys.exit(main())
