#!/usr/bin/env bash
# `openssl list` with conf/simaccel-provider.cnf shows the simaccel provider active next to the
# default provider, and simaccel's signature, key exchange and RSA decryption algorithms.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/frontend_lib.sh"
require_provider

out=$(prov list -providers) || fail "openssl list -providers failed"
printf '%s\n' "$out" >&2
# Each provider is a block: "  <id>" then indented "name:", "version:", "status:" lines.
block=$(awk '/^  [^ ]/ { cur = $1 } cur == "simaccel" { print }' <<<"$out")
[[ -n $block ]] || fail "simaccel is not among the loaded providers"
grep -Eq '^ +status: active$' <<<"$block" || fail "simaccel is loaded but not active"
grep -Eq '^ +version: [0-9]' <<<"$block" || fail "simaccel reports no version"
awk '/^  [^ ]/ { cur = $1 } cur == "default" && /status: active/ { ok = 1 } END { exit !ok }' \
    <<<"$out" || fail "the default provider is not active next to simaccel"

# The offloaded algorithms are fetched from simaccel ("@ simaccel" in `openssl list`).
sigs=$(prov list -signature-algorithms) || fail "list -signature-algorithms failed"
for alg in RSA ECDSA ED25519 ED448; do
    grep -Eiq "[{ ,]${alg}[ ,}].*@ simaccel" <<<"$sigs" || fail "signature $alg is not offered by simaccel"
done
kex=$(prov list -key-exchange-algorithms) || fail "list -key-exchange-algorithms failed"
for alg in ECDH X25519 X448; do
    grep -Eiq "[{ ,]${alg}[ ,}].*@ simaccel" <<<"$kex" || fail "key exchange $alg is not offered by simaccel"
done
asym=$(prov list -asymcipher-algorithms) || fail "list -asymcipher-algorithms failed"
grep -Eiq '[{ ,]RSA[ ,}].*@ simaccel' <<<"$asym" || fail "RSA decryption is not offered by simaccel"

# Without the configuration, nothing of simaccel is loaded.
# (stdout only: the logged command line may contain "simaccel" in a path.)
out=$(plain list -providers) || fail "plain openssl list -providers failed"
printf '%s\n' "$out" >&2
grep -Eq '^ +simaccel$|name: simaccel' <<<"$out" && fail "simaccel loaded without the configuration"
say "ok"
