#!/usr/bin/env bash
# Runs each libFuzzer target for N seconds (default 60) with the `fuzz` preset (clang), one at a
# time. New inputs go to a scratch corpus under build/fuzz/, never into the committed corpus;
# crash reproducers land in build/fuzz/artifacts/<target>/ and the script fails if there are
# any. Copy a reproducer into regressions/<target>/ once the bug is fixed.
#
#   bash tests/fuzz/run-fuzzers.sh [SECONDS] [TARGET...]
#
# With TERN_FUZZ_PLATEAU=P, SECONDS is a cap and each target stops earlier once libFuzzer's
# `cov:` has not grown for P seconds (a plateau); each run's log is kept in
# build/fuzz/logs/<target>.log and a summary line (seconds, executions, cov, ft) printed.
# TERN_FUZZ_NICE (default 10) is the niceness the fuzzers run at; TERN_FUZZ_JOBS the build's -j.
# To fold new inputs into the committed corpus (only those that add coverage, about 50 files):
#   python3 tests/fuzz/merge_corpus.py TARGET...
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(stun_message_fuzz stream_framer_fuzz channel_data_fuzz turn_server_fuzz oauth_token_fuzz
           rest_auth_fuzz allocation_snapshot_fuzz tcp_connection_snapshot_fuzz proxy_header_fuzz)
fi
plateau="${TERN_FUZZ_PLATEAU:-}"
niceness="${TERN_FUZZ_NICE:-10}"

cmake --preset fuzz >/dev/null
cmake --build build/fuzz --target "${targets[@]}" -j"${TERN_FUZZ_JOBS:-1}"

# The last `cov:` number libFuzzer printed to log $1, or 0.
last_cov() {
  grep -o 'cov: [0-9]*' "$1" 2>/dev/null | tail -n 1 | awk '{print $2}' || true
}

status=0
mkdir -p build/fuzz/logs
for t in "${targets[@]}"; do
  scratch="build/fuzz/corpus/$t"
  artifacts="build/fuzz/artifacts/$t"
  log="build/fuzz/logs/$t.log"
  mkdir -p "$scratch" "$artifacts"
  reproducers_before=$(find "$artifacts" -type f | wc -l)
  dict=()
  if [ -f "tests/fuzz/$t.dict" ]; then dict=(-dict="tests/fuzz/$t.dict"); fi
  echo "== $t: up to ${seconds}s${plateau:+, or until cov has not grown for ${plateau}s}"
  nice -n "$niceness" "build/fuzz/tests/fuzz/$t" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "${dict[@]}" \
      "$scratch" "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t" >"$log" 2>&1 &
  pid=$!
  start=$SECONDS
  if [ -n "$plateau" ]; then
    best=0
    since=$SECONDS
    while kill -0 "$pid" 2>/dev/null; do
      sleep 5
      cov=$(last_cov "$log")
      if [ "${cov:-0}" -gt "$best" ]; then
        best=$cov
        since=$SECONDS
      elif [ $((SECONDS - since)) -ge "$plateau" ]; then
        # SIGINT makes libFuzzer print its final stats and exit; only our own child is signalled.
        kill -INT "$pid" 2>/dev/null || true
        break
      fi
    done
  fi
  rc=0
  wait "$pid" || rc=$?
  elapsed=$((SECONDS - start))
  execs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$log" | awk '{print $2}' || true)
  ft=$(grep -o 'ft: [0-9]*' "$log" | tail -n 1 | awk '{print $2}' || true)
  echo "$t: ${elapsed}s, ${execs:-?} executions, cov $(last_cov "$log"), ft ${ft:-?}"
  # A failure leaves a reproducer; an interrupted run (our SIGINT) leaves none.
  if [ "$(find "$artifacts" -type f | wc -l)" -gt "$reproducers_before" ] ||
      { [ "$rc" -ne 0 ] && [ -z "$plateau" ]; }; then
    echo "!! $t failed; reproducers in $artifacts/, log in $log" >&2
    status=1
  fi
done
exit $status
