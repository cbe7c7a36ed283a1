#!/usr/bin/python3
"""Builds the Debian package with cpack and installs it into a scratch root with real dpkg.

  name and fields   tern_<version>_<arch>.deb; Depends (from dpkg-shlibdeps) names the
                    libraries tern links; Section net.
  install           dpkg --root=SCRATCH --force-script-chrootless -i: the maintainer scripts
                    run on this host with DPKG_ROOT set, so they must honour it. Checks the
                    files and their modes, /etc/tern/tern.conf registered as a conffile, the
                    tern user made in the scratch root's /etc/passwd, /etc/tern root:tern
                    0750, tern.service not enabled, and that SCRATCH/usr/bin/tern --version
                    prints the project version.
  upgrade           the same package again: an operator's edit of the conffile stays.
  purge             dpkg --purge: the package's files and the conffile go, a secret the
                    operator put in /etc/tern stays, and dpkg knows the package no more.
  the host          /etc/passwd, /etc/group, the shadow files and this host's dpkg database
                    are byte for byte what they were: nothing escaped the scratch root.
Then it feeds the same checks a copy of the package without the unit and without its
conffiles list, and fails unless both are reported: a check that can no longer fail is
caught.

usage: check_deb.py [--cpack CPACK] --cpack-config BUILD/CPackConfig.cmake --version X.Y.Z
"""
import argparse
import hashlib
import pathlib
import re
import subprocess
import sys
import tempfile

# What tern links (relay/app/CMakeLists.txt, the top CMakeLists.txt), as Debian 12's
# packages name them; dpkg-shlibdeps must find each.
REQUIRED_DEPENDS = ["libuv1", "libssl3", "libprometheus-cpp-core", "libmicrohttpd12", "libbpf1"]
# Path in the package, mode. Directories the package and its postinst make are checked apart.
FILES = {
    "usr/bin/tern": 0o755,
    "usr/lib/systemd/system/tern.service": 0o644,
    "usr/lib/sysusers.d/tern.conf": 0o644,
    "etc/tern/tern.conf": 0o644,
    "usr/share/doc/tern/copyright": 0o644,
    "usr/share/doc/tern/examples/public-node.conf": 0o644,
    "usr/share/doc/tern/examples/tern-privileged-ports.conf": 0o644,
    "usr/share/doc/tern/examples/tern-fast-path.conf": 0o644,
    "usr/share/doc/tern/examples/tern-credentials.conf.example": 0o644,
    "usr/share/doc/tern/examples/90-tern.conf": 0o644,
}
CONFFILE = "/etc/tern/tern.conf"
# This host's files that a script escaping DPKG_ROOT would change.
HOST_FILES = ["/etc/passwd", "/etc/group", "/etc/shadow", "/etc/gshadow",
              "/var/lib/dpkg/status", "/var/log/dpkg.log"]


def run(argv: list[str], **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, check=False,
                          stdin=subprocess.DEVNULL, **kwargs)


def host_state() -> dict[str, str]:
    state = {}
    for name in HOST_FILES + ["/etc/tern"]:
        p = pathlib.Path(name)
        state[name] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else str(p.exists())
    return state


class Scratch:
    """A root with an empty dpkg database of its own, and dpkg run against it."""

    def __init__(self, parent: pathlib.Path):
        self.root = pathlib.Path(tempfile.mkdtemp(dir=parent, prefix="root-"))
        self.admin = self.root / "var/lib/dpkg"
        for d in ("info", "updates", "triggers"):
            (self.admin / d).mkdir(parents=True)
        (self.admin / "status").touch()

    def dpkg(self, *args: str) -> subprocess.CompletedProcess:
        # --force-depends: the scratch root has none of tern's libraries installed; this
        # host's do the work when tern runs from it. No prompt can hang: stdin is empty.
        # --force-unsafe-io: no fsync for a root that is thrown away.
        return run(["dpkg", f"--root={self.root}", f"--log={self.root}/dpkg.log",
                    "--force-script-chrootless", "--force-depends", "--force-unsafe-io", *args])

    def query(self, field: str) -> str:
        r = run(["dpkg-query", f"--admindir={self.admin}", "-W", f"-f=${{{field}}}", "tern"])
        return r.stdout if r.returncode == 0 else ""


