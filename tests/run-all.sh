#!/usr/bin/env bash
# The README's second command, and what CI runs (.ci/run): install what is missing, build
# with AddressSanitizer + UndefinedBehaviorSanitizer, and run every test: unit, integration
# (real processes on loopback: coturn's clients, python3-aioice, headless Chromium) and the
# fuzz corpora replays. The release
# build is compiled too, so optimiser-only warnings cannot slip through.
#
# Options (environment):
#   TERN_FUZZ_SECONDS=N   also run each libFuzzer target for N seconds (clang; off by default)
#   TERN_TEST_PRESET=P    build and test preset (default asan; debug, release or tsan)
set -euo pipefail
cd "$(dirname "$0")/.."
preset="${TERN_TEST_PRESET:-asan}"

bash deploy/install-deps.sh test
# playwright-core for the browser tests, exactly as locked (it drives /usr/bin/chromium and
# downloads no browser of its own).
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)
# The deploy checks' node tools, exactly as locked: dockerfile-utils (Dockerfile lint),
# kubernetes-models with its prometheus-operator models and TypeScript (manifest schemas).
(cd tests/deploy && npm ci --no-audit --no-fund --loglevel=error)

# Tests on explicitly: deploy/run-local.sh configures the release tree without them.
cmake --preset "$preset" -DTERN_BUILD_TESTS=ON >/dev/null
cmake --build --preset "$preset"
if [ "$preset" != release ]; then
  cmake --preset release -DTERN_BUILD_TESTS=ON >/dev/null
  cmake --build --preset release
fi

# Sanitizer reports fail the run; leak checking is on by default with ASan.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
ctest --preset "$preset" --timeout 300

if [ "${TERN_FUZZ_SECONDS:-0}" -gt 0 ]; then
  bash tests/fuzz/run-fuzzers.sh "$TERN_FUZZ_SECONDS"
fi
