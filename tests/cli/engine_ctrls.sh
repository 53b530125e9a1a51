#!/usr/bin/env bash
# `openssl engine -vvv simaccel` lists every configuration key (DESIGN.md §3) and every device
# command (§4) as a ctrl, each with a description.
source "$(dirname "$0")/lib.sh"
require_engine

out=$(run "$OPENSSL" engine -vvv simaccel 2>&1) || fail "openssl engine -vvv failed: $out"
printf '%s\n' "$out"

expected=(
    WORKERS INSTANCES QUEUE_DEPTH CAPACITY LATENCY
    LATENCY_RSA_PRIV LATENCY_RSA_PUB LATENCY_ECDSA_SIGN LATENCY_ECDSA_VERIFY LATENCY_ECDH
    LATENCY_X25519 LATENCY_X448 LATENCY_ED25519 LATENCY_ED448 LATENCY_NULL
    POLL_MODE OFFLOAD FAULT_BUSY FAULT_ERROR FAULT_STALL FAULT_CORRUPT FAULT_SEED
    VERIFY SW_FALLBACK MAX_RETRIES RESET_DOWNTIME STATS_FILE LOG
    POLL GET_STATS RESET_STATS DEVICE_RESET GET_NUM_REQUESTS_IN_FLIGHT
)
missing=()
for cmd in "${expected[@]}"; do
    # util_verbose prints "<indent>NAME: description".
    grep -Eq "^[[:space:]]+$cmd: [^[:space:]]" <<<"$out" || missing+=("$cmd")
done
((${#missing[@]} == 0)) || fail "ctrls missing or without a description: ${missing[*]}"

# Every listed command, including any not named above, carries a real description.
if grep -E '^[[:space:]]+[A-Z0-9_]+: <no description>' <<<"$out"; then
    fail "commands without a description"
fi
n=$(grep -Ec '^[[:space:]]+[A-Z0-9_]+: ' <<<"$out")
say "ok: $n commands, all described"

# The action commands succeed from the command line, where p is NULL: a count of 0 (nothing to
# poll, nothing in flight) is an answer, not a failure.
for cmd in POLL RESET_STATS DEVICE_RESET GET_NUM_REQUESTS_IN_FLIGHT; do
    out=$(run "$OPENSSL" engine -pre "$cmd" simaccel 2>&1) || true
    grep -Fq "[Success]: $cmd" <<<"$out" || fail "openssl engine -pre $cmd did not succeed: $out"
done
say "ok: action commands succeed with no argument"
