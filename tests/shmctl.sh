#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# shmctl end to end: real pools in a private directory on /dev/shm, made
# and crashed by tests/shm-child.
. "$top_srcdir/tests/tap.sh"
SHMCTL="$top_builddir/tools/shmctl"
CHILD="$top_builddir/tests/shm-child"
D=$(mktemp -d /dev/shm/memkit-shmctl-XXXXXX)
trap 'rm -rf "$D"; [ -n "$HOLD" ] && kill $HOLD 2>/dev/null' EXIT
plan 30

# status "description" expected-status command...
status() {
	desc=$1 want=$2; shift 2
	out=$("$@" 2>&1); got=$?
	if [ "$got" = "$want" ]; then ok "$desc"; else fail "$desc (exit $got, want $want)"; printf '%s\n' "$out" | diag; fi
}
# has "description" pattern command...: exit 0 and output matches
has() {
	desc=$1 pat=$2; shift 2
	if out=$("$@" 2>&1) && printf '%s\n' "$out" | grep -q -- "$pat"; then ok "$desc"
	else fail "$desc"; printf '%s\n' "$out" | diag; fi
}

has "--help lists the commands" "gc .*remove pools" "$SHMCTL" --help
has "--version" "^shmctl (memkit) " "$SHMCTL" --version
status "no command is a usage error" 2 "$SHMCTL"
status "unknown command" 2 "$SHMCTL" frob
status "unknown option" 2 "$SHMCTL" --frob list
status "stat needs a pool" 2 "$SHMCTL" stat
status "rm needs a pool" 2 "$SHMCTL" rm
status "--dry-run only with gc" 2 "$SHMCTL" --dry-run list
err=$("$SHMCTL" frob 2>&1 >/dev/null | head -1)
[ "$err" = "shmctl: unknown command 'frob'" ] && ok "one-line error" || fail "one-line error: $err"
status "missing directory" 1 "$SHMCTL" --dir /nonexistent-memkit list

has "empty directory lists nothing" "^POOL" "$SHMCTL" --dir "$D" list
has "empty --json" '"pools": \[\]' "$SHMCTL" --dir "$D" list --json

check "create pool A" "$CHILD" create "$D" A 5
has "list shows A idle" "^A .*idle" "$SHMCTL" --dir "$D" list
has "list shows its chunk" "chunk 0 .*regular" "$SHMCTL" --dir "$D" list
has "stat A" "in use .* in 5 blocks" "$SHMCTL" --dir "$D" stat A
has "stat A --json" '"blocks_used": 5' "$SHMCTL" --dir "$D" stat A --json
has "gc leaves an idle pool" "" "$SHMCTL" --dir "$D" gc
[ -e "$D/memkit-shm.A" ] && ok "A still there" || fail "A still there"

"$CHILD" leak "$D" A 3
has "a crashed user shows as dead" "^A .*dead" "$SHMCTL" --dir "$D" list
has "gc --dry-run says it would remove A" "would remove A" "$SHMCTL" --dir "$D" gc --dry-run
[ -e "$D/memkit-shm.A" ] && ok "dry run removed nothing" || fail "dry run removed nothing"
has "gc --json removes A" '"action": "remove"' "$SHMCTL" --dir "$D" gc --json
ls "$D" | grep -q '^memkit-shm\.A' && fail "A's files gone" || ok "A's files gone"

: > "$D/memkit-shm.orph.3.deadbeef"
has "orphan chunk file listed" "^orph .*orphan" "$SHMCTL" --dir "$D" list
has "gc removes the orphan" "removed orph" "$SHMCTL" --dir "$D" gc

"$CHILD" create "$D" B 2
"$CHILD" hold "$D" B 30 & HOLD=$!
sleep 0.3
"$CHILD" leak "$D" B 10
has "gc reclaims a dead user's blocks in a live pool" "reclaimed 10 blocks in B" "$SHMCTL" --dir "$D" gc
kill $HOLD; wait $HOLD 2>/dev/null; HOLD=

check "rm B" "$SHMCTL" --dir "$D" rm B
err=$("$SHMCTL" --dir "$D" rm B 2>&1); st=$?
[ $st = 1 ] && [ "$err" = "shmctl: B: No such file or directory" ] && ok "rm of a missing pool fails" || { fail "rm of a missing pool fails ($st)"; echo "$err" | diag; }

head -c 8192 /dev/urandom > "$D/memkit-shm.junk"
status "stat of a damaged pool fails" 1 "$SHMCTL" --dir "$D" stat junk
finish
