#!/usr/bin/env bash
# The Debian package of this build tree: `cpack -G DEB` writes simaccel_<version>_<arch>.deb;
# unpacked with `dpkg -x` into a scratch root it holds the engine in libcrypto's enginesdir, the
# provider in its modulesdir, the core library in its private directory and nowhere else (no
# development symlink), the docs and the sample configurations; each module's RUNPATH is
# $ORIGIN-relative and leads to that core; the core exports only simaccel's own symbols
# (bridge/simaccel-core.map); and the unpacked modules load and work: `openssl engine -t
# simaccel`, an RSA signature through the unpacked engine that stock OpenSSL verifies,
# `openssl list -providers` with the unpacked provider active.
source "$(dirname "$0")/../cli/lib.sh"
usage="usage: package.sh CPACK VERSION ENGINE(0|1) QAT_ALIAS(0|1) ENGINESDIR MODULESDIR COREDIR"
cpack=${1:?$usage} version=${2:?$usage} engine=${3:?$usage} alias=${4:?$usage}
enginesdir=${5:?$usage} modulesdir=${6:?$usage} coredir=${7:?$usage}

for p in dpkg-deb dpkg readelf nm c++filt; do
    command -v "$p" >/dev/null || skip "$p is not installed (packages dpkg, binutils)"
done
[[ -x $cpack ]] || skip "no cpack at '$cpack'"
[[ -f $SIMACCEL_BUILD_DIR/CPackConfig.cmake ]] || fail "no CPackConfig.cmake in $SIMACCEL_BUILD_DIR"
arch=$(dpkg --print-architecture)
# A package is for the system's OpenSSL: with another one (scripts/test-openssl.sh) its
# directories belong to no package and dpkg-shlibdeps knows nothing of its libcrypto.
dpkg -S "$modulesdir" >/dev/null 2>&1 ||
    skip "this build uses an OpenSSL that is not the system's ($modulesdir belongs to no package)"

run "$cpack" -G DEB --config "$SIMACCEL_BUILD_DIR/CPackConfig.cmake" -B "$WORK/pkg" \
    >"$WORK/cpack.log" 2>&1 || { cat "$WORK/cpack.log" >&2; fail "cpack -G DEB failed"; }
deb=$WORK/pkg/simaccel_${version}_$arch.deb
[[ -f $deb ]] || { ls "$WORK/pkg" >&2; fail "cpack wrote no $(basename "$deb")"; }
say "built $(basename "$deb") ($(stat -c %s "$deb") bytes)"

# Control fields.
field() { dpkg-deb -f "$deb" "$1"; }
[[ $(field Package) == simaccel ]] || fail "Package: '$(field Package)', expected simaccel"
[[ $(field Version) == "$version" ]] || fail "Version: '$(field Version)', expected $version"
[[ $(field Architecture) == "$arch" ]] || fail "Architecture: '$(field Architecture)', expected $arch"
depends=$(field Depends)
for dep in libssl3 liburing2; do
    [[ $depends == *"$dep "* || $depends == *"$dep," || $depends == *"$dep" ]] ||
        fail "Depends: '$depends' lacks $dep"
done
say "control: simaccel $version $arch, Depends: $depends"

# Layout.
root=$WORK/root
dpkg -x "$deb" "$root" || fail "dpkg -x $deb failed"
must_have() { [[ -f $root$1 ]] || { (cd "$root" && find . | sort) >&2; fail "the package has no $1"; }; }
must_have "$modulesdir/simaccel.so"
must_have "$coredir/libsimaccel-core.so.0"
((engine)) && must_have "$enginesdir/simaccel.so"
if ((engine && alias)); then
    must_have "$enginesdir/qatengine.so"
elif [[ -e $root$enginesdir/qatengine.so ]]; then
    fail "the package has $enginesdir/qatengine.so without SIMACCEL_QATENGINE_ALIAS"
fi
docdir=/usr/share/doc/simaccel
for f in README.md config.md contract.md examples/simaccel-engine.cnf examples/simaccel-provider.cnf \
    examples/profiles/qat-like.cnf; do
    must_have "$docdir/$f"
done
mapfile -t cores < <(cd "$root" && find . -name 'libsimaccel-core*' | sort)
expected=(".$coredir/libsimaccel-core.so.0" ".$coredir/libsimaccel-core.so.$version")
[[ ${cores[*]} == "${expected[*]}" ]] ||
    fail "core library files: '${cores[*]}', expected only '${expected[*]}'"
where=$modulesdir
((engine)) && where+=" and $enginesdir"
say "layout: modules in $where, core in $coredir, docs in $docdir"

