#!/usr/bin/env bash
# `openssl pkeyutl -sign` through the provider (RSA PKCS#1, RSA-PSS, ECDSA P-256, Ed25519) makes
# signatures stock OpenSSL verifies and rejects with a flipped byte; `pkeyutl -verify` through
# the provider agrees; `pkeyutl -decrypt` (RSA PKCS#1, OAEP) recovers what stock OpenSSL
# encrypted. The device's stats show every private-key operation.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/provider_lib.sh"
require_provider
require_python

head -c 1000 /dev/urandom >"$WORK/msg"
plain dgst -sha256 -binary -out "$WORK/msg.sha256" "$WORK/msg" || fail "dgst"
for kind in rsa ec ed25519; do
    gen_key "$kind" "$WORK/$kind.key"
    plain pkey -in "$WORK/$kind.key" -pubout -out "$WORK/$kind.pub" || fail "$kind: pubout"
done

# sign_case NAME KIND CLASS INPUT PKEYUTL-OPTS...
sign_case() {
    local name=$1 kind=$2 cls=$3 in=$4
    shift 4
    local -a opts=("$@")
    local stats=$WORK/$name.stats.json sig=$WORK/$name.sig
    SIMACCEL_OPTS="stats-file=$stats" prov pkeyutl -sign -inkey "$WORK/$kind.key" "${opts[@]}" \
        -in "$in" -out "$sig" || fail "$name: sign through the provider failed"
    [[ -s $sig ]] || fail "$name: empty signature"
    expect_completed "$stats" "$cls"

    plain pkeyutl -verify -pubin -inkey "$WORK/$kind.pub" "${opts[@]}" -in "$in" -sigfile "$sig" ||
        fail "$name: stock OpenSSL rejects the provider's signature"
    prov pkeyutl -verify -pubin -inkey "$WORK/$kind.pub" "${opts[@]}" -in "$in" -sigfile "$sig" ||
        fail "$name: the provider rejects its own signature"

    cp "$sig" "$WORK/$name.bad"
    flip_byte "$WORK/$name.bad" $(($(stat -c %s "$sig") / 2))
    if plain pkeyutl -verify -pubin -inkey "$WORK/$kind.pub" "${opts[@]}" -in "$in" \
        -sigfile "$WORK/$name.bad" >/dev/null 2>&1; then
        fail "$name: a signature with a flipped byte verifies with stock OpenSSL"
    fi
    if prov pkeyutl -verify -pubin -inkey "$WORK/$kind.pub" "${opts[@]}" -in "$in" \
        -sigfile "$WORK/$name.bad" >/dev/null 2>&1; then
        fail "$name: a signature with a flipped byte verifies through the provider"
    fi
    say "$name: ok"
}

sign_case rsa-pkcs1 rsa rsa-priv "$WORK/msg.sha256" -pkeyopt digest:sha256
sign_case rsa-pss rsa rsa-priv "$WORK/msg.sha256" -pkeyopt digest:sha256 \
    -pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32
sign_case ecdsa-p256 ec ecdsa-sign "$WORK/msg.sha256" -pkeyopt digest:sha256
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
    SIMACCEL_OPTS="stats-file=$stats" prov pkeyutl -decrypt -inkey "$WORK/rsa.key" "$@" \
        -in "$WORK/$name.ct" -out "$WORK/$name.out" || fail "$name: decrypt through the provider failed"
    cmp -s "$WORK/$name.pt" "$WORK/$name.out" || fail "$name: decrypted text differs"
    expect_completed "$stats" rsa-priv
    say "$name: ok"
}
decrypt_case rsa-pkcs1-decrypt -pkeyopt rsa_padding_mode:pkcs1
decrypt_case rsa-oaep-decrypt -pkeyopt rsa_padding_mode:oaep -pkeyopt rsa_oaep_md:sha256
say "ok"
