#!/usr/bin/env bash
# SIMACCEL_OPTS is read with secure_getenv: a setuid program ignores it, so the user who runs one
# cannot choose what a privileged process does (where its stats file goes). The same program
# without the setuid bit takes it. Needs root (to make a root-owned setuid copy), setpriv and a
# directory on a file system mounted without nosuid; skips (77) without them.
set -euo pipefail
probe=${1:?usage: secure_env.sh PROBE}
say() { printf 'secure_env: %s\n' "$*" >&2; }
skip() {
    say "SKIP: $*"
    exit 77
}
fail() {
    say "FAIL: $*"
    exit 1
}

[[ $(id -u) == 0 ]] || skip "needs root to make a root-owned setuid copy of the probe"
command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
id nobody >/dev/null 2>&1 || skip "no user 'nobody' to run the probe as"
group=$(id -gn nobody)

# A directory the unprivileged user can reach, on a file system that honours the setuid bit.
work=
for base in "${TMPDIR:-/tmp}" /var/tmp "$(dirname "$probe")"; do
    [[ -d $base ]] || continue
    if findmnt -n -o OPTIONS --target "$base" 2>/dev/null | tr ',' '\n' | grep -qx nosuid; then
        continue
    fi
    work=$(mktemp -d "$base/simaccel-secure-env.XXXXXX") || continue
    break
done
[[ -n $work ]] || skip "no directory outside a nosuid mount (tried ${TMPDIR:-/tmp}, /var/tmp, $(dirname "$probe"))"
trap 'rm -rf "$work"' EXIT
chmod 755 "$work"
install -o root -g root -m 4755 "$probe" "$work/probe-setuid"
install -o root -g root -m 0755 "$probe" "$work/probe-plain"

opts="max-retries=7 stats-file=$work/chosen-by-the-user.json"
as_nobody() {
    env -i PATH=/usr/bin:/bin SIMACCEL_OPTS="$opts" \
        setpriv --reuid=nobody --regid="$group" --clear-groups "$@"
}

plain=$(as_nobody "$work/probe-plain") || fail "the plain probe failed: $plain"
say "plain: $plain"
grep -q '"max-retries":"7"' <<<"$plain" || fail "the plain program did not take SIMACCEL_OPTS"

setuid=$(as_nobody "$work/probe-setuid") || fail "the setuid probe failed: $setuid"
say "setuid: $setuid"
grep -Eq '^uid=[1-9][0-9]* euid=0$' <<<"$setuid" || fail "the copy did not run setuid root: $setuid"
grep -q '"max-retries":"0"' <<<"$setuid" || fail "the setuid program took SIMACCEL_OPTS: $setuid"
grep -q '"stats-file":"none"' <<<"$setuid" || fail "the setuid program took stats-file: $setuid"
say "ok"
