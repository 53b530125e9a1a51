#!/usr/bin/env bash
# Installs, with apt-get, everything simaccel's build, tests, benchmarks and demo need.
# Idempotent and quiet: packages already present are skipped, and apt-get runs (update once,
# then install) only when something is missing. Debian 12 / Ubuntu 22.04+.
set -euo pipefail

PACKAGES=(
    build-essential cmake ninja-build pkg-config
    libssl-dev openssl libssl-doc
    liburing-dev
    libgtest-dev googletest libgmock-dev libbenchmark-dev
    python3                       # JSON checks in the CLI tests and scripts
    haproxy nginx nghttp2-client  # interop tests and benchmarks (h2load is in nghttp2-client)
    trafficserver                 # tests/servers/trafficserver.sh (async TLS handshakes)
    gnuplot-nox                   # bench plots
    clang                         # fuzzing (libFuzzer)
    dpkg-dev debian-archive-keyring  # scripts/test-openssl.sh: Debian's OpenSSL source packages
)

installed() {
    [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

missing=()
for p in "${PACKAGES[@]}"; do
    installed "$p" || missing+=("$p")
done
if ((${#missing[@]} == 0)); then
    exit 0
fi

SUDO=()
if ((EUID != 0)); then
    command -v sudo >/dev/null || {
        echo "install-deps: missing packages (${missing[*]}) and not root, no sudo" >&2
        exit 1
    }
    SUDO=(sudo)
fi

echo "install-deps: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Installing nginx/haproxy/trafficserver must not start their services (port 80, no init in containers):
# a policy-rc.d that answers 101 ("action forbidden") stops invoke-rc.d, and only for the
# duration of this install.
policy=/usr/sbin/policy-rc.d
created_policy=0
if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$policy" >/dev/null
    "${SUDO[@]}" chmod 755 "$policy"
    created_policy=1
fi
cleanup() { if ((created_policy)); then "${SUDO[@]}" rm -f "$policy"; fi; }
trap cleanup EXIT

"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}" >/dev/null
echo "install-deps: done"
