#!/usr/bin/python3
"""Checks deploy/systemd/ with systemd's own tools, offline (no running systemd needed).

  systemd-analyze verify       the unit alone and with each drop-in; any message fails,
                               since verify exits 0 even for unknown or misspelt keys.
                               ExecStart= names the built tern, so the check that the
                               binary exists and is executable means something.
  systemd-analyze security     --offline with a threshold: the unit's exposure score may
                               not rise above what it is now (1.2), so hardening cannot
                               silently go; with the privileged-ports drop-in, 1.7.
  systemd-sysusers --root      tern.sysusers creates the tern user and group.
  consistency                  TimeoutStopSec= above the example configuration's
                               drain-timeout, Type=notify, KillSignal=SIGTERM, ExecReload=
                               runs tern upgrade.
Before all that, it feeds itself a misspelt unit and an unhardened one and fails unless
both are refused, so a check that can no longer fail is caught.

usage: check_systemd.py --tern BUILT_TERN --systemd-dir deploy/systemd
"""
import argparse
import pathlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib

INSTALLED_TERN = "/usr/local/bin/tern"
# Exposure scores are tenths here: 12 is systemd-analyze's "1.2". Raise one only with a
# reason in the commit that does it.
THRESHOLD_UNIT = 12
THRESHOLD_PRIVILEGED_PORTS = 17
# Seconds between drain-timeout and TimeoutStopSec: the last allocations end, the workers
# join and the process exits after the drain deadline.
STOP_MARGIN_SECONDS = 30

problems: list[str] = []


def run(argv: list[str], cwd: pathlib.Path) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)


def stage(workdir: pathlib.Path, unit_text: str, tern: str, dropins: dict[str, str]) -> pathlib.Path:
    """Writes tern.service (and tern.service.d/) into a fresh directory under workdir."""
    d = pathlib.Path(tempfile.mkdtemp(dir=workdir))
    (d / "tern.service").write_text(unit_text.replace(INSTALLED_TERN, tern))
    if dropins:
        (d / "tern.service.d").mkdir()
        for name, text in dropins.items():
            (d / "tern.service.d" / name).write_text(text.replace(INSTALLED_TERN, tern))
    return d


def verify_messages(d: pathlib.Path) -> str:
    """Everything systemd-analyze verify says about the unit; empty when it is clean."""
    r = run(["systemd-analyze", "verify", "--man=no", "./tern.service"], d)
    out = (r.stdout + r.stderr).strip()
    if r.returncode != 0 and not out:
        out = f"systemd-analyze verify exited {r.returncode}"
    return out


def exposure_ok(d: pathlib.Path, threshold: int) -> tuple[bool, str]:
    r = run(["systemd-analyze", "security", "--offline=true", f"--threshold={threshold}",
             "./tern.service"], d)
    overall = [line for line in r.stdout.splitlines() if "Overall exposure" in line]
    return r.returncode == 0, (overall[-1].strip() if overall else r.stdout + r.stderr)


def unit_values(text: str, key: str) -> list[str]:
    return [m.group(1).strip() for m in re.finditer(rf"^{key}=(.*)$", text, re.MULTILINE)]


def check_self(workdir: pathlib.Path, unit: str, tern: str) -> None:
    """The checks must be able to fail: a misspelt key and a unit without hardening."""
    misspelt = stage(workdir, unit.replace("ProtectSystem=strict", "ProtectSystm=strict"), tern, {})
    if "Unknown key" not in verify_messages(misspelt):
        problems.append("self-check: verify did not report a misspelt key; the check is blind")
    hardening = re.compile(r"^(Protect|Private|Restrict|SystemCall|Capability|NoNewPriv|"
                           r"MemoryDeny|LockPersonality|RemoveIPC|UMask|ProcSubset)", re.MULTILINE)
    bare_text = "\n".join(line for line in unit.splitlines() if not hardening.match(line))
    bare = stage(workdir, bare_text, tern, {})
    ok, _ = exposure_ok(bare, THRESHOLD_UNIT)
    if ok:
        problems.append("self-check: a unit without hardening passed the exposure threshold")


