#!/usr/bin/env bash
# A bad ctrl value is refused with a message naming the key and the value; a good one is taken.
source "$(dirname "$0")/lib.sh"
require_engine

# `openssl engine` reports a failed -pre command as "[Failure]: CMD" plus the error queue, and
# still exits 0, so the output is what is checked.
out=$(run "$OPENSSL" engine -pre QUEUE_DEPTH:abc simaccel 2>&1) || true
printf '%s\n' "$out"
grep -q '^\[Failure\]: QUEUE_DEPTH:abc' <<<"$out" || fail "QUEUE_DEPTH:abc was not refused"
grep -Eiq "(queue-depth|QUEUE_DEPTH).*abc" <<<"$(grep -v '^\[Failure\]' <<<"$out")" ||
    fail "the error does not name the key and the value"

out=$(run "$OPENSSL" engine -pre LATENCY:uniform:2ms simaccel 2>&1) || true
printf '%s\n' "$out"
grep -q '^\[Failure\]: LATENCY:uniform:2ms' <<<"$out" || fail "LATENCY:uniform:2ms (no D2) was not refused"

out=$(run "$OPENSSL" engine -pre QUEUE_DEPTH:64 -pre LATENCY:fixed:50us simaccel 2>&1) ||
    fail "openssl engine failed: $out"
printf '%s\n' "$out"
grep -q '^\[Success\]: QUEUE_DEPTH:64' <<<"$out" || fail "QUEUE_DEPTH:64 was refused"
grep -q '^\[Success\]: LATENCY:fixed:50us' <<<"$out" || fail "LATENCY:fixed:50us was refused"
say "ok"
