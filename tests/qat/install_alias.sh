#!/usr/bin/env bash
# The qatengine alias install (cmake/InstallQatAlias.cmake): copies simaccel.so into an engines
# directory without a qatengine.so, replaces its own earlier copy, and refuses, with a message
# and without touching it, a qatengine.so that is not simaccel's.
set -euo pipefail
cmake=$1 script=$2 module=$3
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
install_alias() { "$cmake" -DSIMACCEL_ALIAS_DIR="$dir" -P "$script"; }

install_alias >/dev/null 2>&1 && fail "installed without simaccel.so in the directory"
cp "$module" "$dir/simaccel.so"
install_alias || fail "first install"
cmp -s "$module" "$dir/qatengine.so" || fail "qatengine.so is not a copy of simaccel.so"
install_alias || fail "reinstall over simaccel's own qatengine.so"

echo "Intel QAT_Engine stand-in" >"$dir/qatengine.so"
if out=$(install_alias 2>&1); then
    fail "installed over a foreign qatengine.so"
fi
grep -q "refusing to install the qatengine alias over" <<<"$out" &&
    grep -q "not simaccel.s" <<<"$out" ||
    fail "no clear message: $out"
grep -q "stand-in" "$dir/qatengine.so" || fail "the foreign qatengine.so was changed"
echo "ok: alias installs, reinstalls, and refuses a foreign qatengine.so"
