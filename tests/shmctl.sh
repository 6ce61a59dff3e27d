#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# shmctl end to end: real pools in a private directory on /dev/shm, made
# and crashed by tests/shm-child; as root also another user's pool; JSON
# parsed back with python3's strict parser, a hostile file name included.
. "$top_srcdir/tests/tap.sh"
SHMCTL="$top_builddir/tools/shmctl"
CHILD="$top_builddir/tests/shm-child"
D=$(mktemp -d /dev/shm/memkit-shmctl-XXXXXX)
trap 'rm -rf "$D"; [ -n "$HOLD" ] && kill $HOLD 2>/dev/null' EXIT
plan 88

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
has "--version names the libraries" "^libshm .*libsmartcols " "$SHMCTL" --version
has "--version has a licence line" "^License GPL-2.0-or-later" "$SHMCTL" --version
# json_ok FILE EXPR: EXPR over d (the parsed document) is true
json_ok() {
	python3 -c 'import json, sys
d = json.loads(open(sys.argv[1], "rb").read())
sys.exit(0 if eval(sys.argv[2]) else 1)' "$@"
}
T=$(mktemp -d "${TMPDIR:-/tmp}/shmctl-test.XXXXXX")
trap 'rm -rf "$D" "$T"; [ -n "$HOLD" ] && kill $HOLD 2>/dev/null' EXIT
status "no command is a usage error" 2 "$SHMCTL"
status "unknown command" 2 "$SHMCTL" frob
status "unknown option" 2 "$SHMCTL" --frob list
status "stat needs a pool" 2 "$SHMCTL" stat
status "rm needs a pool" 2 "$SHMCTL" rm
status "--dry-run only with gc" 2 "$SHMCTL" --dry-run list
err=$("$SHMCTL" frob 2>&1 >/dev/null)
[ "$err" = "shmctl: unknown command 'frob' (see 'shmctl --help')" ] && ok "a usage error is one line" || fail "one-line error: $err"
status "missing directory" 1 "$SHMCTL" --dir /nonexistent-memkit list

out=$("$SHMCTL" --dir "$D" list 2>&1); st=$?
[ $st = 0 ] && [ "$out" = "POOL BACKEND STATE OWNER CHUNKS USERS DEAD SIZE USED HOLDERS" ] &&
	ok "empty directory: the heading, no rows" || { fail "empty directory: the heading ($st)"; echo "$out" | diag; }
out=$("$SHMCTL" --dir "$D" list --raw -o POOL,USED 2>&1)
[ "$out" = "POOL USED" ] && ok "empty directory, --raw -o: the heading of those columns" || { fail "empty --raw heading"; echo "$out" | diag; }
out=$("$SHMCTL" --dir "$D" list --noheadings 2>&1)
[ -z "$out" ] && ok "empty directory, --noheadings: nothing" || { fail "empty --noheadings"; echo "$out" | diag; }
has "empty --json" '"pools": \[\]' "$SHMCTL" --dir "$D" list --json
"$SHMCTL" --dir "$D" list -J > "$T/empty.json"
check "empty -J parses, schema 1" json_ok "$T/empty.json" 'd["schema"] == 1 and d["pools"] == []' 

check "create pool A" "$CHILD" create "$D" A 5
has "list shows A idle" "^A .*idle" "$SHMCTL" --dir "$D" list
has "list --chunks shows its chunk (its creator exited)" "#0 .*dead" "$SHMCTL" --dir "$D" list --chunks -o POOL,STATE,KIND
has "list --chunks: chunk kind" "#0 .*regular" "$SHMCTL" --dir "$D" list --chunks -o POOL,STATE,KIND
has "--noheadings" "^A " "$SHMCTL" --dir "$D" list --noheadings
out=$("$SHMCTL" --dir "$D" list --noheadings --raw --bytes -o POOL,STATE,FILES,SIZE)
[ "$out" = "A idle 2 1048576" ] && ok "--raw --bytes -o POOL,STATE,FILES,SIZE" || { fail "--raw --bytes -o"; echo "$out" | diag; }
has "sizes are human without --bytes" "^A .* 1M" "$SHMCTL" --dir "$D" list -o POOL,SIZE
# raw output never leaves an empty cell: every line splits into as many fields as the heading
"$SHMCTL" --dir "$D" list --raw --chunks -o POOL,STATE,KIND,PID,USERS,HOLDERS > "$T/raw.txt"
if awk 'NR == 1 { n = NF } NF != n || / $/ || /  / { bad = 1 } END { exit bad || NR < 3 }' "$T/raw.txt" &&
	grep -q '^A idle - - 0 -$' "$T/raw.txt" && grep -q '^#0 dead regular [0-9][0-9]* - -$' "$T/raw.txt"; then
	ok "--raw: '-' for every value a row has not, the columns never shift"; else
	fail "--raw empty cells"; diag < "$T/raw.txt"; fi
