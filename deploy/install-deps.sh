#!/usr/bin/env bash
# Installs what tern needs from Debian 12's packages. Used by deploy/run-local.sh (build
# only) and tests/run-all.sh (build + test tools). Installs nothing that is already there.
#   deploy/install-deps.sh build   compilers, CMake, libuv, OpenSSL, prometheus-cpp,
#                                  libmicrohttpd (the HTTP port), CLI11, libbpf, clang and
#                                  bpftool (the fast path's eBPF program)
#   deploy/install-deps.sh test    the above plus doctest, coturn's test clients, clang,
#                                  Prometheus (promtool checks the alert rules and dashboard)
#                                  and the tools that check the rest of deploy/
set -euo pipefail

# libbpf-dev, clang and bpftool build the kernel fast path's eBPF program and its skeleton
# (issue 21); linux-libc-dev brings the kernel's uapi headers it is compiled against.
# libhiredis-dev is the Redis client of the fleet state (--redis, issue 22): the maintained
# C client, Debian's, with the asynchronous API tern drives from its event loop.
want=(build-essential cmake ninja-build pkg-config libuv1-dev libssl-dev prometheus-cpp-dev
      libmicrohttpd-dev libcli11-dev doctest-dev libbpf-dev clang bpftool linux-libc-dev libhiredis-dev)
if [ "${1:-build}" = test ]; then
  # coturn brings turnutils_stunclient/uclient/peer and python3-aioice a Python TURN client:
  # the third-party clients the tests drive;
  # clang builds the libFuzzer targets when a fuzz run is asked for.
  # chromium (Debian's, driven by playwright-core from npm) runs the WebRTC tests; nodejs
  # and npm only when the machine has no node of its own.
  # libnss3-tools' certutil makes Chromium trust the test CA for turns: tests.
  # prometheus brings promtool, which loads deploy/prometheus/ and the dashboard's queries
  # with Prometheus's own parser, and the server for tests that scrape a live tern.
  # iproute2 and iptables build the network namespaces of the NAT and fleet tests (hosts
  # behind NATs, nodes on a "public" network); ethtool turns checksum offloads off on the
  # eBPF fast path tests' veths, so their receivers verify what the relay's program wrote.
  # systemd brings systemd-analyze and systemd-sysusers, which check deploy/systemd/ offline
  # (a container may lack the package); yamllint lints every YAML file under deploy/;
  # python3-yaml reads the Kubernetes manifests; openssl makes a throwaway certificate so
  # the example configurations load as tern would load them.
  # ethtool turns checksum offload off on the veth ends of bench/compare.py --topology veth.
  # strace makes a new process's hand-over fail after the freeze (fast_path_upgrade_test.cpp).
  # redis-server is the real Redis the fleet tests start on loopback (issue 22).
  # haproxy is the real load balancer in front of tern in the PROXY protocol tests
  # (proxy_protocol_test.cpp); they run their own haproxy -db, never the package's service.
  want+=(coturn clang python3-aioice chromium libnss3-tools prometheus iproute2 iptables
         ethtool systemd yamllint python3-yaml openssl strace redis-server haproxy)
  command -v node >/dev/null 2>&1 || want+=(nodejs npm)
fi

missing=()
for p in "${want[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "Installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq

# The coturn package would start its own turnserver daemon, the prometheus package a
# system Prometheus on port 9090, haproxy and redis-server their services; the tests need
# only their programs and start their own
# processes. A policy-rc.d that answers 101 stops package scripts from starting services; it
# is removed again unless it was there before. Should a daemon get started anyway (the
# machine has a policy-rc.d of its own that allows it), it is left running: this script
# stops nothing.
policy=/usr/sbin/policy-rc.d
added_policy=0
if [[ " ${missing[*]} " == *" coturn "* || " ${missing[*]} " == *" prometheus "* ||
      " ${missing[*]} " == *" haproxy "* || " ${missing[*]} " == *" redis-server "* ]] &&
   [ ! -e "$policy" ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
  $sudo chmod +x "$policy"
  added_policy=1
fi
cleanup() { [ "$added_policy" = 1 ] && $sudo rm -f "$policy"; return 0; }
trap cleanup EXIT
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
