#!/usr/bin/env bash
# The README's first command: install what is missing, build tern (release), and run it on
# the ready default configuration deploy/tern.conf (loopback, port 3478) with a TURN REST
# secret generated once into build/local-secret and an admin token (for `tern drain`) into
# build/local-admin-token beside it. Ctrl-C stops it.
# Extra arguments go to `tern serve`, e.g. deploy/run-local.sh --log-level debug
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh build
# Only the relay: the test tools (coturn, prometheus, ...) come with deploy/install-deps.sh test.
cmake --preset release -DTERN_BUILD_TESTS=OFF >/dev/null
cmake --build --preset release --target tern

tern=build/release/relay/app/tern
secret=build/local-secret
if [ ! -s "$secret" ]; then
  (umask 077 && head -c 24 /dev/urandom | base64 > "$secret")
fi
admin_token=build/local-admin-token
if [ ! -s "$admin_token" ]; then
  (umask 077 && head -c 32 /dev/urandom | base64 > "$admin_token")
fi

cat <<TXT

tern $("$tern" --version | cut -d' ' -f2) is starting with deploy/tern.conf:
  STUN/TURN on 127.0.0.1:3478 and [::1]:3478, UDP and TCP; relaying on loopback;
  metrics, health and readiness on http://127.0.0.1:9641 (/metrics /healthz /readyz).
Try it from another terminal:
  $tern probe --server 127.0.0.1:3478                  # STUN Binding
  $tern token --secret-file $secret --user demo        # TURN credentials + iceServers JSON
  turnutils_peer -L 127.0.0.2 -p 3480 &                # an echo peer (Debian package coturn)
  turnutils_uclient -W \$(cat $secret) -u demo -e 127.0.0.2 -r 3480 -n 100 127.0.0.1
  curl -s 127.0.0.1:9641/metrics | grep ^tern_allocations      # Prometheus metrics
  curl -s 127.0.0.1:9641/readyz                                # readiness (also /healthz)
Reload the configuration with SIGHUP (kill -HUP <pid>); drain with SIGTERM or
  $tern drain --admin-token-file $admin_token --wait
Stop at once with Ctrl-C.

TXT
exec "$tern" serve --config deploy/tern.conf --auth-secret-file "$secret" --admin-token-file "$admin_token" "$@"