def check_units(workdir: pathlib.Path, systemd_dir: pathlib.Path, unit: str, tern: str) -> None:
    dropins = {
        "privileged-ports.conf": (systemd_dir / "tern-privileged-ports.conf").read_text(),
        "credentials.conf": (systemd_dir / "tern-credentials.conf.example").read_text(),
        "fast-path.conf": (systemd_dir / "tern-fast-path.conf").read_text(),
    }
    for label, chosen in [("tern.service", {})] + [(f"tern.service + {n}", {n: t}) for n, t in dropins.items()]:
        messages = verify_messages(stage(workdir, unit, tern, chosen))
        if messages:
            problems.append(f"systemd-analyze verify {label}:\n{messages}")
        else:
            print(f"ok: systemd-analyze verify {label}")
    for label, chosen, threshold in [
        ("tern.service", {}, THRESHOLD_UNIT),
        ("tern.service + privileged-ports.conf",
         {"privileged-ports.conf": dropins["privileged-ports.conf"]}, THRESHOLD_PRIVILEGED_PORTS),
    ]:
        ok, overall = exposure_ok(stage(workdir, unit, tern, chosen), threshold)
        if ok:
            print(f"ok: {label}: {overall} (threshold {threshold / 10})")
        else:
            problems.append(f"{label}: exposure above {threshold / 10}: {overall}")


def check_sysusers(workdir: pathlib.Path, systemd_dir: pathlib.Path) -> None:
    root = workdir / "root"
    (root / "etc").mkdir(parents=True)
    r = run(["systemd-sysusers", f"--root={root}", str(systemd_dir / "tern.sysusers")], workdir)
    passwd = (root / "etc/passwd").read_text() if (root / "etc/passwd").exists() else ""
    if r.returncode != 0 or not re.search(r"^tern:x:\d+:\d+:", passwd, re.MULTILINE):
        problems.append(f"systemd-sysusers tern.sysusers made no tern user: {r.stderr.strip()}")
    else:
        print("ok: systemd-sysusers tern.sysusers creates user tern")


def check_consistency(systemd_dir: pathlib.Path, unit: str) -> None:
    def one(key: str) -> str:
        values = unit_values(unit, key)
        return values[-1] if values else ""

    stop = one("TimeoutStopSec")
    drain = int(tomllib.loads((systemd_dir / "public-node.conf").read_text()).get("drain-timeout", 600))
    if not stop.isdigit() or int(stop) < drain + STOP_MARGIN_SECONDS:
        problems.append(f"TimeoutStopSec={stop} must be at least drain-timeout ({drain}) + "
                        f"{STOP_MARGIN_SECONDS} s, or systemd kills the calls a drain protects")
    expected = {"Type": "notify", "KillSignal": "SIGTERM", "ExecReload": "/usr/local/bin/tern upgrade --metrics 127.0.0.1:9641 --admin-token-file /etc/tern/admin-token",
                "User": "tern", "NoNewPrivileges": "yes", "CapabilityBoundingSet": ""}
    for key, value in expected.items():
        if one(key) != value:
            problems.append(f"tern.service: expected {key}={value}, found {key}={one(key)}")
    if not problems:
        print(f"ok: TimeoutStopSec={stop} > drain-timeout {drain}; Type=notify; stop = SIGTERM; reload = tern upgrade")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tern", required=True, help="the built tern executable")
    parser.add_argument("--systemd-dir", required=True, type=pathlib.Path)
    args = parser.parse_args()
    # The checks run in scratch directories: absolute paths only.
    args.tern = str(pathlib.Path(args.tern).resolve())
    args.systemd_dir = args.systemd_dir.resolve()
    for tool in ("systemd-analyze", "systemd-sysusers"):
        if shutil.which(tool) is None:
            print(f"{tool} not found: run deploy/install-deps.sh test (Debian's systemd)")
            return 1
    unit = (args.systemd_dir / "tern.service").read_text()
    if INSTALLED_TERN not in unit:
        print(f"tern.service no longer runs {INSTALLED_TERN}: update this check")
        return 1
    with tempfile.TemporaryDirectory(prefix="tern-systemd-") as tmp:
        workdir = pathlib.Path(tmp)
        check_self(workdir, unit, args.tern)
        check_units(workdir, args.systemd_dir, unit, args.tern)
        check_sysusers(workdir, args.systemd_dir)
        check_consistency(args.systemd_dir, unit)
    for p in problems:
        print(f"FAIL: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