has "-o +DISK adds to the defaults" "^POOL .*USED .*DISK" "$SHMCTL" --dir "$D" list -o +DISK
status "unknown column is a usage error" 2 "$SHMCTL" --dir "$D" list -o POOL,NOPE
status "--raw only with list" 2 "$SHMCTL" --dir "$D" --raw stat A
"$SHMCTL" --dir "$D" list -J --chunks > "$T/a.json"
check "list -J --chunks: fields" json_ok "$T/a.json" \
	'(p := d["pools"][0])["pool"] == "A" and p["state"] == "idle" and p["chunks"] == 1 and p["mapped_bytes"] == 1 << 20 and p["chunk_list"][0]["kind"] == "regular"'
"$SHMCTL" --dir "$D" list -J -o POOL,DISK > "$T/b.json"
check "list -J follows --output" json_ok "$T/b.json" 'list(d["pools"][0]) == ["pool", "file_bytes"]' 
has "stat A" "in use .* in 5 blocks" "$SHMCTL" --dir "$D" stat A
has "stat A --json" '"blocks_used": 5' "$SHMCTL" --dir "$D" stat A --json
"$SHMCTL" --dir "$D" stat -J A > "$T/s.json"
check "stat -J parses with list's field names" json_ok "$T/s.json" \
	'd["schema"] == 1 and d["pool"] == "A" and d["blocks_used"] == 5 and "mapped_bytes" in d and "used_bytes" in d' 
has "gc leaves an idle pool" "" "$SHMCTL" --dir "$D" gc
[ -e "$D/memkit-shm.A" ] && ok "A still there" || fail "A still there"

"$CHILD" leak "$D" A 3
has "a crashed user shows as dead" "^A .*dead" "$SHMCTL" --dir "$D" list
has "gc --dry-run says it would remove A" "would remove A" "$SHMCTL" --dir "$D" gc --dry-run
[ -e "$D/memkit-shm.A" ] && ok "dry run removed nothing" || fail "dry run removed nothing"
# the bytes A's files occupy, as stat(1) counts them
bytes=0; nfiles=0
for f in "$D"/memkit-shm.A*; do bytes=$((bytes + $(stat -c '%b * %B' "$f"))); nfiles=$((nfiles + 1)); done
"$SHMCTL" --dir "$D" gc -n -J > "$T/dry.json"
check "gc -n -J: the plan, with the files' exact bytes" json_ok "$T/dry.json" \
	"d['dry_run'] and d['actions'] == [{'pool': 'A', 'action': 'remove', 'result': 'planned', 'reason': 'every process that used it is dead', 'files': $nfiles, 'file_bytes': $bytes}]"
"$SHMCTL" --dir "$D" gc --json > "$T/gc.json"
check "gc --json did what the dry run said" json_ok "$T/gc.json" \
	"not d['dry_run'] and [dict(a, result='planned') for a in d['actions']] == json.load(open('$T/dry.json'))['actions']"
ls "$D" | grep -q '^memkit-shm\.A' && fail "A's files gone" || ok "A's files gone"

: > "$D/memkit-shm.orph.3.deadbeef"
has "orphan chunk file listed" "^orph .*orphan" "$SHMCTL" --dir "$D" list
has "gc removes the orphan" "removed orph" "$SHMCTL" --dir "$D" gc

