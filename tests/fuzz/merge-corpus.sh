#!/usr/bin/env bash
# Folds a fuzzing run's finds into the committed corpus, keeping it small. For each target,
# tests/fuzz/corpus/<target>/ keeps every seed-*.bin (make_corpus.py) and capture-*.bin
# (capture_seeds.py); its other files (SHA-1 names) are replaced by those of the old ones and of
# the run's scratch corpus (build/fuzz/corpus/<target>/, from run-fuzzers.sh) that add edges
# to the seeds and captures. libFuzzer's -merge=1 picks them; -use_counters=0 counts edges but
# not their hit counts, which keeps each corpus near 50 files. Run it when no fuzzer is running.
#
#   bash tests/fuzz/merge-corpus.sh TARGET...
set -euo pipefail
cd "$(dirname "$0")/../.."
if [ $# -eq 0 ]; then
  echo "usage: $0 TARGET..." >&2
  exit 2
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

for t in "$@"; do
  corpus="tests/fuzz/corpus/$t"
  scratch="build/fuzz/corpus/$t"
  rm -rf "$work/merged" "$work/old"
  mkdir -p "$work/merged" "$work/old" "$scratch"
  for f in "$corpus"/*; do
    case "$(basename "$f")" in
      seed-*|capture-*) cp "$f" "$work/merged/" ;;
      README*) ;;
      *) cp "$f" "$work/old/" ;;
    esac
  done
  kept=$(find "$work/merged" -type f | wc -l)
  nice -n "${TERN_FUZZ_NICE:-10}" "build/fuzz/tests/fuzz/$t" -merge=1 -use_counters=0 \
      "$work/merged" "$work/old" "$scratch" >"$work/merge.log" 2>&1 ||
    { cat "$work/merge.log" >&2; exit 1; }
  find "$corpus" -maxdepth 1 -type f ! -name 'seed-*' ! -name 'capture-*' ! -name 'README*' -delete
  for f in "$work/merged"/*; do
    case "$(basename "$f")" in
      seed-*|capture-*) ;;
      *) cp "$f" "$corpus/" ;;
    esac
  done
  echo "$t: $kept seeds and captures + $(( $(find "$work/merged" -type f | wc -l) - kept )) found inputs"
done
