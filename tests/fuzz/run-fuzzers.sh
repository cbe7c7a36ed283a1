#!/usr/bin/env bash
# Runs each libFuzzer target for N seconds (default 60) with the `fuzz` preset (clang). New
# inputs go to a scratch corpus under build/fuzz/, never into the committed corpus; crash
# reproducers land in build/fuzz/artifacts/<target>/ and the script fails if there are any.
# Copy a reproducer into regressions/<target>/ once the bug is fixed.
#
#   bash tests/fuzz/run-fuzzers.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(stun_message_fuzz stream_framer_fuzz channel_data_fuzz turn_server_fuzz oauth_token_fuzz
           rest_auth_fuzz)
fi

cmake --preset fuzz >/dev/null
cmake --build build/fuzz --target "${targets[@]}" -j"${TERN_FUZZ_JOBS:-1}"

status=0
for t in "${targets[@]}"; do
  scratch="build/fuzz/corpus/$t"
  artifacts="build/fuzz/artifacts/$t"
  mkdir -p "$scratch" "$artifacts"
  dict=()
  if [ -f "tests/fuzz/$t.dict" ]; then dict=(-dict="tests/fuzz/$t.dict"); fi
  echo "== $t: ${seconds}s"
  if ! "build/fuzz/tests/fuzz/$t" -max_total_time="$seconds" -print_final_stats=1 \
      -artifact_prefix="$artifacts/" "${dict[@]}" \
      "$scratch" "tests/fuzz/corpus/$t" "tests/fuzz/regressions/$t"; then
    echo "!! $t failed; reproducers in $artifacts/" >&2
    status=1
  fi
done
exit $status
