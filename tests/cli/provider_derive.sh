#!/usr/bin/env bash
# `openssl pkeyutl -derive` through the provider (X25519, ECDH P-256) gives the same shared
# secret as stock OpenSSL (default provider only) derives from the other side, and the device's
# stats show the exchange.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/frontend_lib.sh"
require_provider
require_python

# derive_case KIND CLASS: our key made by the provider, the peer's by stock OpenSSL.
derive_case() {
    local kind=$1 cls=$2 d=$WORK/$1 stats=$WORK/$1.stats.json
    mkdir -p "$d"
    gen_key "$kind" "$d/ours.key"
    gen_key "$kind" "$d/peer.key" plain
    plain pkey -in "$d/ours.key" -pubout -out "$d/ours.pub" || fail "$kind: pubout"
    plain pkey -in "$d/peer.key" -pubout -out "$d/peer.pub" || fail "$kind: pubout"

    SIMACCEL_OPTS="stats-file=$stats" prov pkeyutl -derive -inkey "$d/ours.key" \
        -peerkey "$d/peer.pub" -out "$d/ours.secret" || fail "$kind: derive through the provider failed"
    plain pkeyutl -derive -inkey "$d/peer.key" -peerkey "$d/ours.pub" -out "$d/peer.secret" ||
        fail "$kind: stock derive failed"
    [[ -s $d/ours.secret ]] || fail "$kind: empty secret"
    cmp -s "$d/ours.secret" "$d/peer.secret" ||
        fail "$kind: the provider's secret differs from stock OpenSSL's"
    expect_completed "$stats" "$cls"

    # A different peer gives a different secret (the comparison above can fail).
    gen_key "$kind" "$d/other.key" plain
    plain pkey -in "$d/other.key" -pubout -out "$d/other.pub" || fail "$kind: pubout"
    prov pkeyutl -derive -inkey "$d/ours.key" -peerkey "$d/other.pub" -out "$d/other.secret" ||
        fail "$kind: second derive failed"
    cmp -s "$d/ours.secret" "$d/other.secret" && fail "$kind: two peers, one secret"
    say "$kind: ok ($(stat -c %s "$d/ours.secret")-byte secret)"
}

derive_case x25519 x25519
derive_case ec ecdh
say "ok"
