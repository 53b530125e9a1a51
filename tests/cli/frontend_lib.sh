# shellcheck shell=bash
# Helpers of the provider CLI tests and of the tests run through either front end, sourced after
# lib.sh: the provider's configuration file, `openssl` with it (`prov`), stock `openssl` with
# the default provider only (`plain`, the judge of every result), and `fe_openssl`, `openssl`
# through the front end a test is given (engine or provider).

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

# gen_key KIND FILE [prov|plain]: a private key of KIND (key_args: rsa, ec, ed25519, x25519) in
# PEM, made by the provider unless a third argument `plain` says otherwise.
gen_key() {
    local kind=$1 file=$2 how=${3:-prov}
    key_args "$kind"
    "$how" genpkey -quiet "${KEY_ARGS[@]}" -out "$file" || fail "genpkey $kind ($how)"
}

# use_frontend engine|provider: the front end the test drives, for fe_openssl: FRONTEND,
# FE_CONF (the OPENSSL_CONF of the offloaded side) and FE_ARGS (its extra `openssl` arguments).
use_frontend() {
    FRONTEND=$1
    case $FRONTEND in
    engine) require_engine; FE_CONF=/dev/null FE_ARGS=(-engine simaccel) ;;
    provider) require_provider; FE_CONF=$PROV_CONF FE_ARGS=() ;;
    *) fail "unknown front end '$FRONTEND' (engine or provider)" ;;
    esac
}

# fe_openssl COMMAND ARGS...: `openssl COMMAND ARGS...` through the front end (use_frontend).
fe_openssl() {
    local cmd=$1
    shift
    run env OPENSSL_CONF="$FE_CONF" "$OPENSSL" "$cmd" "${FE_ARGS[@]}" "$@"
}
