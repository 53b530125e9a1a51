#!/usr/bin/env bash
# Proves that a sanitizer build is what it claims: every module and test executable references
# the runtime's init symbol (__asan_init or __tsan_init) and needs the runtime library, and the
# wrappers on PATH preload exactly that runtime into the uninstrumented programs.
# Usage: check_linked.sh address|thread BUILD_DIR
set -euo pipefail
kind=$1 build=$2
NM=${NM:-nm}
READELF=${READELF:-readelf}
case $kind in
address) sym=__asan_init lib=libasan.so ;;
thread) sym=__tsan_init lib=libtsan.so ;;
*) echo "unknown sanitizer '$kind'" >&2; exit 1 ;;
esac

fails=0
checked=0
check_elf() {
    local f=$1
    # Captured first: `nm | grep -q` would fail under pipefail when grep stops reading early.
    local syms needed
    syms=$("$NM" -D "$f" 2>/dev/null || true)
    needed=$("$READELF" -d "$f" 2>/dev/null || true)
    if ! grep -qw "$sym" <<<"$syms"; then
        echo "FAIL: $f does not reference $sym" >&2
        fails=$((fails + 1))
    elif ! grep -q "NEEDED.*\\[$lib" <<<"$needed"; then
        echo "FAIL: $f does not need $lib" >&2
        fails=$((fails + 1))
    fi
    checked=$((checked + 1))
}

# The modules: without them nothing below means anything.
for f in "$build"/lib/libsimaccel-core.so.0 "$build"/engines-3/simaccel.so "$build"/ossl-modules/simaccel.so; do
    if [[ -e $f ]]; then
        check_elf "$(readlink -f "$f")"
    elif [[ $f == */engines-3/* || $f == */libsimaccel-core.so.0 ]]; then
        echo "FAIL: $f was not built" >&2
        fails=$((fails + 1))
    fi
done
# Every ELF executable under tests/ (gtest binaries, stress, fork, teardown ...).
while IFS= read -r -d '' f; do
    head -c 4 "$f" | grep -q $'\x7fELF' || continue
    check_elf "$f"
done < <(find "$build/tests" -type f -perm -u+x ! -name '*.sh' ! -name '*.cmake' -print0)

# The wrappers: what `haproxy`, `nginx` and `openssl` resolve to in the tests.
rt=${SIMACCEL_SANITIZER_RT:?SIMACCEL_SANITIZER_RT unset: not run through ctest?}
[[ $rt == */$lib* ]] || { echo "FAIL: runtime $rt is not $lib" >&2; fails=$((fails + 1)); }
for prog in openssl haproxy nginx; do
    w=$(command -v "$prog" || true)
    [[ -n $w ]] || continue
    if [[ $w != "$build/sanitizer-bin/$prog" ]]; then
        echo "FAIL: $prog resolves to $w, not the wrapper in $build/sanitizer-bin" >&2
        fails=$((fails + 1))
    elif ! grep -q "LD_PRELOAD=\"$rt" "$w"; then
        echo "FAIL: wrapper $w does not preload $rt" >&2
        fails=$((fails + 1))
    fi
done
# And the preload works: the runtime maps into an uninstrumented program.
maps=$(ASAN_OPTIONS=detect_leaks=0 LD_PRELOAD=$rt cat /proc/self/maps) || maps=
[[ $maps == *"$lib"* ]] || { echo "FAIL: $lib is not mapped under LD_PRELOAD=$rt" >&2; fails=$((fails + 1)); }

echo "checked $checked ELF files for $sym / $lib"
((checked >= 4)) || { echo "FAIL: only $checked ELF files found under $build" >&2; exit 1; }
((fails == 0))
