#!/usr/bin/env bash
# Builds simaccel against another OpenSSL line and runs the OpenSSL-facing tests with it.
#
#   scripts/test-openssl.sh 3.5|3.6|4.0 [extra ctest arguments]
#
# Downloads Debian's source package of that OpenSSL line (deb.debian.org, through apt with
# private state: the system's apt configuration is neither read nor changed), builds it into a
# private prefix, configures and builds simaccel against that prefix, and runs the tests labelled
# provider, engine, cli, teardown and qat (everything that goes through OpenSSL's API or its
# `openssl` tool; the servers are linked against the system's OpenSSL and are left out) with the
# prefix's `openssl` first in PATH and its libraries first in LD_LIBRARY_PATH. With the ENGINE
# API (3.x) the engine is built and its tests run; on 4.0, which removed it, the engine target
# must switch itself off with its CMake message, and the rest must pass.
#
# The suite follows the line: 3.5 trixie, 3.6 sid, 4.x experimental (other lines: sid). The
# OpenSSL build is cached in ${XDG_CACHE_HOME:-~/.cache}/simaccel/openssl-<exact version>/, so
# reruns only rebuild simaccel. At the end the script prints the time of each step. Needs:
# apt-get, dpkg-source, a C compiler, perl, make, and the simaccel build dependencies
# (scripts/install-deps.sh).
#
# Environment: SIMACCEL_OPENSSL_SUITE (overrides the suite), SIMACCEL_OPENSSL_MIRROR
# (default http://deb.debian.org/debian), SIMACCEL_OPENSSL_LABELS (ctest -L regex, default
# above), JOBS (default 2), BUILD_DIR (default build/openssl-<line>).
set -euo pipefail

line=${1:?usage: scripts/test-openssl.sh VERSION (e.g. 3.5) [ctest arguments]}
shift
[[ $line =~ ^[0-9]+\.[0-9]+$ ]] || { echo "test-openssl: VERSION is MAJOR.MINOR, e.g. 3.5" >&2; exit 2; }

src_dir=$(cd "$(dirname "$0")/.." && pwd)
case $line in
3.5) default_suite=trixie ;;
3.6) default_suite=sid ;;
4.*) default_suite=experimental ;;
*) default_suite=sid ;;
esac
suite=${SIMACCEL_OPENSSL_SUITE:-$default_suite}
[[ $suite =~ ^[a-z0-9-]+$ ]] ||
    { echo "test-openssl: SIMACCEL_OPENSSL_SUITE=$suite is not a suite name" >&2; exit 2; }
labels=${SIMACCEL_OPENSSL_LABELS:-provider|engine|cli|teardown|qat}
major=${line%%.*}
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

# A cached build of the line (the newest, if several) is reused as is; the index is consulted
# only without one.
prefix=
while read -r d; do
    [[ -x $d/prefix/bin/openssl && -f $d/prefix/.complete ]] && prefix=$d/prefix
done < <(compgen -G "$cache/openssl-$line.*" | sort -V)
openssl_time="cached"

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
    # As little as the tests need: the shared libraries, the providers and `openssl`, at -O1
    # (the tests measure nothing). With `shared`, OpenSSL compiles every library source a second
    # time for libcrypto.a and libssl.a; leaving the static libraries out of LIBS and
    # INSTALL_LIBS halves the compilation.
    (
        cd "$base/src"
        ./Configure --prefix="$prefix" --libdir=lib --openssldir="$prefix/ssl" shared \
            no-docs no-tests -O1
        # shellcheck disable=SC2016 # $(%s) is make's variable, not the shell's
        print_var() {
            printf 'print-var:\n\t@echo $(%s)\n' "$1" | make -s -f Makefile -f - print-var
        }
        static=$(print_var INSTALL_LIBS)
        libs=$(print_var LIBS)
        keep=()
        for l in $libs; do [[ " $static " == *" $l "* ]] || keep+=("$l"); done
        libs=${keep[*]}
        make -j"$jobs" build_sw LIBS="$libs"
        make install_sw install_ssldirs LIBS="$libs" INSTALL_LIBS=
    ) >"$base/build.log" 2>&1 || fail "OpenSSL build failed; see $base/build.log"
    touch "$prefix/.complete"
    openssl_time="$((SECONDS - start)) s"
    say "OpenSSL $ver built in $openssl_time"
    # dpkg-source leaves a copy of the upstream tarball next to the tree.
    rm -rf "$dl" "$base/src" "$base"/openssl_*
