#!/usr/bin/env bash
# `openssl pkeyutl -sign` through the front end given as argument (RSA PKCS#1, RSA-PSS, ECDSA
# P-256; with the provider Ed25519 too) makes signatures that stock OpenSSL verifies and rejects
# with a flipped byte; the device's stats show every private-key operation. Through the
# provider, which also makes the keys, `pkeyutl -verify` agrees and `pkeyutl -decrypt` (RSA
# PKCS#1, OAEP) recovers what stock OpenSSL encrypted.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/frontend_lib.sh"
use_frontend "${1:?usage: pkeyutl.sh engine|provider}"
require_python

kinds=(rsa ec)
keys=plain
if [[ $FRONTEND == provider ]]; then
    kinds+=(ed25519)
    keys=prov
fi
head -c 1000 /dev/urandom >"$WORK/msg"
plain dgst -sha256 -binary -out "$WORK/msg.sha256" "$WORK/msg" || fail "dgst"
for kind in "${kinds[@]}"; do
    gen_key "$kind" "$WORK/$kind.key" "$keys"
    plain pkey -in "$WORK/$kind.key" -pubout -out "$WORK/$kind.pub" || fail "$kind: pubout"
done

# verifies WHO KIND INPUT SIG PKEYUTL-OPTS...: WHO (plain or fe_openssl) accepts SIG.
verifies() {
    local who=$1 kind=$2 in=$3 sig=$4
    shift 4
    "$who" pkeyutl -verify -pubin -inkey "$WORK/$kind.pub" "$@" -in "$in" -sigfile "$sig"
}

# sign_case NAME KIND CLASS INPUT PKEYUTL-OPTS...
sign_case() {
    local name=$1 kind=$2 cls=$3 in=$4
    shift 4
    local -a opts=("$@")
    local stats=$WORK/$name.stats.json sig=$WORK/$name.sig
    SIMACCEL_OPTS="stats-file=$stats" fe_openssl pkeyutl -sign -inkey "$WORK/$kind.key" \
        "${opts[@]}" -in "$in" -out "$sig" || fail "$name: sign through the $FRONTEND failed"
    [[ -s $sig ]] || fail "$name: empty signature"
    expect_completed "$stats" "$cls"

    verifies plain "$kind" "$in" "$sig" "${opts[@]}" ||
        fail "$name: stock OpenSSL rejects the $FRONTEND's signature"
    cp "$sig" "$WORK/$name.bad"
    flip_byte "$WORK/$name.bad" $(($(stat -c %s "$sig") / 2))
    if verifies plain "$kind" "$in" "$WORK/$name.bad" "${opts[@]}" >/dev/null 2>&1; then
        fail "$name: a signature with a flipped byte verifies with stock OpenSSL"
    fi
    if [[ $FRONTEND == provider ]]; then
        verifies fe_openssl "$kind" "$in" "$sig" "${opts[@]}" ||
            fail "$name: the provider rejects its own signature"
        if verifies fe_openssl "$kind" "$in" "$WORK/$name.bad" "${opts[@]}" >/dev/null 2>&1; then
            fail "$name: a signature with a flipped byte verifies through the provider"
        fi
    fi
    say "$name: ok"
}

sign_case rsa-pkcs1 rsa rsa-priv "$WORK/msg.sha256" -pkeyopt digest:sha256
sign_case rsa-pss rsa rsa-priv "$WORK/msg.sha256" -pkeyopt digest:sha256 \
    -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32
sign_case ecdsa-p256 ec ecdsa-sign "$WORK/msg.sha256" -pkeyopt digest:sha256
if [[ $FRONTEND == engine ]]; then
    say "ok"
    exit 0
fi
# EdDSA signs the message itself (one-shot DigestSign).
sign_case ed25519 ed25519 ed25519 "$WORK/msg" -rawin

# decrypt_case NAME PKEYUTL-OPTS...
decrypt_case() {
    local name=$1
    shift
    local stats=$WORK/$name.stats.json
    head -c 32 /dev/urandom >"$WORK/$name.pt"
    plain pkeyutl -encrypt -pubin -inkey "$WORK/rsa.pub" "$@" -in "$WORK/$name.pt" \
        -out "$WORK/$name.ct" || fail "$name: encrypt"
    SIMACCEL_OPTS="stats-file=$stats" fe_openssl pkeyutl -decrypt -inkey "$WORK/rsa.key" "$@" \
        -in "$WORK/$name.ct" -out "$WORK/$name.out" || fail "$name: decrypt through the provider failed"
    cmp -s "$WORK/$name.pt" "$WORK/$name.out" || fail "$name: decrypted text differs"
    expect_completed "$stats" rsa-priv
    say "$name: ok"
}
decrypt_case rsa-pkcs1-decrypt -pkeyopt rsa_padding_mode:pkcs1
decrypt_case rsa-oaep-decrypt -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256
say "ok"