# gc judges again right before removing: a pool replaced (same name, new
# files) or revived (a process attached) after the first look stays.
"$CHILD" create "$D" R 2; "$CHILD" leak "$D" R 1
MEMKIT_SHMCTL_GC_PAUSE=1500 "$SHMCTL" --dir "$D" gc -J > "$T/race1.json" & GC=$!
sleep 0.5
"$SHMCTL" --dir "$D" rm R && "$CHILD" create "$D" R 3
ino=$(stat -c %i "$D/memkit-shm.R")
wait $GC
check "gc skips a pool replaced since it judged it" json_ok "$T/race1.json" \
	"[(a['pool'], a['result']) for a in d['actions']] == [('R', 'skipped')]"
[ "$(stat -c %i "$D/memkit-shm.R" 2>/dev/null)" = "$ino" ] && ok "the newer pool R is intact" || fail "the newer pool R is intact"
has "the newer R still holds its 3 blocks" "in use .* in 3 blocks" "$SHMCTL" --dir "$D" stat R
"$CHILD" leak "$D" R 1
MEMKIT_SHMCTL_GC_PAUSE=1500 "$SHMCTL" --dir "$D" gc -J > "$T/race2.json" & GC=$!
sleep 0.5
"$CHILD" hold "$D" R 30 & HOLD=$!
wait $GC
check "gc skips a dead pool a process attached to meanwhile" json_ok "$T/race2.json" \
	"[(a['pool'], a['result']) for a in d['actions']] == [('R', 'skipped')]"
[ -e "$D/memkit-shm.R" ] && ok "revived R kept" || fail "revived R kept"
kill $HOLD; wait $HOLD 2>/dev/null; HOLD=
"$SHMCTL" --dir "$D" rm R

"$CHILD" create "$D" B 2
"$CHILD" hold "$D" B 30 & HOLD=$!
sleep 0.3
"$CHILD" leak "$D" B 10
has "gc -n: would reclaim in B" "would reclaim in B (some processes died attached: 1 dead)" "$SHMCTL" --dir "$D" gc -n
has "gc reclaims a dead user's blocks in a live pool" "reclaimed 10 blocks ([1-9][0-9]* bytes) in B" "$SHMCTL" --dir "$D" gc
kill $HOLD; wait $HOLD 2>/dev/null; HOLD=

check "rm B" "$SHMCTL" --dir "$D" rm B
err=$("$SHMCTL" --dir "$D" rm B 2>&1); st=$?
[ $st = 1 ] && [ "$err" = "shmctl: B: no such pool" ] && ok "rm of a missing pool: no such pool" || { fail "rm of a missing pool fails ($st)"; echo "$err" | diag; }
err=$("$SHMCTL" --dir "$D" stat B 2>&1); st=$?
[ $st = 1 ] && [ "$err" = "shmctl: B: no such pool" ] && ok "stat of an unknown pool: no such pool" || { fail "stat of an unknown pool ($st)"; echo "$err" | diag; }

head -c 8192 /dev/urandom > "$D/memkit-shm.junk"
status "stat of a damaged pool fails" 1 "$SHMCTL" --dir "$D" stat junk
rm -f "$D/memkit-shm.junk"

# A hostile name: quotes that would inject a "state" key, a backslash, control
# bytes and invalid UTF-8. Not a name libshm makes: listed as bad-name, never removed.
H=$(printf 'inj", "state": "alive\\x\001\033[2J\377\342\202')
printf '%s' "$H" > "$T/hname"
: > "$D/memkit-shm.$H"
"$SHMCTL" --dir "$D" list -J > "$T/h.json"; st=$?
[ $st = 0 ] && ok "list with a hostile name exits 0" || fail "list with a hostile name exits 0 ($st)"
check "the hostile name round-trips (U+FFFD per bad sequence), one state key" json_ok "$T/h.json" \
	"[p['pool'] for p in d['pools']] == [open('$T/hname', 'rb').read().decode('utf-8', 'replace')] and d['pools'][0]['state'] == 'bad-name'"
