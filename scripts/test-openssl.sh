#!/usr/bin/env bash
# Builds simaccel against another OpenSSL line and runs the provider tests with it.
#
#   scripts/test-openssl.sh 3.5 [extra ctest arguments]
#
# Downloads Debian's source package of that OpenSSL line from trixie (deb.debian.org, through
# apt with private state: the system's apt configuration is neither read nor changed), builds it
# into a private prefix, configures and builds simaccel against that prefix, and runs
# `ctest -L provider` with the prefix's `openssl` first in PATH and its libraries first in
# LD_LIBRARY_PATH. The OpenSSL build is cached in ${XDG_CACHE_HOME:-~/.cache}/simaccel/, so
# reruns only rebuild simaccel. Needs: apt-get, dpkg-source, a C compiler, perl, make, and the
# simaccel build dependencies (scripts/install-deps.sh).
#
# Environment: SIMACCEL_OPENSSL_SUITE (default trixie), SIMACCEL_OPENSSL_MIRROR
# (default http://deb.debian.org/debian), JOBS (default 2), BUILD_DIR (default
# build/openssl-<line>).
set -euo pipefail

line=${1:?usage: scripts/test-openssl.sh VERSION (e.g. 3.5) [ctest arguments]}
shift
[[ $line =~ ^[0-9]+\.[0-9]+$ ]] || { echo "test-openssl: VERSION is MAJOR.MINOR, e.g. 3.5" >&2; exit 2; }

src_dir=$(cd "$(dirname "$0")/.." && pwd)
suite=${SIMACCEL_OPENSSL_SUITE:-trixie}
mirror=${SIMACCEL_OPENSSL_MIRROR:-http://deb.debian.org/debian}
jobs=${JOBS:-2}
cache=${XDG_CACHE_HOME:-$HOME/.cache}/simaccel
build_dir=${BUILD_DIR:-$src_dir/build/openssl-$line}

SCRIPT_NAME=test-openssl
source "$src_dir/scripts/lib/common.sh"
for tool in apt-get apt-cache dpkg-source perl make cmake ctest; do
    command -v "$tool" >/dev/null || fail "$tool is needed"
done
mkdir -p "$cache"

# --- 1. The newest version of the line in the suite's Sources index, via a private apt. -----
apt_dir=$cache/apt-$suite
mkdir -p "$apt_dir/sources.list.d" "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" \
    "$apt_dir/preferences.d"
cat >"$apt_dir/sources.list.d/$suite-src.sources" <<EOF
Types: deb-src
URIs: $mirror
Suites: $suite
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
apt_opts=(
    -o "Dir::Etc::SourceList=/dev/null"
    -o "Dir::Etc::SourceParts=$apt_dir/sources.list.d"
    -o "Dir::Etc::PreferencesParts=$apt_dir/preferences.d"
    -o "Dir::State::Lists=$apt_dir/lists"
    -o "Dir::Cache=$apt_dir/cache"
    -o "Dir::State::status=/dev/null"
    # apt drops to _apt to download when run as root; these directories are ours, not apt's.
    -o "APT::Sandbox::User=$(id -un)"
    -o "Debug::NoLocking=1"
)

# A cached build of the line is reused as is; the index is consulted only without one.
prefix=
for d in "$cache"/openssl-"$line".*/prefix; do
    [[ -x $d/bin/openssl && -f $d/.complete ]] && prefix=$d
done

if [[ -z $prefix ]]; then
    say "reading the $suite source index ($mirror)"
    apt-get "${apt_opts[@]}" -qq update || fail "apt-get update of the private $suite index failed"
    mapfile -t versions < <(apt-cache "${apt_opts[@]}" showsrc openssl 2>/dev/null |
        sed -n 's/^Version: //p' | grep -E "^([0-9]+:)?${line//./\\.}\.[0-9]" | sort -u |
        sort -r -V)
    ((${#versions[@]} > 0)) || fail "no openssl $line.x source in $suite"
    say "candidates: ${versions[*]}"

    # The newest version's files are sometimes not on the mirror yet (404): take the next one.
    ver=
    for v in "${versions[@]}"; do
        dl=$cache/src-$v
        rm -rf "$dl"
        mkdir -p "$dl"
        if (cd "$dl" && apt-get "${apt_opts[@]}" -qq source --download-only "openssl=$v") \
            >"$dl/download.log" 2>&1; then
            ver=$v
            break
        fi
        say "openssl=$v: download failed, trying an older version"
        sed 's/^/    /' "$dl/download.log" >&2
        rm -rf "$dl"
    done
    [[ -n $ver ]] || fail "no openssl $line.x source package could be downloaded"
    upstream=${ver#*:}
    upstream=${upstream%-*}

    # --- 2. Build and install it into the cache. --------------------------------------------
    base=$cache/openssl-$upstream
    prefix=$base/prefix
    say "building OpenSSL $ver into $prefix (-j$jobs)"
    rm -rf "$base"
    mkdir -p "$base"
    # --no-check: the .dsc signature needs the uploaders' keyring; apt has already checked
    # every file's hash against the signed index.
    dpkg-source --no-check -x "$dl"/openssl_*.dsc "$base/src" >"$base/unpack.log" 2>&1 ||
        fail "dpkg-source -x failed: $(tail -n 5 "$base/unpack.log")"
    start=$SECONDS
    (
        cd "$base/src"
        ./Configure --prefix="$prefix" --libdir=lib --openssldir="$prefix/ssl" shared \
            no-docs no-tests
        make -j"$jobs" build_sw
        make install_sw install_ssldirs
    ) >"$base/build.log" 2>&1 || fail "OpenSSL build failed; see $base/build.log"
    touch "$prefix/.complete"
    say "OpenSSL $ver built in $((SECONDS - start)) s"
    rm -rf "$dl" "$base/src"
fi

export PATH=$prefix/bin:$PATH
export LD_LIBRARY_PATH=$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
say "using $("$prefix/bin/openssl" version) from $prefix"

# --- 3. simaccel against it. --------------------------------------------------------------
start=$SECONDS
# OPENSSL_ROOT_DIR steers FindOpenSSL to the prefix; PKG_CONFIG_PATH makes the install
# directories (enginesdir, modulesdir) the prefix's too.
cmake -S "$src_dir" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOPENSSL_ROOT_DIR="$prefix" -DOPENSSL_USE_STATIC_LIBS=OFF \
    -DSIMACCEL_OPENSSL_BIN="$prefix/bin/openssl" -DSIMACCEL_BUILD_BENCH=OFF >/dev/null
found=$(sed -n 's/^OPENSSL_CRYPTO_LIBRARY:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
[[ $found == "$prefix"/* ]] || fail "CMake found libcrypto at $found, not under $prefix"
modulesdir=$(pkg-config --variable=modulesdir libcrypto)
[[ $modulesdir == "$prefix"/* ]] || fail "pkg-config modulesdir is $modulesdir, not under $prefix"
if ! cmake --build "$build_dir" -j"$jobs" >"$build_dir/build.log" 2>&1; then
    tail -n 40 "$build_dir/build.log" >&2
    fail "simaccel build failed against OpenSSL $line; see $build_dir/build.log"
fi
say "simaccel built in $((SECONDS - start)) s"

# --- 4. The provider tests. ---------------------------------------------------------------
rc=0
ctest --test-dir "$build_dir" -L provider --output-on-failure -j"$jobs" "$@" || rc=$?
if ((rc == 0)); then
    say "$("$prefix/bin/openssl" version -v): provider tests passed"
else
    say "$("$prefix/bin/openssl" version -v): provider tests FAILED"
fi
exit "$rc"
