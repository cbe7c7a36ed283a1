#!/usr/bin/python3
"""Checks deploy/docker/Dockerfile against the built tern, since no container engine runs here.

  runtime libraries   every shared library the built tern names in its NEEDED entries
                      (objdump -p) belongs to a Debian package (dpkg -S) that the runtime
                      stage's `apt-get install` line lists, or to libc6/libgcc-s1, which
                      every Debian image has. A library added to tern's link line without
                      its package in the image fails here, not at `docker run`.
  the stages          more than one stage; the last one runs as a non-root USER, has a
                      HEALTHCHECK, STOPSIGNAL SIGTERM, EXPOSEs 3478/udp, installs with
                      --no-install-recommends and removes the apt lists, copies the config
                      it names in CMD, and neither ARG nor ENV carries a secret.
  the build context   .dockerignore keeps build trees, node_modules, .git and key files out.
  the configuration   the image's tern.conf is checked with the others by check_configs.py.
Before all that, it drops one package from the install line and fails unless that is caught.

usage: check_docker.py --tern BUILT_TERN --dockerfile deploy/docker/Dockerfile --dockerignore .dockerignore
"""
import argparse
import os
import pathlib
import re
import shlex
import subprocess
import sys

# Every Debian image has these: libc6 is what every Essential package links, libgcc-s1 is
# libc6's own dependency.
IN_EVERY_IMAGE = {"libc6", "libgcc-s1"}
# Sanitizer runtimes: tests/run-all.sh tests an ASan+UBSan build, while the image builds
# the release preset, which links none of them.
SANITIZER_RUNTIME = re.compile(r"^lib(asan|ubsan|tsan|lsan|hwasan)\.so")
SECRET_NAMES = re.compile(r"(SECRET|PASSWORD|PASSWD|TOKEN|PRIVATE|_KEY\b|^KEY\b)", re.IGNORECASE)


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        word, _, rest = line.partition(" ")
        out.append((word.upper(), rest.strip()))
    return out


def stages(text: str) -> list[list[tuple[str, str]]]:
    result: list[list[tuple[str, str]]] = []
    for instruction in instructions(text):
        if instruction[0] == "FROM":
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


def installed_packages(stage: list[tuple[str, str]]) -> set[str]:
    packages: set[str] = set()
    for word, args in stage:
        if word != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", args):
            tokens = shlex.split(command)
            if "apt-get" in tokens and "install" in tokens:
                after = tokens[tokens.index("install") + 1:]
                packages |= {t.split("=")[0] for t in after if not t.startswith("-")}
    return packages


def needed_libraries(tern: str) -> list[str]:
    out = subprocess.run(["objdump", "-p", tern], capture_output=True, text=True, check=True).stdout
    return re.findall(r"^\s*NEEDED\s+(\S+)", out, re.MULTILINE)


def resolved_paths(tern: str) -> dict[str, str]:
    """soname -> the file the dynamic loader picks for it here (ldd)."""
    out = subprocess.run(["ldd", tern], capture_output=True, text=True, check=True).stdout
    return dict(re.findall(r"^\s*(\S+) => (/\S+)", out, re.MULTILINE))


def owning_package(path: str) -> str | None:
    """dpkg -S by the path dpkg registered: with merged /usr it may be /lib or /usr/lib."""
    real = os.path.realpath(path)
    candidates = []
    for p in (path, real):
        candidates += [p, p.removeprefix("/usr") if p.startswith("/usr/") else "/usr" + p]
    for candidate in dict.fromkeys(candidates):
        r = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True, check=False)
        if r.returncode == 0:
            return r.stdout.split(":")[0].strip()
    return None


def library_packages(tern: str) -> tuple[dict[str, str], list[str]]:
    owners: dict[str, str] = {}
    problems: list[str] = []
    paths = resolved_paths(tern)
    for soname in needed_libraries(tern):
        if SANITIZER_RUNTIME.match(soname):
            print(f"ok: {soname}: a sanitizer runtime, not in the release image")
            continue
        path = paths.get(soname)
        package = owning_package(path) if path else None
        if package is None:
            problems.append(f"{soname}: no Debian package owns it ({path}); an image could not install it")
        else:
            owners[soname] = package
    return owners, problems