def group_id(root: pathlib.Path, name: str) -> int | None:
    group = root / "etc/group"
    text = group.read_text() if group.exists() else ""
    m = re.search(rf"^{name}:[^:]*:(\d+):", text, re.MULTILINE)
    return int(m.group(1)) if m else None


def check_fields(deb: pathlib.Path, version: str, problems: list[str]) -> None:
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    if deb.name != f"tern_{version}_{arch}.deb":
        problems.append(f"package file {deb.name}, expected tern_{version}_{arch}.deb")
    fields = {f: run(["dpkg-deb", "-f", str(deb), f]).stdout.strip()
              for f in ("Package", "Version", "Depends", "Section", "Maintainer")}
    if fields["Package"] != "tern" or fields["Version"] != version or fields["Section"] != "net":
        problems.append(f"control fields: {fields}")
    depends = [d.split()[0] for d in fields["Depends"].split(",") if d.strip()]
    for lib in REQUIRED_DEPENDS:
        if not any(d.startswith(lib) for d in depends):
            problems.append(f"Depends does not name {lib}: {fields['Depends']}")


def check_installed(s: Scratch, version: str, problems: list[str]) -> None:
    for path, mode in FILES.items():
        p = s.root / path
        if not p.is_file():
            problems.append(f"not installed: /{path}")
        elif p.stat().st_mode & 0o7777 != mode:
            problems.append(f"/{path} has mode {p.stat().st_mode & 0o7777:o}, expected {mode:o}")
    unit = s.root / "usr/lib/systemd/system/tern.service"
    if unit.is_file() and "\nExecStart=/usr/bin/tern serve " not in unit.read_text():
        problems.append("the packaged unit's ExecStart= does not run /usr/bin/tern")
    conffiles = s.query("Conffiles").split()
    if CONFFILE not in conffiles:
        problems.append(f"{CONFFILE} is not a registered conffile: {conffiles}")
    if not s.query("Status").endswith("installed"):
        problems.append(f"dpkg status after install: {s.query('Status')}")
    # The postinst, with DPKG_ROOT: the user and /etc/tern's group in the scratch root.
    passwd = s.root / "etc/passwd"
    if not passwd.exists() or not re.search(r"^tern:x:\d+:\d+:", passwd.read_text(), re.MULTILINE):
        problems.append("postinst made no tern user in the scratch root's /etc/passwd")
    etc = (s.root / "etc/tern").stat()
    gid = group_id(s.root, "tern")
    if etc.st_mode & 0o7777 != 0o750 or etc.st_uid != 0 or etc.st_gid != gid:
        problems.append(f"/etc/tern is {etc.st_uid}:{etc.st_gid} {etc.st_mode & 0o7777:o}, "
                        f"expected 0:{gid} 750")
    # Enabled, tern would start at the next boot before the operator has put a secret in place.
    if (s.root / "etc/systemd/system/multi-user.target.wants/tern.service").exists():
        problems.append("the install enabled tern.service; it needs a secret first")
    tern = s.root / "usr/bin/tern"
    r = run([str(tern), "--version"]) if tern.is_file() else None
    if r is None or r.returncode != 0 or r.stdout.split() != ["tern", version]:
        problems.append(f"tern --version from the scratch root: {r and (r.stdout + r.stderr)!r}")


