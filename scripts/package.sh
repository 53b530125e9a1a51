#!/usr/bin/env bash
# Builds the Debian package: the `package` preset (Release, the modules only) in build/package,
# then `cpack -G DEB` there, which writes build/package/simaccel_<version>_<arch>.deb
# (cmake/Packaging.cmake says what goes where).
#
#   scripts/package.sh [--install-test] [-DKEY=VALUE ...]
#
# -D arguments go to the configure step, e.g. -DSIMACCEL_QATENGINE_ALIAS=ON (the package then
# also holds engines-3/qatengine.so). The test suite checks the package unpacked (`ctest -L
# package`); --install-test installs it for real, as root: `dpkg -i`, then, with no
# environment variables at all (env -i, PATH only), `openssl engine -t simaccel`, an RSA
# signature through `-engine simaccel` that stock OpenSSL verifies and `openssl list -providers
# -provider simaccel`; then `dpkg -r simaccel` and a check that the files are gone. It refuses
# to run when simaccel is already installed (as a package, or files of the package exist), so
# that it never replaces or removes an installation it did not make.
set -euo pipefail
src_dir=$(cd "$(dirname "$0")/.." && pwd)
SCRIPT_NAME=package
source "$src_dir/scripts/lib/common.sh"

install_test=0
cmake_args=()
for a in "$@"; do
    case $a in
    --install-test) install_test=1 ;;
    -D*) cmake_args+=("$a") ;;
    *) fail "unknown argument '$a' (usage: scripts/package.sh [--install-test] [-DKEY=VALUE ...])" ;;
    esac
done
for tool in cmake cpack dpkg dpkg-deb dpkg-shlibdeps; do
    command -v "$tool" >/dev/null || fail "$tool is needed (packages cmake, dpkg-dev)"
done

cd "$src_dir"
build=$src_dir/build/package
say "+ cmake --preset package ${cmake_args[*]}"
cmake --preset package "${cmake_args[@]}" >/dev/null
say "+ cmake --build --preset package"
cmake --build --preset package >/dev/null
say "+ cpack -G DEB (in $build)"
(cd "$build" && cpack -G DEB >cpack.log 2>&1) || { cat "$build/cpack.log" >&2; fail "cpack failed"; }
version=$(sed -nE 's/^CMAKE_PROJECT_VERSION:STATIC=(.*)/\1/p' "$build/CMakeCache.txt")
deb=$build/simaccel_${version}_$(dpkg --print-architecture).deb
[[ -f $deb ]] || fail "cpack wrote no $deb"
say "built $deb"
dpkg-deb -c "$deb" | awk '{print "  " $6 ($7 ? " " $7 " " $8 : "")}' >&2
((install_test)) || exit 0

# --- --install-test ---------------------------------------------------------------------------
((EUID == 0)) || fail "--install-test installs the package: run it as root"
status=$(dpkg-query -W -f='${Status}' simaccel 2>/dev/null || true)
[[ -z $status || $status == *not-installed* || $status == "unknown ok not-installed" ]] ||
    fail "simaccel is already installed as a package ($status): remove it first (dpkg -r simaccel)"
mapfile -t files < <(dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -n 's|^\./|/|p' | grep -v '/$')
for f in "${files[@]}"; do
    [[ -e $f || -L $f ]] && fail "$f exists already (an earlier cmake --install?): remove it first"
done

installed=0
remove() {
    if ((installed)); then
        say "+ dpkg -r simaccel"
        dpkg -r simaccel >/dev/null && installed=0
    fi
}
# At exit, whatever the path: the package removed, then common.sh's cleanup (the scratch dir).
remove_and_clean() { remove; _common_cleanup; }
trap remove_and_clean EXIT
trap 'exit 1' INT TERM
new_scratch WORK package

say "+ dpkg -i $(basename "$deb")"
dpkg -i "$deb" >"$WORK/dpkg.log" 2>&1 || { cat "$WORK/dpkg.log" >&2; fail "dpkg -i failed"; }
installed=1
# No environment at all: what a user gets after installing.
bare() { env -i PATH=/usr/bin:/bin "$@"; }
if dpkg -L simaccel | grep -q '/engines-3/simaccel.so$'; then
    say "+ env -i PATH=/usr/bin:/bin openssl engine -t simaccel"
    out=$(bare openssl engine -t simaccel 2>&1) ||
        { echo "$out" >&2; fail "openssl engine -t simaccel failed"; }
    echo "$out" >&2
    grep -q '\[ available \]' <<<"$out" || fail "the installed engine is not available"
    bare openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$WORK/rsa.key" 2>/dev/null
    head -c 1000 /dev/urandom >"$WORK/msg"
    say "+ env -i PATH=/usr/bin:/bin SIMACCEL_OPTS=stats-file=... openssl dgst -engine simaccel -sign"
    env -i PATH=/usr/bin:/bin SIMACCEL_OPTS="stats-file=$WORK/stats.json" openssl dgst -sha256 \
        -engine simaccel -sign "$WORK/rsa.key" -out "$WORK/msg.sig" "$WORK/msg" >/dev/null 2>&1 ||
        fail "signing through the installed engine failed"
    bare openssl pkey -in "$WORK/rsa.key" -pubout -out "$WORK/rsa.pub" 2>/dev/null
    bare openssl dgst -sha256 -verify "$WORK/rsa.pub" -signature "$WORK/msg.sig" "$WORK/msg" >&2 ||
        fail "stock OpenSSL does not verify the installed engine's signature"
    n=$("$STATS" get "$WORK/stats.json" rsa-priv completed) || fail "no rsa-priv count in the stats"
    say "ok: the signature verifies; the device completed $n rsa-priv"
fi
say "+ env -i PATH=/usr/bin:/bin openssl list -providers -provider simaccel -provider default"
out=$(bare openssl list -providers -provider simaccel -provider default 2>&1) ||
    { echo "$out" >&2; fail "openssl list -providers failed"; }
echo "$out" >&2
sed -n '/^  simaccel$/,/status/p' <<<"$out" | grep -q 'status: active' ||
    fail "the installed provider is not active"
remove
for f in "${files[@]}"; do
    [[ -e $f || -L $f ]] && fail "$f is still there after dpkg -r"
done
bare openssl engine -t simaccel >/dev/null 2>&1 && fail "the engine still loads after dpkg -r"
say "ok: installed, checked with no environment, removed (${#files[@]} files gone)"
