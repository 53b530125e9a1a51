#!/usr/bin/env bash
# `openssl engine -vvv simaccel` lists every configuration key (docs/config.md), every device
# command (contract.md §13) and QAT_Engine's messages (docs/qat-compat.md) as a ctrl, each with a description.
source "$(dirname "$0")/lib.sh"
require_engine

out=$(run "$OPENSSL" engine -vvv simaccel 2>&1) || fail "openssl engine -vvv failed: $out"
printf '%s\n' "$out"

expected=(
    WORKERS INSTANCES QUEUE_DEPTH CAPACITY LATENCY
    LATENCY_RSA_PRIV LATENCY_RSA_PUB LATENCY_ECDSA_SIGN LATENCY_ECDSA_VERIFY LATENCY_ECDH
    LATENCY_X25519 LATENCY_X448 LATENCY_ED25519 LATENCY_ED448 LATENCY_NULL
    POLL_MODE OFFLOAD FAULT_BUSY FAULT_ERROR FAULT_STALL FAULT_CORRUPT FAULT_SEED
    VERIFY SW_FALLBACK MAX_RETRIES RESET_DOWNTIME STATS_FILE LOG COMPLETION_ENGINE
    GET_STATS RESET_STATS DEVICE_RESET GET_INFLIGHT_COUNT POLL_COUNT
    ENABLE_EXTERNAL_POLLING POLL SET_INSTANCE_FOR_THREAD GET_NUM_OP_RETRIES SET_MAX_RETRY_COUNT
    SET_INTERNAL_POLL_INTERVAL GET_EXTERNAL_POLLING_FD ENABLE_EVENT_DRIVEN_POLLING_MODE
    GET_NUM_CRYPTO_INSTANCES DISABLE_EVENT_DRIVEN_POLLING_MODE SET_EPOLL_TIMEOUT
    SET_CRYPTO_SMALL_PACKET_OFFLOAD_THRESHOLD ENABLE_INLINE_POLLING ENABLE_HEURISTIC_POLLING
    GET_NUM_REQUESTS_IN_FLIGHT INIT_ENGINE SET_CONFIGURATION_SECTION_NAME ENABLE_SW_FALLBACK
    HEARTBEAT_POLL DISABLE_QAT_OFFLOAD
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
for cmd in POLL POLL_COUNT RESET_STATS DEVICE_RESET GET_INFLIGHT_COUNT HEARTBEAT_POLL; do
    out=$(run "$OPENSSL" engine -pre "$cmd" simaccel 2>&1) || true
    grep -Fq "[Success]: $cmd" <<<"$out" || fail "openssl engine -pre $cmd did not succeed: $out"
done
say "ok: action commands succeed with no argument"