def check_upgrade_and_purge(s: Scratch, deb: pathlib.Path, problems: list[str]) -> None:
    conf = s.root / CONFFILE.lstrip("/")
    edit = "\n# an operator's edit\n"
    conf.write_text(conf.read_text() + edit)
    r = s.dpkg("-i", str(deb))
    if r.returncode != 0:
        problems.append(f"dpkg -i again failed:\n{r.stdout}{r.stderr}")
    elif not conf.read_text().endswith(edit):
        problems.append(f"installing again replaced the operator's edit of {CONFFILE}")
    secret = s.root / "etc/tern/auth-secret"
    secret.write_text("operator's secret\n")
    r = s.dpkg("--purge", "tern")
    if r.returncode != 0:
        problems.append(f"dpkg --purge failed: {r.stdout}{r.stderr}")
    left = [f"/{p}" for p in FILES if (s.root / p).exists()]
    if left:
        problems.append(f"left after purge: {left}")
    if not secret.exists():
        problems.append("purge deleted a secret the operator put in /etc/tern")
    if s.query("Status").endswith(" installed"):
        problems.append("dpkg still lists tern as installed after purge")


def check_package(deb: pathlib.Path, version: str, workdir: pathlib.Path) -> list[str]:
    problems: list[str] = []
    check_fields(deb, version, problems)
    s = Scratch(workdir)
    r = s.dpkg("-i", str(deb))
    if r.returncode != 0:
        return problems + [f"dpkg -i failed:\n{r.stdout}{r.stderr}"]
    check_installed(s, version, problems)
    check_upgrade_and_purge(s, deb, problems)
    return problems


def broken_copy(deb: pathlib.Path, workdir: pathlib.Path) -> pathlib.Path:
    """The package without the unit and without its conffiles list."""
    tree = workdir / "broken-tree"
    r = run(["dpkg-deb", "-R", str(deb), str(tree)])
    if r.returncode != 0:
        sys.exit(f"dpkg-deb -R: {r.stderr}")
    (tree / "usr/lib/systemd/system/tern.service").unlink(missing_ok=True)
    (tree / "DEBIAN/conffiles").unlink(missing_ok=True)
    out = workdir / "broken" / deb.name
    out.parent.mkdir()
    # Fast compression: xz, dpkg-deb's default, takes seconds on a sanitizer build's tern.
    r = run(["dpkg-deb", "--root-owner-group", "-Zgzip", "-z1", "-b", str(tree), str(out)])
    if r.returncode != 0:
        sys.exit(f"dpkg-deb -b: {r.stderr}")
    return out


def build_package(cpack: str, cpack_config: pathlib.Path, workdir: pathlib.Path) -> pathlib.Path:
    out = workdir / "package"
    r = run([cpack, "-G", "DEB", "--config", str(cpack_config), "-B", str(out)])
    debs = sorted(out.glob("*.deb"))
    if r.returncode != 0 or len(debs) != 1:
        sys.exit(f"cpack made no single package:\n{r.stdout}{r.stderr}")
    return debs[0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cpack", default="cpack", help="CMake's cpack, the build tree's own")
    parser.add_argument("--cpack-config", required=True, type=pathlib.Path)
    parser.add_argument("--version", required=True)
    args = parser.parse_args()
    before = host_state()
    with tempfile.TemporaryDirectory(prefix="tern-deb-") as tmp:
        workdir = pathlib.Path(tmp)
        deb = build_package(args.cpack, args.cpack_config.resolve(), workdir)
        problems = check_package(deb, args.version, workdir)
        blind = check_package(broken_copy(deb, workdir), args.version, workdir)
        for expected in ("not installed: /usr/lib/systemd/system/tern.service",
                         f"{CONFFILE} is not a registered conffile"):
            if not any(p.startswith(expected) for p in blind):
                problems.append(f"self-check: a package without it passed: {expected}")
    after = host_state()
    problems += [f"this host's {name} changed while the package was installed in a scratch root"
                 for name in before if before[name] != after[name]]
    for p in problems:
        print(f"FAIL: {p}", file=sys.stderr)
    if not problems:
        print(f"ok: {deb.name} installs, upgrades and purges in a scratch root; "
              f"tern --version says {args.version}; this host untouched")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
