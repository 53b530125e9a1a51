#!/usr/bin/env bash
# `openssl engine -t -c simaccel` loads the engine from the build tree, shows its RSA method and
# reports it available (ENGINE_init starts the device).
source "$(dirname "$0")/lib.sh"
require_engine

# In a sanitizer build, check that the module really is instrumented (else the run checks nothing).
case ${SIMACCEL_SANITIZER_RT:-} in
*libasan*) sym=__asan_init ;;
*libtsan*) sym=__tsan_init ;;
*) sym= ;;
esac
if [[ -n $sym ]]; then
    nm -D "$OPENSSL_ENGINES/simaccel.so" | grep -w "$sym" >/dev/null || fail "engine not instrumented: no $sym"
    say "engine instrumented ($sym)"
fi

out=$(run "$OPENSSL" engine -t -c simaccel 2>&1) || fail "openssl engine failed: $out"
printf '%s\n' "$out"
grep -q '^(simaccel)' <<<"$out" || fail "no '(simaccel)' line"
# `-c` lists RSA/DSA/DH/RAND, ciphers, digests and pkey methods; the engine registers an
# EC_KEY_METHOD (not listed by the 3.x app) and deliberately no pkey methods (contract.md §10).
grep -Eq '^ \[(.*, )?RSA(, .*)?\]$' <<<"$out" || fail "capabilities do not list RSA"
grep -q '\[ available \]' <<<"$out" || fail "engine not '[ available ]'"
# (EC is exercised through the engine by pkeyutl.sh and tls.sh (argument engine), with stats.)
say "ok"
