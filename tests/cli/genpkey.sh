#!/usr/bin/env bash
# `openssl genpkey` through the front end given (engine: EC; provider: EC, X25519, X448,
# ffdhe2048) generates the key on the device (the stats say so), and stock OpenSSL (default
# provider only) accepts it: `pkey -check` passes and it agrees on a shared secret with a key
# stock OpenSSL made.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/frontend_lib.sh"
require_python
use_frontend "${1:?usage: genpkey.sh engine|provider}"

# genpkey_case KIND CLASS: our key by the front end, checked and used by stock OpenSSL.
genpkey_case() {
    local kind=$1 cls=$2 d=$WORK/$1 stats=$WORK/$1.stats.json
    mkdir -p "$d"
    key_args "$kind"
    SIMACCEL_OPTS="stats-file=$stats" fe_openssl genpkey -quiet "${KEY_ARGS[@]}" -out "$d/ours.key" ||
        fail "$kind: genpkey through the $FRONTEND failed"
    expect_completed "$stats" "$cls"
    plain pkey -in "$d/ours.key" -check -noout || fail "$kind: stock OpenSSL rejects the key"
    plain pkey -in "$d/ours.key" -pubcheck -noout || fail "$kind: stock OpenSSL rejects the public key"

    # Pairwise: the secret of ours with a stock peer equals the peer's with our public key.
    plain genpkey -quiet "${KEY_ARGS[@]}" -out "$d/peer.key" || fail "$kind: stock genpkey"
    plain pkey -in "$d/ours.key" -pubout -out "$d/ours.pub" || fail "$kind: pubout"
    plain pkey -in "$d/peer.key" -pubout -out "$d/peer.pub" || fail "$kind: pubout"
    plain pkeyutl -derive -inkey "$d/ours.key" -peerkey "$d/peer.pub" -out "$d/a.secret" ||
        fail "$kind: derive with our key"
    plain pkeyutl -derive -inkey "$d/peer.key" -peerkey "$d/ours.pub" -out "$d/b.secret" ||
        fail "$kind: derive with the stock key"
    [[ -s $d/a.secret ]] || fail "$kind: empty secret"
    cmp -s "$d/a.secret" "$d/b.secret" || fail "$kind: the key's halves do not match"

    # Two generations, two keys.
    fe_openssl genpkey -quiet "${KEY_ARGS[@]}" -out "$d/second.key" || fail "$kind: second genpkey"
    cmp -s <(plain pkey -in "$d/ours.key" -pubout) <(plain pkey -in "$d/second.key" -pubout) &&
        fail "$kind: two generations gave the same key"
    say "$kind: ok"
}

genpkey_case ec ec-keygen
genpkey_case ec384 ec-keygen
if [[ $FRONTEND == provider ]]; then
    genpkey_case ec521 ec-keygen
    genpkey_case x25519 x25519-keygen
    genpkey_case x448 x448-keygen
    genpkey_case ffdhe2048 dh-keygen
fi
say "ok"