python3 -c 'import json, sys
pairs = []
json.loads(open(sys.argv[1], "rb").read(), object_pairs_hook=lambda p: pairs.append([k for k, v in p]) or dict(p))
sys.exit(0 if all(len(k) == len(set(k)) for k in pairs) else 1)' "$T/h.json" && ok "no duplicate keys (no injection)" || fail "no duplicate keys"
"$SHMCTL" --dir "$D" list > "$T/h.txt"
check "text table escapes control bytes" sh -c "! grep -q \"\$(printf '[\\001\\033]')\" '$T/h.txt' && grep -qF '\\x1b[2J' '$T/h.txt'"
"$SHMCTL" --dir "$D" gc > /dev/null
[ -e "$D/memkit-shm.$H" ] && ok "gc leaves a bad name alone" || fail "gc leaves a bad name alone"
status "stat of a hostile name fails cleanly" 1 "$SHMCTL" --dir "$D" stat "$H"
err=$("$SHMCTL" --dir "$D" stat "$H" 2>&1)
case $err in *"$(printf '\033')"*) fail "error escapes the name";; *'\x1b[2J'*) ok "error escapes the name";; *) fail "error escapes the name"; echo "$err" | diag;; esac
rm -f "$D/memkit-shm.$H"
# a directory whose name holds a quote, a backslash and a newline: "dir" stays one valid string
Q="$D/q\"d\\
ir"
mkdir "$Q" && "$CHILD" create "$Q" inq 1
"$SHMCTL" --dir "$Q" list -J > "$T/q.json"
check "a hostile --dir round-trips through list -J" json_ok "$T/q.json" \
	"d['dir'] == sys.argv[3] and [p['pool'] for p in d['pools']] == ['inq']" "$Q"
"$SHMCTL" --dir "$Q" gc -n -J > "$T/qgc.json"
check "and through gc -J" json_ok "$T/qgc.json" "d['dir'] == sys.argv[3] and d['actions'] == []" "$Q"
rm -rf "$Q"

# Another user's pools, inspected by root as they are (read-only), and gc acting as their owner.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	chmod 1777 "$D"
	asnobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
	asnobody "$CHILD" create "$D" N 3
	owner=$(stat -c %u "$D/memkit-shm.N")
	[ "$owner" = 65534 ] && ok "a pool made by uid 65534" || fail "a pool made by uid 65534 ($owner)"
	has "root lists it idle, not damaged" "^N .*idle" "$SHMCTL" --dir "$D" list -o POOL,STATE
	has "root stats it" "in use .* in 3 blocks" "$SHMCTL" --dir "$D" stat N
	"$SHMCTL" --dir "$D" list -J > "$T/n.json"
	check "its owner in JSON" json_ok "$T/n.json" 'd["pools"][0]["state"] == "idle" and d["pools"][0]["owner"] != "root"'
	status "root's gc of a multi-user directory exits 0" 0 "$SHMCTL" --dir "$D" gc
	asnobody "$CHILD" leak "$D" N 2
	has "root's gc removes the dead pool as its owner" "removed N" "$SHMCTL" --dir "$D" gc
	ls "$D" | grep -q '^memkit-shm\.N' && fail "N's files gone" || ok "N's files gone"
	check "root is root again (files it makes are root's)" sh -c "touch '$T/mine' && test \$(stat -c %u '$T/mine') = 0"
	asnobody "$CHILD" create "$D" M 1
	chown 0:0 "$D/memkit-shm.M"* 2>/dev/null
	out=$(asnobody "$SHMCTL" --dir "$D" list -o POOL,STATE 2>&1); st=$?
	[ $st = 0 ] && printf '%s\n' "$out" | grep -q '^M .*foreign' && ok "a user sees root's pool as foreign, exit 0" || { fail "foreign pool"; printf '%s\n' "$out" | diag; }
	rm -f "$D"/memkit-shm.M*
else
	for i in 1 2 3 4 5 6 7 8 9; do skip "needs root and setpriv to make another user's pool"; done
fi

# memfd pools (libshm's default backend) have no file in any directory:
# shmctl finds them through /proc/PID/fd, with the processes holding them.
M="memfd-test-$$"
"$CHILD" memfd-hold "$M" 3 2 > "$T/mf.out" & MF=$!
for i in $(seq 100); do [ -s "$T/mf.out" ] && break; sleep 0.1; done
trap 'rm -rf "$D" "$T"; [ -n "$HOLD" ] && kill $HOLD 2>/dev/null; kill $MF 2>/dev/null' EXIT
# (--pid: other tests' processes may hold pools meanwhile, some damaged on purpose)
has "list (no --dir) shows the memfd pool with its holder" "^$M  *memfd  *alive .* $MF,shm-child,[0-9]" "$SHMCTL" --pid "$MF" list
"$SHMCTL" --pid "$MF" list -J > "$T/mf.json"
check "list --pid -J: the memfd pool, its counts, the process holding it" json_ok "$T/mf.json" \
	"[(p['pool'], p['backend'], p['state'], p['users'], p['users_dead'], p['chunks']) for p in d['pools']] == [('$M', 'memfd', 'alive', 1, 1, 1)] and d['pools'][0]['holders'][0]['pid'] == $MF and d['pools'][0]['holders'][0]['command'] == 'shm-child'"
