#!/usr/bin/env bash
# `openssl pkeyutl -engine simaccel -sign` (RSA PKCS#1, RSA-PSS, ECDSA P-256) makes signatures
# that stock OpenSSL verifies, and a flipped byte fails verification.
source "$(dirname "$0")/lib.sh"
require_engine
require_python

export SIMACCEL_OPTS="stats-file=$WORK/stats.json"
head -c 1000 /dev/urandom >"$WORK/msg"
"$OPENSSL" dgst -sha256 -binary -out "$WORK/msg.sha256" "$WORK/msg"

flip_byte() { # flip_byte FILE OFFSET: XOR one byte with 0x01
    local b
    b=$(od -An -tu1 -j "$2" -N 1 "$1" | tr -d ' ')
    # shellcheck disable=SC2059 # the format is the escape that makes the byte
    printf "\\$(printf %03o $((b ^ 1)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}

# case NAME KIND PKEYOPTS...
sign_case() {
    local name=$1 kind=$2
    shift 2
    local -a opts=()
    local o
    for o in "$@"; do opts+=(-pkeyopt "$o"); done
    make_cert "$kind" "$name"
    "$OPENSSL" pkey -in "$WORK/$name.key" -pubout -out "$WORK/$name.pub"

    rm -f "$WORK/stats.json"
    run "$OPENSSL" pkeyutl -engine simaccel -sign -inkey "$WORK/$name.key" "${opts[@]}" \
        -in "$WORK/msg.sha256" -out "$WORK/$name.sig" || fail "$name: engine sign failed"
    [[ -s $WORK/$name.sig ]] || fail "$name: empty signature"

    # Plain OpenSSL (default provider, no engine) is the judge.
    (unset OPENSSL_ENGINES SIMACCEL_OPTS
        run "$OPENSSL" pkeyutl -verify -pubin -inkey "$WORK/$name.pub" "${opts[@]}" \
            -in "$WORK/msg.sha256" -sigfile "$WORK/$name.sig") ||
        fail "$name: stock OpenSSL rejects the engine's signature"

    cp "$WORK/$name.sig" "$WORK/$name.bad"
    local size
    size=$(stat -c %s "$WORK/$name.bad")
    flip_byte "$WORK/$name.bad" $((size / 2))
    if (unset OPENSSL_ENGINES SIMACCEL_OPTS
        run "$OPENSSL" pkeyutl -verify -pubin -inkey "$WORK/$name.pub" "${opts[@]}" \
            -in "$WORK/msg.sha256" -sigfile "$WORK/$name.bad") >/dev/null 2>&1; then
        fail "$name: a signature with a flipped byte verifies"
    fi

    local cls=rsa-priv n
    [[ $kind == ec ]] && cls=ecdsa-sign
    [[ -s $WORK/stats.json ]] || fail "$name: no stats file written at exit"
    n=$(stats_value "$WORK/stats.json" "$cls" completed) || fail "$name: stats"
    ((n >= 1)) || fail "$name: the device did not compute the signature ($cls completed = $n)"
    say "$name: ok ($cls completed: $n)"
}

sign_case rsa-pkcs1 rsa digest:sha256
sign_case rsa-pss rsa digest:sha256 rsa_padding_mode:pss rsa_pss_saltlen:32
sign_case ecdsa-p256 ec digest:sha256
say "ok"