fi

export PATH=$prefix/bin:$PATH
export LD_LIBRARY_PATH=$prefix/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export PKG_CONFIG_PATH=$prefix/lib/pkgconfig
say "using $("$prefix/bin/openssl" version) from $prefix"

# --- 3. simaccel against it. --------------------------------------------------------------
start=$SECONDS
# OPENSSL_ROOT_DIR steers FindOpenSSL to the prefix; PKG_CONFIG_PATH makes the install
# directories (enginesdir, modulesdir) the prefix's too. A build directory configured for
# another OpenSSL (an older patch release) starts from a fresh cache: its cached results, such as
# SIMACCEL_HAVE_ENGINE_API, would outlive the change.
if [[ -f $build_dir/CMakeCache.txt ]] &&
    ! grep -qxF "OPENSSL_ROOT_DIR:UNINITIALIZED=$prefix" "$build_dir/CMakeCache.txt" &&
    ! grep -qxF "OPENSSL_ROOT_DIR:PATH=$prefix" "$build_dir/CMakeCache.txt"; then
    say "$build_dir was configured for another OpenSSL: reconfiguring from scratch"
    rm -f "$build_dir/CMakeCache.txt"
fi
mkdir -p "$build_dir"
cmake -S "$src_dir" -B "$build_dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DOPENSSL_ROOT_DIR="$prefix" -DOPENSSL_USE_STATIC_LIBS=OFF \
    -DSIMACCEL_OPENSSL_BIN="$prefix/bin/openssl" -DSIMACCEL_BUILD_BENCH=OFF \
    >"$build_dir/configure.log" 2>&1 ||
    { tail -n 40 "$build_dir/configure.log" >&2; fail "CMake failed; see $build_dir/configure.log"; }
found=$(sed -n 's/^OPENSSL_CRYPTO_LIBRARY:[A-Z]*=//p' "$build_dir/CMakeCache.txt")
[[ $found == "$prefix"/* ]] || fail "CMake found libcrypto at $found, not under $prefix"
modulesdir=$(pkg-config --variable=modulesdir libcrypto)
[[ $modulesdir == "$prefix"/* ]] || fail "pkg-config modulesdir is $modulesdir, not under $prefix"
# The ENGINE API is there up to 3.x and gone in 4.0: the engine target follows, saying so.
engine=$(sed -n 's/^SIMACCEL_BUILD_ENGINE:BOOL=//p' "$build_dir/CMakeCache.txt")
if ((major >= 4)); then
    [[ $engine == OFF ]] ||
        fail "OpenSSL $line has no ENGINE API, but SIMACCEL_BUILD_ENGINE=$engine"
    grep -q 'has no ENGINE API; building the provider only' "$build_dir/configure.log" ||
        fail "CMake did not say that it builds the provider only"
    say "$(grep -o 'simaccel: OpenSSL.*provider only' "$build_dir/configure.log")"
else
    [[ $engine == ON ]] ||
        fail "OpenSSL $line has the ENGINE API, but SIMACCEL_BUILD_ENGINE=$engine"
fi
if ! cmake --build "$build_dir" -j"$jobs" >"$build_dir/build.log" 2>&1; then
    grep -E 'error|Error' "$build_dir/build.log" | head -n 40 >&2 ||
        tail -n 40 "$build_dir/build.log" >&2
    fail "simaccel build failed against OpenSSL $line; see $build_dir/build.log"
fi
simaccel_time="$((SECONDS - start)) s"
say "simaccel built in $simaccel_time (engine: $engine)"

# --- 4. The tests that go through OpenSSL. --------------------------------------------------
# The servers (HAProxy, nginx) are the system's, linked against its OpenSSL: left out.
start=$SECONDS
rc=0
ctest --test-dir "$build_dir" -L "$labels" -LE servers --output-on-failure -j"$jobs" "$@" ||
    rc=$?
version=$("$prefix/bin/openssl" version -v)
say "$version: OpenSSL build $openssl_time, simaccel build $simaccel_time," \
    "tests $((SECONDS - start)) s, total $SECONDS s"
if ((rc == 0)); then
    say "$version: tests labelled $labels passed (engine: $engine)"
else
    say "$version: tests labelled $labels FAILED (engine: $engine)"
fi
exit "$rc"