has "stat of a memfd pool" "in use .* in 5 blocks" "$SHMCTL" --pid "$MF" stat "$M"
"$SHMCTL" --pid "$MF" stat -J "$M" > "$T/mfs.json"
check "stat -J of a memfd pool: backend, holders" json_ok "$T/mfs.json" \
	"d['pool'] == '$M' and d['backend'] == 'memfd' and d['blocks_used'] == 5 and [h['pid'] for h in d['holders']] == [$MF]"
"$SHMCTL" --pid "$MF" list -J --chunks > "$T/mfc.json"
check "list --chunks of a memfd pool" json_ok "$T/mfc.json" "[c['kind'] for c in d['pools'][0]['chunk_list']] == ['regular']"
has "gc --dry-run: would reclaim in the memfd pool" "would reclaim in $M (some processes died attached: 1 dead)" "$SHMCTL" --pid "$MF" gc -n
has "gc reclaims the dead process's blocks in the memfd pool" "reclaimed 2 blocks ([1-9][0-9]* bytes) in $M" "$SHMCTL" --pid "$MF" gc
has "and the pool has its creator's 3 blocks" "in use .* in 3 blocks" "$SHMCTL" --pid "$MF" stat "$M"
out=$("$SHMCTL" --dir "$D" list -o POOL 2>&1)
case $out in *"$M"*) fail "--dir: only that directory's pools"; echo "$out" | diag;; *) ok "--dir: only that directory's pools";; esac
status "--pid of a process holding no pool: stat finds none" 1 "$SHMCTL" --pid 1 stat "$M"
status "--pid must be process IDs" 2 "$SHMCTL" --pid x list
status "--pid does not apply to rm" 2 "$SHMCTL" --pid "$MF" rm "$M"
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	out=$(setpriv --reuid=65534 --regid=65534 --clear-groups "$SHMCTL" --pid "$MF" list 2>"$T/mf.err"); st=$?
	if [ $st = 0 ] && [ "$out" = "POOL BACKEND STATE OWNER CHUNKS USERS DEAD SIZE USED HOLDERS" ] &&
		[ "$(wc -l < "$T/mf.err")" = 1 ] && grep -q "^shmctl: the open files of [0-9]* process.* not readable without root" "$T/mf.err"; then
		ok "without permission: root's memfd pool not shown, said once, exit 0"; else
		fail "without permission ($st)"; { echo "$out"; cat "$T/mf.err"; } | diag; fi
else
	skip "needs root and setpriv to look as another user"
fi
kill $MF; wait $MF 2>/dev/null

# libshm's log hook: silent unless asked; LIBSHM_LOG=debug says why (standard error).
check "create pool L" "$CHILD" create "$D" L 1
chmod 0666 "$D/memkit-shm.L"
err=$(env -u LIBSHM_LOG "$SHMCTL" --dir "$D" stat L 2>&1 >/dev/null)
[ "$err" = "shmctl: L: Operation not permitted" ] && ok "a 0666 pool: one line, libshm itself silent" ||
	{ fail "a 0666 pool without LIBSHM_LOG"; printf '%s\n' "$err" | diag; }
err=$(LIBSHM_LOG=debug "$SHMCTL" --dir "$D" stat L 2>&1 >/dev/null)
printf '%s\n' "$err" | grep -qx 'libshm: pool file: mode 0666, not 0600: -EPERM' &&
	ok "LIBSHM_LOG=debug: libshm says why" || { fail "LIBSHM_LOG=debug"; printf '%s\n' "$err" | diag; }
rm -f "$D"/memkit-shm.L*
finish
