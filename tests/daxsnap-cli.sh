#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# daxsnap end to end: create/show/json round trip, verify, diff, convert,
# rebase, check-files, replay into a real KVM VM, exit codes, atomic output.
. "$top_srcdir/tests/tap.sh"
D="$top_builddir/tools/daxsnap"
T=$(mktemp -d "${TMPDIR:-/tmp}/daxsnap-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 2
plan 51

# expect STATUS DESC CMD...: ok when CMD exits with STATUS
expect() {
	want=$1 desc=$2; shift 2
	"$@" >out 2>err
	got=$?
	if [ "$got" -eq "$want" ]; then ok "$desc"; else
		fail "$desc (exit $got, want $want)"; cat out err | diag; fi
}

head -c $((8 << 20)) /dev/urandom > f1
head -c $((4 << 20)) /dev/urandom > f2

expect 0 "create v2 from options with identities" \
	"$D" create --base 0x40000000 --len 64M --align 21 -e 0:2M:1:0:r \
	-e 0x400000:2M:2:2M:rw -e 0x200000:2M:1:4M:rw --map 1=f1 --map 2=f2 -o a.v2
expect 0 "show" "$D" show a.v2
check "show lists 3 sorted entries" sh -c "grep -c '^0x' out | grep -qx 3 && \
	sed -n 3p out | grep -q '^0x0 ' && sed -n 5p out | grep -q '^0x400000 '"
check "show header" grep -q 'version 2  base 0x40000000  window 0x4000000' out
expect 0 "show --json" "$D" show --json a.v2
cp out a.json
check "json has identity" grep -q '"identity": {"dev"' a.json
expect 0 "create --json round trip" sh -c "'$D' create --json < a.json -o b.v2"
check "json round trip is byte-identical" cmp a.v2 b.v2
expect 0 "show from stdin" sh -c "'$D' show - < a.v2"
expect 0 "verify valid" "$D" verify a.v2 --base 0x40000000 --len 0x4000000 --cap 6M
expect 1 "verify --base mismatch" "$D" verify a.v2 --base 0x80000000
check "verify says why" grep -q 'daxsnap: a.v2: window base does not match --base' err
expect 1 "verify --cap too small" "$D" verify a.v2 --cap 4M
head -c 100 a.v2 > trunc.v2
expect 1 "verify truncated" "$D" verify trunc.v2
check "truncated reason" grep -q '^daxsnap: trunc.v2: CRC mismatch' err
cp a.v2 crc.v2 && printf 'X' | dd of=crc.v2 bs=1 seek=70 conv=notrunc 2>/dev/null
expect 1 "verify bad CRC" "$D" verify crc.v2
check "CRC reason" grep -q 'CRC mismatch' err
expect 1 "create rejects overlap" "$D" create --base 0 --len 64M -e 0:8K:1:0:r -e 4K:8K:1:0:r -o x
check "no output file on failure" test ! -e x

expect 0 "convert --to v1" "$D" convert a.v2 --to v1 -o a.v1
# v1 layout: 48-byte header + 40 bytes per entry, the seed's format
check "v1 size is 48 + 3*40" test "$(wc -c < a.v1)" -eq 168
check "v1 magic and version" sh -c "head -c 8 a.v1 | od -An -tx1 | tr -d ' \n' | grep -qx 4441585301000000"
expect 0 "convert v1 back to v2" "$D" convert a.v1 --to v2 --align 21 -o c.v2
expect 1 "diff: v2 without identities differs" "$D" diff a.v2 c.v2
check "diff shows changed entries" grep -q '^< 0x0 len 0x200000 node 1' out
expect 0 "diff identical" "$D" diff a.v2 b.v2
expect 0 "create with a slot removed and one added" \
	"$D" create --base 0x40000000 --len 64M --align 21 -e 0:2M:1:0:r \
	-e 0x600000:2M:2:0:r -e 0x200000:2M:1:4M:rw --map 1=f1 --map 2=f2 -o d.v2
expect 1 "diff added/removed" "$D" diff a.v2 d.v2
check "diff lines" sh -c "grep -q '^- 0x400000' out && grep -q '^+ 0x600000' out"
expect 2 "diff with an invalid blob is trouble" "$D" diff a.v2 trunc.v2

expect 0 "rebase" "$D" rebase a.v2 --base 0x80000000 -o r.v2
expect 0 "rebased blob verifies at the new base" "$D" verify r.v2 --base 0x80000000
expect 1 "rebase to an unaligned base" "$D" rebase a.v2 --base 0x80001000 -o r2.v2

expect 0 "check-files: unchanged" "$D" check-files a.v2 --map 1=f1 --map 2=f2
touch -d '2001-01-01' f2
expect 1 "check-files: changed file" "$D" check-files a.v2 --map 1=f1 --map 2=f2
check "check-files names the changed entry only" sh -c "grep -q '^0x400000 node 2 f2: changed' out && test \$(wc -l < out) -eq 1"

if [ -c /dev/kvm ]; then
	expect 1 "replay: the changed file's slot is refused" "$D" replay a.v2 --map 1=f1 --map 2=f2
	check "replay reports the stale slot" grep -q '^0x400000: Stale file handle' out
else
	skip "no /dev/kvm"; skip "no /dev/kvm"
fi
expect 0 "create a blob for replay" "$D" create --base 0x40000000 --len 64M --align 21 \
	-e 0:2M:1:0:r -e 0x200000:2M:1:4M:rw --map 1=f1 -o e.v2
if [ -c /dev/kvm ]; then
	expect 0 "replay ok" "$D" replay e.v2 --map 1=f1
	check "replay summary" grep -q 'replayed 2 slots: 2 rebound, 0 failed, 2 exits' out
else
	skip "no /dev/kvm"; skip "no /dev/kvm"
fi

printf '{"base_gpa": 1, "window_len": [}' > bad.json
expect 1 "create --json: malformed JSON" sh -c "'$D' create --json -o y < bad.json"
check "JSON error names the byte" grep -q 'daxsnap: stdin: unexpected character at byte 31' err
printf '{"base_gpa": 4096, "window_len": 65536, "entries": [{"moffset": 0}]}' > short.json
expect 1 "create --json: entry without fields" sh -c "'$D' create --json -o y < short.json"
check "no output from failed creates" test ! -e y
expect 2 "usage: bad --format" "$D" create --format 3 --base 0 --len 1M -o y
expect 2 "usage: bad number" "$D" verify a.v2 --base 12Q
expect 2 "usage: unreadable file" "$D" show /nonexistent/blob
expect 2 "usage: no command" "$D"
expect 2 "usage: unknown option" "$D" show --bogus a.v2
expect 0 "--help" "$D" --help
finish
