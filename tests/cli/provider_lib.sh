# shellcheck shell=bash
# Helpers of the provider CLI tests, sourced after lib.sh: the provider's configuration file,
# `openssl` with it (`prov`) and stock `openssl` with the default provider only (`plain`), the
# judge of every result.

# The sample configuration itself: it names no module path, so OPENSSL_MODULES (the build
# tree's ossl-modules, set by lib.sh) is where the core finds simaccel.so.
PROV_CONF=$SIMACCEL_SOURCE_DIR/conf/simaccel-provider.cnf

require_provider() {
    [[ -f $OPENSSL_MODULES/simaccel.so ]] || fail "no provider at $OPENSSL_MODULES/simaccel.so"
    [[ -f $PROV_CONF ]] || fail "no $PROV_CONF"
}

# prov ARGS...: `openssl ARGS...` with the default and simaccel providers (the sample config).
prov() {
    run env OPENSSL_CONF="$PROV_CONF" "$OPENSSL" "$@"
}

# plain ARGS...: `openssl ARGS...` with no configuration: the default provider alone, and no
# device options (nothing of simaccel is loaded).
plain() {
    run env -u SIMACCEL_OPTS -u OPENSSL_MODULES OPENSSL_CONF=/dev/null "$OPENSSL" "$@"
}

# flip_byte FILE OFFSET: XORs one byte of FILE with 0x01.
flip_byte() {
    local b
    b=$(od -An -tu1 -j "$2" -N 1 "$1" | tr -d ' ')
    # shellcheck disable=SC2059 # the format is the escape that makes the byte
    printf "\\$(printf %03o $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# gen_key rsa|ec|ed25519|x25519 FILE [openssl]: a private key in PEM, made by the provider unless
# a third argument `plain` says otherwise.
gen_key() {
    local kind=$1 file=$2 how=${3:-prov}
    local -a alg
    case $kind in
    rsa) alg=(-algorithm RSA -pkeyopt rsa_keygen_bits:2048) ;;
    ec) alg=(-algorithm EC -pkeyopt ec_paramgen_curve:P-256) ;;
    ed25519) alg=(-algorithm ED25519) ;;
    x25519) alg=(-algorithm X25519) ;;
    *) fail "gen_key: unknown kind $kind" ;;
    esac
    "$how" genpkey -quiet "${alg[@]}" -out "$file" || fail "genpkey $kind ($how)"
}

# expect_completed STATS CLASS [MIN]: the device completed at least MIN (default 1) operations of
# CLASS according to the stats file the process wrote at exit.
expect_completed() {
    local stats=$1 cls=$2 min=${3:-1} n
    [[ -s $stats ]] || fail "no stats file $stats written at exit"
    n=$(stats_value "$stats" "$cls" completed) || fail "stats: no $cls in $stats"
    ((n >= min)) || fail "the device completed $n $cls operations, expected at least $min"
    say "$cls completed: $n"
}
