#!/usr/bin/python3
"""Folds a fuzzing run's finds into the committed corpus and keeps it small (about 50 files).

For each target, tests/fuzz/corpus/<target>/ keeps every seed-*.bin (make_corpus.py) and
capture-*.bin (capture_seeds.py). Its other files (SHA-1 names) are replaced by a small set of
the old ones and of the run's scratch corpus (build/fuzz/corpus/<target>/, from
run-fuzzers.sh) that together cover every code edge (PC) any of them covers beyond the seeds
and captures. libFuzzer's own -merge=1 keeps too many files here (it adds inputs smallest
first, so many small ones each add an edge), so this script first lets it drop the inputs that
add no edge (-use_counters=0), then asks it for each remaining input's edges (its merge
control file) and picks greedily the input that adds the most, until none adds any or the
corpus has --max-files files (default 60). It prints how many PCs the cap leaves out: the
fuzzer finds those again quickly from the seeds.

    python3 tests/fuzz/merge_corpus.py [--max-files N] TARGET...

Needs the `fuzz` preset's binaries (build/fuzz/tests/fuzz/<target>); run it when no fuzzer
is running. Every libFuzzer process it starts is waited for.
"""
import argparse
import hashlib
import pathlib
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def libfuzzer_merge(binary, out, inputs, control=None, nice=10):
    """Runs `binary -merge=1 -use_counters=0 OUT INPUTS...`; returns the control file's text."""
    argv = ["nice", "-n", str(nice), str(binary), "-merge=1", "-use_counters=0"]
    if control is not None:
        # An existing control file would make libFuzzer resume an earlier merge.
        pathlib.Path(control).unlink(missing_ok=True)
        argv.append(f"-merge_control_file={control}")
    argv += [str(out)] + [str(i) for i in inputs]
    run = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if run.returncode != 0:
        sys.stderr.write(run.stderr.decode(errors="replace")[-2000:])
        raise RuntimeError(f"{binary.name}: merge failed")
    return pathlib.Path(control).read_text() if control is not None else ""


def edges(binary, directory, work):
    """Every PC the files of `directory` cover together (the union of the COV lines, which
    libFuzzer writes as what each file adds to those before it)."""
    out = work / "edges-out"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir()
    text = libfuzzer_merge(binary, out, [directory], control=work / "control")
    pcs = set()
    for line in text.splitlines():
        if line.startswith("COV "):
            pcs.update(int(x) for x in line.split()[2:])
    return pcs


def merge_target(target, fuzz_build, work, max_files):
    binary = fuzz_build / "tests" / "fuzz" / target
    corpus = HERE / "corpus" / target
    scratch = fuzz_build / "corpus" / target
    kept = work / "kept"
    candidates = work / "candidates"
    for d in (kept, candidates):
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
    found = []
    for f in sorted(corpus.iterdir()):
        if f.name.startswith(("seed-", "capture-")):
            shutil.copy(f, kept / f.name)
        elif not f.name.startswith("README"):
            found.append(f)
    # 1. libFuzzer drops the found inputs that add no edge to the seeds and captures.
    reduced = work / "reduced"
    shutil.rmtree(reduced, ignore_errors=True)
    shutil.copytree(kept, reduced)
    old_dir = work / "old"
    shutil.rmtree(old_dir, ignore_errors=True)
    old_dir.mkdir()
    for f in found:
        shutil.copy(f, old_dir / f.name)
    inputs = [old_dir] + ([scratch] if scratch.is_dir() else [])
    libfuzzer_merge(binary, reduced, inputs)
    for f in reduced.iterdir():
        if not (kept / f.name).exists():
            shutil.copy(f, candidates / f.name)
    # 2. Each candidate's edges beyond the seeds and captures, then a greedy set cover.
    base = edges(binary, kept, work)
    gains = {}
    single = work / "single"
    for f in sorted(candidates.iterdir()):
        shutil.rmtree(single, ignore_errors=True)
        single.mkdir()
        shutil.copy(f, single / f.name)
        gains[f] = edges(binary, single, work) - base
    chosen, covered, steps = [], set(), []
    room = max(0, max_files - len(list(kept.iterdir())))
    while len(chosen) < room:
        best = max(gains, key=lambda f: (len(gains[f] - covered), -f.stat().st_size), default=None)
        if best is None or not gains[best] - covered:
            break
        steps.append(len(gains[best] - covered))
        chosen.append(best)
        covered |= gains.pop(best)
    left_out = set().union(*gains.values()) - covered if gains else set()
    for f in found:
        f.unlink()
    for f in chosen:
        data = f.read_bytes()
        (corpus / hashlib.sha1(data).hexdigest()).write_bytes(data)
    print(f"{target}: {len(list(kept.iterdir()))} seeds and captures covering {len(base)} PCs; "
          f"{len(chosen)} found inputs (of {len(found)} committed, {len(gains) + len(chosen)} that add "
          f"edges) add {len(covered)} PCs; {len(left_out)} PCs left out by --max-files")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("targets", nargs="+")
    p.add_argument("--fuzz-build", default=str(ROOT / "build/fuzz"))
    p.add_argument("--max-files", type=int, default=60,
                   help="files per corpus at most, seeds and captures included (they always stay)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        for target in args.targets:
            merge_target(target, pathlib.Path(args.fuzz_build), pathlib.Path(tmp), args.max_files)


if __name__ == "__main__":
    main()
