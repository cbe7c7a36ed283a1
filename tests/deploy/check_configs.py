#!/usr/bin/python3
"""Loads every shipped tern configuration with the built tern, as `tern serve` would.

Each CONFIG is a tern.conf (TOML) or a Kubernetes workload manifest: then every container
that mounts a ConfigMap with a tern.conf (from that file or a sibling) is started the way
the pod would start it: with its args (each $(VAR) stood in for by a documentation
address), or by running its /bin/sh start script itself, with the per-node address map in
place, so the --external-ip the script assembles is checked too. Files the configuration
names (auth-secret-file, cert, key, oauth-key-file, admin-token-file) are stood in for by throwaway ones of
the right kind, since the real ones live on the production host or in a Secret. Then
    tern serve --config FILE --print-config [FLAGS]
must exit 0: every key known, every value valid, the files loadable. A configuration with
a misspelt key is tried first and must be refused, so a tern that accepts anything is
caught.

usage: check_configs.py --tern BUILT_TERN CONFIG [CONFIG ...]
"""
import argparse
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import tomllib

import yaml

FILE_KEYS = ("auth-secret-file", "cert", "key", "oauth-key-file", "admin-token-file")
# What a $(VAR) in a container's args stands for when the check runs.
ENV_STAND_INS = {"HOST_IP": "192.0.2.10", "POD_IP": "192.0.2.20", "NODE_NAME": "node-a",
                 "EXTERNAL_IP": "203.0.113.10"}


def stand_ins(workdir: pathlib.Path) -> dict[str, pathlib.Path]:
    secret = workdir / "auth-secret"
    secret.write_text("a-throwaway-secret-for-this-check\n")
    cert, key = workdir / "cert.pem", workdir / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                    "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=tern.test"],
                   check=True, capture_output=True)
    oauth = workdir / "oauth-keys"
    oauth.write_text("north " + "A" * 43 + "= A256GCM\n")
    admin = workdir / "admin-token"
    admin.write_text("a-throwaway-admin-token-for-this-check\n")
    return {"auth-secret-file": secret, "cert": cert, "key": key, "oauth-key-file": oauth,
            "admin-token-file": admin}


class Configuration:
    """One tern.conf and how it is started: plain, with flags, or by a container's script."""

    def __init__(self, label: str, text: str, flags: list[str] | None = None, script: str = "",
                 node_addresses: dict[str, str] | None = None):
        self.label, self.text, self.flags, self.script = label, text, flags or [], script
        self.node_addresses = node_addresses


def configurations(path: pathlib.Path) -> list[Configuration]:
    if path.suffix not in (".yaml", ".yml"):
        return [Configuration(f"{path.parent.name}/{path.name}", path.read_text())]
    docs = [d for d in yaml.safe_load_all(path.read_text()) if d]
    # The ConfigMaps a workload mounts may sit in a sibling file of the same directory.
    for sibling in sorted(path.parent.glob("*.yaml")):
        if sibling != path:
            docs += [d for d in yaml.safe_load_all(sibling.read_text()) if d and d.get("kind") == "ConfigMap"]
    maps = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "ConfigMap"}
    out = []
    for doc in docs:
        spec = (doc.get("spec") or {}).get("template", {}).get("spec")
        if not spec:
            continue
        mounted = {v["name"]: v["configMap"]["name"] for v in spec.get("volumes", []) if "configMap" in v}
        for container in spec.get("containers", []):
            names = [mounted[m["name"]] for m in container.get("volumeMounts", []) if m["name"] in mounted]
            confs = [(n, k, t) for n in names for k, t in (maps[n].get("data") or {}).items() if k.endswith(".conf")]
            addresses = next((maps[n]["data"] for n in names if n.endswith("node-addresses")), None)
            for name, key, text in confs:
                label = f"{path.parent.name}/{path.name}: {doc['kind']} {doc['metadata']['name']} with ConfigMap {name} {key}"
                command = container.get("command", [])
                if command[:2] in (["/bin/sh", "-c"], ["sh", "-c"]):
                    out.append(Configuration(label, text, script=command[2], node_addresses=addresses))
                else:
                    args = [re.sub(r"\$\((\w+)\)", lambda m: ENV_STAND_INS.get(m.group(1), m.group(0)), a)
                            for a in container.get("args", [])]
                    if args[:1] != ["serve"]:
                        raise SystemExit(f"{label}: the container does not run `tern serve`")
                    flags = args[1:]
                    if "--config" in flags:  # the check supplies its own copy
                        i = flags.index("--config")
                        del flags[i:i + 2]
                    out.append(Configuration(label, text, flags=flags))
    return out


def load(tern: str, c: Configuration, files: dict[str, pathlib.Path], workdir: pathlib.Path) -> tuple[bool, str]:
    text = c.text
    settings = tomllib.loads(text)
    for key in FILE_KEYS:
        values = settings.get(key)
        for value in ([values] if isinstance(values, str) else values or []):
            if value:
                text = text.replace(f'"{value}"', f'"{files[key]}"')
    stem = re.sub(r"\W+", "-", c.label)
    conf = workdir / (stem + ".conf")
    conf.write_text(text)
    if not c.script:
        argv = [tern, "serve", "--config", str(conf), "--print-config", *c.flags]
        r = subprocess.run(argv, capture_output=True, text=True, check=False)
        return r.returncode == 0, (r.stderr or r.stdout).strip()
    # A container's start script runs as it is, with the paths it reads moved here, the
    # downward API's variables stood in for, and --print-config added to its exec.
    env = {**os.environ, **ENV_STAND_INS}
    nodes = workdir / (stem + "-nodes")
    nodes.mkdir()
    expect = ""
    if c.node_addresses:
        env["NODE_NAME"] = next(iter(c.node_addresses))
        for node, address in c.node_addresses.items():
            (nodes / node).write_text(address)
        expect = f"{c.node_addresses[env['NODE_NAME']]}={env['HOST_IP']}"
    script = c.script
    for old, new in (("/etc/tern/config/tern.conf", str(conf)), ("/etc/tern/node-addresses", str(nodes)),
                     ('exec /usr/local/bin/tern "$@"', f'exec {tern} "$@" --print-config')):
        if old not in script:
            return False, f"the container's script no longer has {old!r}: update this check"
        script = script.replace(old, new)
    r = subprocess.run(["/bin/sh", "-c", script], capture_output=True, text=True, check=False, env=env)
    if r.returncode == 0 and expect and f'external-ip="{expect}"' not in r.stdout.replace(" ", ""):
        return False, f"the script did not pass --external-ip {expect}:\n{r.stdout}"
    return r.returncode == 0, (r.stderr or r.stdout).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tern", required=True)
    parser.add_argument("configs", nargs="+", type=pathlib.Path)
    args = parser.parse_args()
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="tern-configs-") as tmp:
        workdir = pathlib.Path(tmp)
        files = stand_ins(workdir)
        ok, _ = load(args.tern, Configuration("self-check", 'listen = ["127.0.0.1:3478"]\nrelay-portz = "1-2"\n'),
                     files, workdir)
        if ok:
            problems.append("self-check: tern accepted a misspelt key; the check is blind")
        for path in args.configs:
            found = configurations(path)
            if not found:
                problems.append(f"{path}: no tern configuration in it")
            for c in found:
                ok, output = load(args.tern, c, files, workdir)
                how = f" (with {' '.join(c.flags)})" if c.flags else " (through the container's script)" if c.script else ""
                if ok:
                    print(f"ok: {c.label}{how}")
                else:
                    problems.append(f"{c.label}: tern serve --print-config refused it:\n{output}")
    for p in problems:
        print(f"FAIL: {p}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
