#!/usr/bin/python3
"""Checks deploy/sysctl/90-tern.conf without applying it (applying would change this host).

Every line is `KEY = VALUE` or `-KEY = VALUE` (sysctl.d(5)); every key without "-" exists
on this kernel (/proc/sys), so a misspelt key cannot sit there doing nothing; values are
integers; and the ephemeral port range ends below the relay range of every tern
configuration given, which is the point of setting it.

usage: check_sysctl.py 90-tern.conf --relay-ports-of CONFIG [--relay-ports-of CONFIG ...]
A CONFIG is a tern.conf (TOML) or a Kubernetes YAML file whose ConfigMap holds one.
"""
import argparse
import pathlib
import re
import sys
import tomllib

import yaml


def parse(name: str, text: str) -> tuple[dict[str, str], list[str]]:
    settings: dict[str, str] = {}
    problems: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        m = re.fullmatch(r"(-?)([a-z][a-z0-9_.-]*)\s*=\s*(.+)", line)
        if not m:
            problems.append(f"{name}:{number}: not KEY = VALUE: {raw}")
            continue
        optional, key, value = m.groups()
        if not all(part.isdigit() for part in value.split()):
            problems.append(f"{name}:{number}: {key}: not integers: {value}")
        if not optional and not pathlib.Path("/proc/sys", *key.split(".")).exists():
            problems.append(f"{name}:{number}: {key} does not exist on this kernel "
                            "(misspelt? prefix it with '-' if it belongs to a module)")
        settings[key] = value
    return settings, problems


def relay_ports(path: pathlib.Path) -> list[tuple[str, int]]:
    """(where, lowest relay port) for the tern configuration(s) in a file."""
    texts: list[tuple[str, str]] = []
    if path.suffix in (".yaml", ".yml"):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "ConfigMap":
                for name, text in (doc.get("data") or {}).items():
                    if name.endswith(".conf"):
                        texts.append((f"{path.name}: ConfigMap {doc['metadata']['name']} {name}", text))
    else:
        texts.append((path.name, path.read_text()))
    out = []
    for where, text in texts:
        ports = tomllib.loads(text).get("relay-ports", "49152-65535")  # tern's default
        out.append((where, int(ports.split("-")[0])))
    return out


def check(name: str, text: str, configs: list[tuple[str, int]], quiet: bool = False) -> list[str]:
    settings, problems = parse(name, text)
    port_range = settings.get("net.ipv4.ip_local_port_range", "")
    if len(port_range.split()) != 2:
        problems.append("net.ipv4.ip_local_port_range must be set, as two ports")
        return problems
    low, high = (int(p) for p in port_range.split())
    if low >= high:
        problems.append(f"ip_local_port_range {low} {high}: the first port must be the lower")
    if not configs:
        problems.append("no tern configuration to compare the port range with")
    for where, first_relay_port in configs:
        if high >= first_relay_port:
            problems.append(f"ephemeral ports end at {high}, inside the relay range of {where} "
                            f"(from {first_relay_port})")
        elif not quiet:
            print(f"ok: ephemeral ports {low}-{high} end below the relay ports of {where} ({first_relay_port}-)")
    if not problems and not quiet:
        print(f"ok: {name}: {len(settings)} settings, every key exists or is optional")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sysctl_conf", type=pathlib.Path)
    parser.add_argument("--relay-ports-of", type=pathlib.Path, action="append", default=[])
    args = parser.parse_args()
    text = args.sysctl_conf.read_text()
    configs = [c for path in args.relay_ports_of for c in relay_ports(path)]
    # The check must be able to fail: a misspelt key and Linux's default port range must
    # each be caught.
    broken = re.sub(r"^net\.core\.somaxconn", "net.core.somaxcon", text, flags=re.MULTILINE)
    broken = re.sub(r"^net\.ipv4\.ip_local_port_range = .*$", "net.ipv4.ip_local_port_range = 32768 60999",
                    broken, flags=re.MULTILINE)
    caught = check("broken copy", broken, configs, quiet=True)
    problems = []
    if not any("somaxcon " in p for p in caught) or not any("inside the relay range" in p for p in caught):
        problems.append(f"self-check: a misspelt key or an overlapping range went unnoticed: {caught}")
    problems += check(args.sysctl_conf.name, text, configs)
    for problem in problems:
        print(f"FAIL: {problem}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
