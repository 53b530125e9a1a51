#!/usr/bin/env bash
# With conf/simaccel-provider.cnf, `openssl genpkey` makes RSA, EC P-256 and Ed25519 keys and
# `openssl req -new -x509` self-signs them on the device; `openssl x509` reads the certificates
# and stock `openssl verify -check_ss_sig` (default provider only) accepts them and refuses
# them with a damaged signature.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/frontend_lib.sh"
require_provider
require_python

# case KIND CLASS SIGALG: the op class that signs, and the signature algorithm x509 prints.
cert_case() {
    local kind=$1 cls=$2 sigalg=$3
    local key=$WORK/$kind.key crt=$WORK/$kind.crt stats=$WORK/$kind.stats.json
    gen_key "$kind" "$key"
    plain pkey -in "$key" -noout || fail "$kind: stock OpenSSL cannot read the provider's key"

    SIMACCEL_OPTS="stats-file=$stats" prov req -new -x509 -key "$key" -out "$crt" -days 2 \
        -subj "/CN=simaccel $kind" || fail "$kind: req -new -x509 failed"
    expect_completed "$stats" "$cls"

    local text
    text=$(prov x509 -in "$crt" -noout -subject -text) || fail "$kind: x509 cannot read the certificate"
    grep -q "CN *= *simaccel $kind" <<<"$text" || fail "$kind: wrong subject"
    grep -Eiq "Signature Algorithm: *$sigalg" <<<"$text" ||
        fail "$kind: expected signature algorithm $sigalg"

    plain verify -check_ss_sig -CAfile "$crt" "$crt" >/dev/null || fail "$kind: stock OpenSSL rejects the certificate"
    prov verify -check_ss_sig -CAfile "$crt" "$crt" >/dev/null || fail "$kind: verify with the provider fails"

    # A certificate whose signature has a flipped byte is refused (-check_ss_sig: a trust
    # anchor's own signature is not checked otherwise). Its last bytes in DER are the signature's.
    plain x509 -in "$crt" -outform DER -out "$WORK/$kind.der" || fail "$kind: to DER"
    local size
    size=$(stat -c %s "$WORK/$kind.der")
    flip_byte "$WORK/$kind.der" $((size - 8))
    plain x509 -inform DER -in "$WORK/$kind.der" -out "$WORK/$kind.bad.crt" || fail "$kind: from DER"
    if plain verify -check_ss_sig -CAfile "$WORK/$kind.bad.crt" "$WORK/$kind.bad.crt" >/dev/null 2>&1; then
        fail "$kind: a certificate with a damaged signature verifies"
    fi
    say "$kind: ok"
}

cert_case rsa rsa-priv sha256WithRSAEncryption
cert_case ec ecdsa-sign ecdsa-with-SHA256
cert_case ed25519 ed25519 ED25519
say "ok"