# RUNPATH: $ORIGIN-relative, leading to the core; no RPATH, no build-tree path.
modules=("$modulesdir/simaccel.so")
((engine)) && modules+=("$enginesdir/simaccel.so")
((engine && alias)) && modules+=("$enginesdir/qatengine.so")
for m in "${modules[@]}"; do
    dyn=$(readelf -d "$root$m") || fail "readelf -d $m"
    grep -q '(RPATH)' <<<"$dyn" && fail "$m has an RPATH (want RUNPATH)"
    runpath=$(sed -nE 's/.*\(RUNPATH\).*\[(.*)\]$/\1/p' <<<"$dyn")
    [[ $runpath == "\$ORIGIN/"* && $runpath != *:* ]] ||
        fail "$m: RUNPATH '$runpath', expected one \$ORIGIN/... entry"
    resolved=$(realpath -m "$root$(dirname "$m")/${runpath#\$ORIGIN/}")
    [[ $resolved == "$(realpath -m "$root$coredir")" ]] ||
        fail "$m: RUNPATH $runpath leads to ${resolved#"$root"}, not $coredir"
    grep -q 'NEEDED.*\[libsimaccel-core\.so\.0\]' <<<"$dyn" || fail "$m does not link libsimaccel-core.so.0"
    say "$m: RUNPATH $runpath"
done

# Exports of the core: simaccel's own symbols only (bridge/simaccel-core.map).
mapfile -t exports < <(nm -D --defined-only "$root$coredir/libsimaccel-core.so.0" | awk '{print $3}' |
    c++filt)
((${#exports[@]} > 0)) || fail "the core exports nothing"
others=()
for s in "${exports[@]}"; do
    [[ $s == simaccel::* || $s == "typeinfo for simaccel::"* || $s == "typeinfo name for simaccel::"* ||
        $s == SIMACCEL_CORE_* ]] || others+=("$s")
done
((${#others[@]} == 0)) || fail "the core exports symbols outside simaccel: ${others[*]:0:5}"
say "the core exports ${#exports[@]} symbols, all simaccel's"

# The unpacked modules load and work, with the core from the unpacked tree only. An
# LD_LIBRARY_PATH entry wins over RUNPATH: those that hold a libsimaccel-core go.
if [[ -n ${LD_LIBRARY_PATH:-} ]]; then
    IFS=: read -ra dirs <<<"$LD_LIBRARY_PATH"
    keep=()
    for d in "${dirs[@]}"; do
        compgen -G "$d/libsimaccel-core.so*" >/dev/null || keep+=("$d")
    done
    LD_LIBRARY_PATH=$(IFS=:; echo "${keep[*]:-}")
    [[ -n $LD_LIBRARY_PATH ]] || unset LD_LIBRARY_PATH
fi
# stock OPENSSL_ARGS...: the `openssl` command without any engine.
stock() { (unset OPENSSL_ENGINES SIMACCEL_OPTS; "$OPENSSL" "$@"); }
if ((engine)); then
    e=$root$enginesdir
    core=$(ldd "$e/simaccel.so" | sed -nE 's/.*libsimaccel-core\.so\.0 => (.*) \(0x.*/\1/p')
    [[ $(realpath "$core") == "$(realpath "$root$coredir")"/* ]] ||
        fail "the unpacked engine resolves libsimaccel-core.so.0 to '$core'"
    if ! out=$(OPENSSL_ENGINES=$e run "$OPENSSL" engine -t simaccel 2>&1) ||
        ! grep -q '\[ available \]' <<<"$out"; then
        echo "$out" >&2
        fail "the unpacked engine is not available"
    fi
    say "openssl engine -t simaccel: available"
    make_cert rsa "$WORK/rsa"
    stock pkey -in "$WORK/rsa.key" -pubout -out "$WORK/rsa.pub" 2>/dev/null || fail "pkey -pubout"
    head -c 1000 /dev/urandom >"$WORK/msg"
    OPENSSL_ENGINES=$e SIMACCEL_OPTS="stats-file=$WORK/engine.stats.json" \
        run "$OPENSSL" dgst -sha256 -engine simaccel -sign "$WORK/rsa.key" -out "$WORK/msg.sig" \
        "$WORK/msg" >"$WORK/sign.log" 2>&1 ||
        { cat "$WORK/sign.log" >&2; fail "signing with the unpacked engine failed"; }
    stock dgst -sha256 -verify "$WORK/rsa.pub" -signature "$WORK/msg.sig" "$WORK/msg" >/dev/null 2>&1 ||
        fail "stock OpenSSL does not verify the unpacked engine's signature"
    flip_byte "$WORK/msg" 7
    if stock dgst -sha256 -verify "$WORK/rsa.pub" -signature "$WORK/msg.sig" "$WORK/msg" \
        >/dev/null 2>&1; then
        fail "the signature verifies over a changed message"
    fi
    require_python
    expect_completed "$WORK/engine.stats.json" rsa-priv 1
    say "an RSA signature through the unpacked engine verifies with stock OpenSSL"
fi
out=$(OPENSSL_MODULES=$root$modulesdir run "$OPENSSL" list -providers -provider simaccel \
    -provider default 2>&1) || { echo "$out" >&2; fail "openssl list -providers with the unpacked provider"; }
# `  simaccel` then its name, version and status lines.
entry=$(sed -n '/^  simaccel$/,/status/p' <<<"$out")
if ! grep -q "version: $version" <<<"$entry" || ! grep -q 'status: active' <<<"$entry"; then
    echo "$out" >&2
    fail "the unpacked provider is not listed active with version $version"
fi
say "openssl list -providers: simaccel $version active"
say "ok: $(basename "$deb")"