def missing(owners: dict[str, str], listed: set[str]) -> list[str]:
    return [f"{soname} is in {package}, which the runtime stage does not install"
            for soname, package in owners.items() if package not in listed | IN_EVERY_IMAGE]


def check_stage(final: list[tuple[str, str]], dockerfile: pathlib.Path) -> list[str]:
    problems: list[str] = []
    words = [w for w, _ in final]
    user = [a for w, a in final if w == "USER"]
    if not user or user[-1].split(":")[0] in ("root", "0"):
        problems.append("the runtime stage must end with a non-root USER")
    if "HEALTHCHECK" not in words:
        problems.append("the runtime stage has no HEALTHCHECK")
    if ("STOPSIGNAL", "SIGTERM") not in final:
        problems.append("the runtime stage must say STOPSIGNAL SIGTERM (SIGTERM drains)")
    exposed = " ".join(a for w, a in final if w == "EXPOSE").split()
    if "3478/udp" not in exposed:
        problems.append("the runtime stage does not EXPOSE 3478/udp")
    for word, args in final:
        if word == "RUN" and "apt-get install" in args:
            if "--no-install-recommends" not in args:
                problems.append("apt-get install without --no-install-recommends")
            if "rm -rf /var/lib/apt/lists" not in args:
                problems.append("apt-get install whose RUN leaves /var/lib/apt/lists in the image")
        if word in ("ARG", "ENV") and SECRET_NAMES.search(args.split("=")[0].split(" ")[0]):
            problems.append(f"{word} {args}: secrets must not be baked into an image")
    cmd = " ".join(a for w, a in final if w == "CMD")
    config = re.search(r'"--config",\s*"([^"]+)"', cmd)
    copied = [a.split()[-1] for w, a in final if w == "COPY"]
    if config and config.group(1) not in copied:
        problems.append(f"CMD names {config.group(1)}, which no COPY puts into the image")
    for word, args in final:
        if word == "COPY" and "--from" not in args:
            source = args.split()[0]
            if not (dockerfile.parents[2] / source).exists():
                problems.append(f"COPY {source}: no such file in the repository")
    return problems


def check_dockerignore(path: pathlib.Path) -> list[str]:
    lines = {l.strip() for l in path.read_text().splitlines() if l.strip() and not l.startswith("#")}
    needed = {"build", ".git", "**/node_modules", "**/*.pem", "**/*.key"}
    return [f".dockerignore does not exclude {n}" for n in sorted(needed - lines)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tern", required=True)
    parser.add_argument("--dockerfile", required=True, type=pathlib.Path)
    parser.add_argument("--dockerignore", required=True, type=pathlib.Path)
    args = parser.parse_args()
    dockerfile = args.dockerfile.resolve()
    all_stages = stages(dockerfile.read_text())
    problems: list[str] = []
    if len(all_stages) < 2:
        problems.append("the Dockerfile must have a build stage and a runtime stage")
    final = all_stages[-1]
    listed = installed_packages(final)
    owners, lookup_problems = library_packages(args.tern)
    problems += lookup_problems
    # Self-check: without one of the packages tern needs, the check must complain.
    droppable = sorted(set(owners.values()) - IN_EVERY_IMAGE)
    if not droppable or not missing(owners, listed - {droppable[0]}):
        problems.append("self-check: dropping a needed package from the install line went unnoticed")
    problems += missing(owners, listed)
    problems += check_stage(final, dockerfile)
    problems += check_dockerignore(args.dockerignore)
    for p in problems:
        print(f"FAIL: {p}")
    if problems:
        return 1
    for soname, package in owners.items():
        print(f"ok: {soname} -> {package}" + (" (in every Debian image)" if package in IN_EVERY_IMAGE else ""))
    print(f"ok: runtime stage installs {' '.join(sorted(listed))}; non-root, HEALTHCHECK, STOPSIGNAL SIGTERM")
    return 0


if __name__ == "__main__":
    sys.exit(main())
