#!/usr/bin/env bash
# The README's first command: install what is missing, build tern (release), and run it on
# the ready default configuration deploy/tern.conf (loopback, port 3478). Ctrl-C stops it.
# Extra arguments go to `tern serve`, e.g. deploy/run-local.sh --log-level debug
set -euo pipefail
cd "$(dirname "$0")/.."

bash deploy/install-deps.sh build
cmake --preset release >/dev/null
cmake --build --preset release --target tern

tern=build/release/relay/app/tern
cat <<TXT

tern $("$tern" --version | cut -d' ' -f2) is starting with deploy/tern.conf:
  STUN/TURN on 127.0.0.1:3478 and [::1]:3478, UDP and TCP.
Try it from another terminal:
  $tern probe --server 127.0.0.1:3478
  $tern probe --server 127.0.0.1:3478 --tcp
  turnutils_stunclient -p 3478 127.0.0.1      (Debian package coturn)
Stop it with Ctrl-C.

TXT
exec "$tern" serve --config deploy/tern.conf "$@"
