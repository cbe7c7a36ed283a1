#!/usr/bin/env bash
# The README's second command, and what CI runs (.ci/run): install what is missing, build
# with AddressSanitizer + UndefinedBehaviorSanitizer, and run every test: unit, integration
# (real processes on loopback and in network namespaces: coturn's clients, python3-aioice,
# headless Chromium, Prometheus), deploy checks and the fuzz corpora replays. Then the
# release build of tern and its load generator (-O3 with -Werror, so optimiser-only warnings
# in the relay cannot slip through; its tests are built under the sanitizers only, to keep
# CI within its time) runs the soak tests, and a ThreadSanitizer build runs the integration
# tests again: every one of them starts a tern with two worker threads.
#
# Options (environment):
#   TERN_FUZZ_SECONDS=N   also run each libFuzzer target for N seconds (clang; off by default)
#   TERN_SOAK_SECONDS=N   length of the soak test (default 60; the upgrade soak's is fixed)
#   TERN_TSAN=0           skip the ThreadSanitizer stage
#   TERN_TEST_PRESET=P    build and test preset (default asan; debug, release or tsan); only
#                         that preset's tests run
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
  cmake --build --preset release --target tern tern-load
fi

# Sanitizer reports fail the run, wherever they come from: each process writes its report
# to a file in $reports (a tern that a test stops without checking its exit status cannot
# hide one), and any file there fails the run. Leak checking is on by default with ASan.
reports="$(mktemp -d -t tern-sanitizer-reports-XXXXXX)"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}:log_path=$reports/asan"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}:log_path=$reports/ubsan"
export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1}:log_path=$reports/tsan"
check_reports() {
  if compgen -G "$reports/*" >/dev/null; then
    echo "Sanitizer reports:" >&2
    for f in "$reports"/*; do echo "== $f" >&2; cat "$f" >&2; done
    exit 1
  fi
}
# Unit tests touch no shared port or file: each binary runs them all in one process, about
# 12 s under ASan where CTest's process per test (its "unit: ..." names, for a developer's
# -R) took over two minutes on 2 cores. The rest one at a time (real processes on loopback,
# timing-sensitive calls), but for the namespace labs below.
for unit_tests in tern_unit_tests tern_metrics_unit_tests; do
  timeout 600 "build/$preset/tests/$unit_tests"
done
# Tests that build their own network namespaces (named after their process) share no port,
# address or file with any other: two at a time, which saves minutes of their waiting on calls.
labs='^integration:.*(fast.path|NAT|three nodes|fleet)'
ctest --preset "$preset" --timeout 300 -LE soak -R "$labs" -j 2
ctest --preset "$preset" --timeout 300 -LE soak -E "^unit:|$labs"
check_reports

if [ "$preset" = asan ]; then
  # The soak tests judge memory by glibc's figures: they run from the release tree.
  ctest --preset release -L soak
  if [ "${TERN_TSAN:-1}" != 0 ]; then
    # Only tern is built with ThreadSanitizer: the integration tests are the ASan tree's,
    # pointed at this tern (TERN_TEST_BINARY). The threads under test are tern's; building
    # the tests a second time would cost minutes and check nothing more.
    cmake --preset tsan -DTERN_BUILD_TESTS=ON >/dev/null
    cmake --build --preset tsan --target tern
    # Left to ASan alone, to keep the run within 40 minutes: tests whose tern does nothing
    # across threads that the loopback tests do not do too. The fast path's lab (the kernel's
    # part is not TSan's to see), Chromium, hosts behind NATs and fleets in namespaces, and a
    # real Prometheus scraping.
    TERN_TEST_BINARY="$PWD/build/tsan/relay/app/tern" ctest --preset asan --timeout 300 -R '^integration:' \
      -E 'fast.path|Chromium|NAT|three nodes|fleet|Prometheus|public-node'
    check_reports
  fi
fi
rm -rf "$reports"

if [ "${TERN_FUZZ_SECONDS:-0}" -gt 0 ]; then
  bash tests/fuzz/run-fuzzers.sh "$TERN_FUZZ_SECONDS"
fi
