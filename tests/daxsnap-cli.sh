#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# daxsnap end to end: create/show/json round trip, verify, diff, convert,
# rebase, check-files, replay into a real KVM VM, exit codes, output files
# (regular, /dev/null, FIFO, symlink, directory, stdout), bounded input,
# JSON of every command parsed back (with a hostile file name).
. "$top_srcdir/tests/tap.sh"
D="$top_builddir/tools/daxsnap"
T=$(mktemp -d "${TMPDIR:-/tmp}/daxsnap-test.XXXXXX")
trap 'rm -rf "$T"' EXIT
cd "$T" || exit 2
# replay needs KVM: here where this host can create a VM (configure's check),
# inside the microVM, or where no microVM is configured (then it SKIPs with
# the reason); otherwise only in the microVM batch (tests/microvm-*.sh).
replay_here=yes
if [ "${MEMKIT_NATIVE_KVM:-yes}" != yes ] && [ -n "${MEMKIT_MICROVM_KERNELS:-}" ] &&
	[ -z "${MEMKIT_MICROVM_GUEST:-}" ]; then
	replay_here=no
	echo "# no usable /dev/kvm here: the replay cases run in the microVM (tests/microvm-*.sh)"
fi
ntests=151
[ "$replay_here" = yes ] && ntests=$((ntests + 4))
# In the microVM (tests/microvm-batch.sh) only the cases up to the replays
# run, and the plan comes last: the rest needs no KVM and runs on the host.
[ -n "${MEMKIT_MICROVM_GUEST:-}" ] || plan $ntests

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

# First what needs KVM (replay), so that the microVM can stop after it.
expect 0 "check-files: unchanged" "$D" check-files a.v2 --map 1=f1 --map 2=f2
touch -d '2001-01-01' f2
expect 1 "check-files: changed file" "$D" check-files a.v2 --map 1=f1 --map 2=f2
check "check-files names the changed entry only" sh -c "grep -q '^0x400000 node 2 f2: changed' out && test \$(wc -l < out) -eq 1"

if [ "$replay_here" = no ]; then
	:
elif [ -c /dev/kvm ]; then
	expect 1 "replay: the changed file's slot is refused" "$D" replay a.v2 --map 1=f1 --map 2=f2
	check "replay reports the stale slot" grep -q '^0x400000: Stale file handle' out
else
	skip "no /dev/kvm"; skip "no /dev/kvm"
fi
expect 0 "create a blob for replay" "$D" create --base 0x40000000 --len 64M --align 21 \
	-e 0:2M:1:0:r -e 0x200000:2M:1:4M:rw --map 1=f1 -o e.v2
if [ "$replay_here" = no ]; then
	:
elif [ -c /dev/kvm ]; then
	expect 0 "replay ok" "$D" replay e.v2 --map 1=f1
	# libdax binds both slots itself (userfaultfd, or eagerly at restore): no exit
	check "replay summary" grep -q 'replayed 2 mappings: 2 rebound, 0 failed, 0 exits' out
else
	skip "no /dev/kvm"; skip "no /dev/kvm"
fi
if [ -n "${MEMKIT_MICROVM_GUEST:-}" ]; then
	# Inside the microVM replay never nests another: without KVM it is 77.
	expect 77 "replay without KVM (in the microVM: no nested one) is 77" \
		env MEMKIT_KVM_DEV=/nonexistent-kvm "$D" replay a.v2 --map 1=f1 --map 2=f2
	check "replay: KVM unavailable, one line" sh -c "test \$(wc -l < err) -eq 1 && grep -q '^daxsnap: KVM unavailable: ' err"
	echo "1..$tap_n"
	finish
fi

expect 0 "show" "$D" show a.v2
check "show lists 3 sorted entries" sh -c "grep -c '^0x' out | grep -qx 3 && \
	sed -n 3p out | grep -q '^0x0 ' && sed -n 5p out | grep -q '^0x400000 '"
check "show header" grep -q 'version 2  base 0x40000000  window 0x4000000' out
expect 0 "show --json" "$D" show --json a.v2
cp out a.json
# jq-like checks with python3's strict parser (invalid UTF-8 or a bare control byte fails)
# json_ok FILE EXPR: EXPR over d (the parsed document) is true
json_ok() {
	python3 -c 'import json, sys
d = json.loads(open(sys.argv[1], "rb").read())
sys.exit(0 if eval(sys.argv[2]) else 1)' "$@"
}
check "json has identity and schema" json_ok a.json \
	'd["schema"] == 1 and d["entries"][0]["identity"]["size"] == 8 << 20 and d["file"] == "a.v2"' 
expect 0 "create --json round trip" sh -c "'$D' create --json < a.json -o b.v2"
check "json round trip is byte-identical" cmp a.v2 b.v2
expect 0 "show from stdin" sh -c "'$D' show - < a.v2"
expect 0 "verify valid" "$D" verify a.v2 --base 0x40000000 --len 0x4000000 --cap 6M
expect 1 "verify --base mismatch" "$D" verify a.v2 --base 0x80000000
check "verify says why" grep -q 'daxsnap: a.v2: window base does not match --base' err
expect 1 "verify --cap too small" "$D" verify a.v2 --cap 4M
head -c 100 a.v2 > trunc.v2
expect 1 "verify truncated" "$D" verify trunc.v2
check "truncated: says so with the sizes, not a CRC mismatch" grep -qx 'daxsnap: trunc.v2: truncated (100 of 300 bytes)' err
# cut anywhere (the header too) or run on: the fault by name, never a CRC mismatch
bad=
for n in 0 4 47 60 140 219 299; do
	head -c $n a.v2 > cut.v2
	"$D" verify cut.v2 2> err
	grep -qx "daxsnap: cut.v2: truncated ($n of \(at least \)\{0,1\}[0-9]* bytes)" err || bad="$bad $n:$(cat err)"
done
[ -z "$bad" ] && ok "v2 cut at 0..299 bytes: truncated (N of M bytes)" || { fail "v2 cuts"; echo "$bad" | diag; }
cp a.v2 crc.v2 && printf 'X' | dd of=crc.v2 bs=1 seek=70 conv=notrunc 2>/dev/null
expect 1 "verify bad CRC" "$D" verify crc.v2
check "CRC reason" grep -q 'CRC mismatch' err
{ cat a.v2; printf 'x'; } > long1.v2
expect 1 "a byte appended" "$D" verify long1.v2
check "trailing data, not a CRC mismatch" grep -qx 'daxsnap: long1.v2: trailing data after the last entry (at byte 300)' err
expect 1 "create rejects overlap" "$D" create --base 0 --len 64M -e 0:8K:1:0:r -e 4K:8K:1:0:r -o x
check "no output file on failure" test ! -e x

expect 0 "convert --to v1" "$D" convert a.v2 --to v1 -o a.v1
# v1 layout: 48-byte header + 40 bytes per entry, the seed's format
check "v1 size is 48 + 3*40" test "$(wc -c < a.v1)" -eq 168
head -c 100 a.v1 > trunc.v1
expect 1 "a v1 blob cut short" "$D" show trunc.v1
check "v1: truncated (100 of 168 bytes)" grep -qx 'daxsnap: trunc.v1: truncated (100 of 168 bytes)' err
{ cat a.v1; printf 'x'; } > long.v1
expect 1 "a v1 blob with a byte appended" "$D" show long.v1
check "v1: trailing data after the last entry" grep -qx 'daxsnap: long.v1: trailing data after the last entry (at byte 168)' err
check "v1 magic and version" sh -c "head -c 8 a.v1 | od -An -tx1 | tr -d ' \n' | grep -qx 4441585301000000"
expect 0 "convert v1 back to v2" "$D" convert a.v1 --to v2 --align 21 -o c.v2
expect 1 "diff: v2 without identities differs" "$D" diff a.v2 c.v2
check "diff shows the field that differs, no identical pairs" sh -c \
	"grep -q '^! 0x0 identity dev=[0-9]* ino=[0-9]* size=8388608 mtime=[0-9.]* -> -\$' out && test \$(grep -c '^! 0x' out) -eq 3 && ! grep -q '^[<>]' out"
expect 1 "diff of v2 and v1" "$D" diff a.v2 a.v1
check "diff prints header fields in show's units" sh -c "grep -qx '! version 2 -> 1' out && grep -qx '! align 21 -> -' out && ! grep -q '0x15' out"
expect 1 "diff -J of v2 and v1" "$D" diff -J a.v2 a.v1
check "diff -J: the fields that differ" json_ok out \
	'd["header"] == [{"field": "version", "a": 2, "b": 1}, {"field": "align_log2", "a": 21, "b": None}] and all(e["fields"] == ["identity"] for e in d["entries"])'
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
check "rebase: the alignment rule's reason" grep -qx 'daxsnap: a.v2: window base or length not aligned' err
# the same rule in create and verify: what rebase refuses, they refuse
expect 1 "create refuses a base off the alignment" "$D" create --base 0x40001000 --len 64M --align 21 -o x
check "create: the alignment rule's reason" grep -q 'window base or length not aligned' err
expect 1 "create refuses a window of 2 bytes at 1" "$D" create --base 1 --len 2 -o x
printf 'DAXS\001\000\000\000\001\000\000\000\000\000\000\000\002\000\000\000\000\000\000\000' > odd.v1
head -c 24 /dev/zero >> odd.v1
expect 1 "verify refuses a v1 blob whose window is off the alignment" "$D" verify odd.v1
check "verify: the alignment rule's reason" grep -q 'window base or length not aligned' err
check "nothing written by the refused creates" test ! -e x
expect 2 "create --format 1 --align: version 1 cannot hold it" "$D" create --format 1 --align 21 --base 0 --len 64M -o x
expect 2 "create --format 1 --map: version 1 cannot hold it" "$D" create --format 1 --base 0 --len 64M -e 0:4K:1:0:r --map 1=f1 -o x
expect 2 "convert --to v1 --align: version 1 cannot hold it" "$D" convert a.v2 --to v1 --align 21 -o x
sed 's/"version": 2/"version": 1/' a.json > v1id.json
expect 1 "create -J: a version 1 document with identities" sh -c "'$D' create -J -o x < v1id.json"
check "and says why" grep -q 'version 1 records no' err
expect 0 "convert --to v2 --align applies to a v2 blob" "$D" convert a.v2 --to v2 --align 12 -o x
check "its alignment is 12" sh -c "'$D' show x | grep -q '  align 12\$'"
rm -f x

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
expect 2 "create --map of a missing file is I/O trouble (2), as daxsnap(1) says" \
	"$D" create --base 0 --len 1M -e 0:4K:1:0:r --map 1=/nonexistent-memkit -o y
expect 2 "usage: --align is one number grammar" "$D" convert a.v2 --to v2 --align 0x1Q

# --- show's exact output, text and JSON (the documented schema 1 document) ---
"$D" create --base 0x40000000 --len 64M --align 21 -e 0:2M:1:0:r -e 0x200000:2M:7:8K:rw -o g.v2
cat > g.expected <<'EOF'
{
  "schema": 1,
  "file": "g.v2",
  "version": 2,
  "base_gpa": 1073741824,
  "window_len": 67108864,
  "cap": 67108864,
  "mapped_bytes": 4194304,
  "count": 2,
  "align_log2": 21,
  "entries": [
    {
      "moffset": 0,
      "len": 2097152,
      "nodeid": 1,
      "foffset": 0,
      "prot": "r"
    },
    {
      "moffset": 2097152,
      "len": 2097152,
      "nodeid": 7,
      "foffset": 8192,
      "prot": "rw"
    }
  ]
}
version 2  base 0x40000000  window 0x4000000  cap 0x4000000  mapped 0x400000  entries 2  align 21
MOFFSET            LEN          NODEID     FOFFSET        PROT IDENTITY
0x0                0x200000     1          0x0            r    -
0x200000           0x200000     7          0x2000         rw   -
EOF
check "show -J and show print exactly the expected document and table" \
	sh -c "{ '$D' show -J g.v2 && '$D' show g.v2; } > g.out && diff -u g.expected g.out"

# --- JSON of verify, diff, check-files ---
expect 0 "verify --json" "$D" verify -J a.v2
check "verify --json: valid, header" json_ok out 'd["schema"] == 1 and d["valid"] is True and d["reason"] is None and d["count"] == 3'
expect 1 "verify --json of a bad blob" "$D" verify --json crc.v2
check "verify --json: invalid with the reason" json_ok out 'd["valid"] is False and "CRC" in d["reason"]'
# every error under -J is JSON too
expect 2 "verify -J of a missing file" "$D" verify -J missing.v2
check "verify -J of a missing file: the verdict, with the error" json_ok out \
	'd["file"] == "missing.v2" and d["valid"] is False and d["reason"] == "No such file or directory" and d["error"] == d["reason"]'
expect 1 "show -J of a truncated blob" "$D" show -J trunc.v2
check "show -J: the error as JSON" json_ok out 'd == {"schema": 1, "what": "trunc.v2", "error": "truncated (100 of 300 bytes)"}'
expect 2 "diff -J with an invalid blob" "$D" diff -J a.v2 trunc.v2
check "diff -J: the error as JSON" json_ok out 'd["what"] == "trunc.v2" and d["error"].startswith("truncated")'
expect 1 "check-files -J of a v1 blob" "$D" check-files -J a.v1 --map 1=f1
check "check-files -J: the error as JSON" json_ok out 'd["what"] == "a.v1" and "version 1" in d["error"]'
expect 2 "show -J without a file" "$D" show -J
check "a usage error under -J: JSON too" json_ok out '"missing argument" in d["error"]'
expect 1 "diff --json" "$D" diff --json a.v2 d.v2
check "diff --json: removed and added entries" json_ok out \
	'd["same"] is False and {e["change"] for e in d["entries"]} == {"removed", "added"} and d["header"] == []'
expect 1 "diff -J: header difference" "$D" diff -J a.v2 r.v2
check "diff -J names the field" json_ok out 'd["header"] == [{"field": "base_gpa", "a": 0x40000000, "b": 0x80000000}]'
expect 1 "check-files --json" "$D" check-files --json a.v2 --map 1=f1 --map 2=f2
check "check-files --json: states" json_ok out \
	'[e["state"] for e in d["entries"]] == ["unchanged", "unchanged", "changed"] and d["changed"] == 1'

# --- a hostile file name through every command's JSON and text ---
H=$(printf 'q"uo\\te\001\033[31m\377x')
cp a.v2 "$H"
cp f1 "$H.data"
want_py='open("hname", "rb").read().decode("utf-8", "replace")'
printf '%s' "$H" > hname
printf '%s' 'q"uo\\te\x01\x1b[31m\xffx' > hesc
expect 0 "show --json of a hostile name" "$D" show --json "$H"
check "show: the name round-trips (U+FFFD for the bad byte)" json_ok out "d['file'] == $want_py"
expect 0 "verify --json of a hostile name" "$D" verify --json "$H"
check "verify: the name round-trips" json_ok out "d['file'] == $want_py"
expect 0 "diff --json of a hostile name" "$D" diff --json "$H" a.v2
check "diff: the name round-trips" json_ok out "d['a'] == $want_py and d['b'] == 'a.v2'"
expect 1 "check-files --json with a hostile path" "$D" check-files --json a.v2 --map 1="$H.data" --map 2=f2
check "check-files: the path round-trips" json_ok out \
	"d['entries'][0]['path'] == $want_py + '.data' and d['entries'][0]['state'] == 'replaced'"
expect 1 "check-files text with a hostile path" "$D" check-files a.v2 --map 1="$H.data" --map 2=f2
check "text output escapes control bytes" grep -qF "$(cat hesc).data: another file" out
check "no raw escape byte in the text" sh -c "! grep -q \"\$(printf '\\033')\" out"
expect 2 "a hostile missing file in an error" "$D" show "$H.missing"
check "error escapes the name" grep -qF "daxsnap: $(cat hesc).missing: No such file or directory" err

# --- output files ---
expect 0 "-o /dev/null" "$D" convert a.v2 --to v1 -o /dev/null
check "/dev/null is still a character device" test -c /dev/null
mkfifo fifo
cat fifo > fifo.out & reader=$!
expect 0 "-o FIFO is written in place" "$D" convert a.v2 --to v1 -o fifo
wait $reader
check "FIFO stays a FIFO" test -p fifo
check "FIFO reader got the blob" cmp fifo.out a.v1
cp a.v2 target.v2 && ln -s target.v2 link.v2
expect 0 "-o symlink" "$D" rebase a.v2 --base 0x80000000 -o link.v2
check "symlink stays a link, its target is replaced" sh -c "test -L link.v2 && cmp target.v2 r.v2"
ln -s nowhere dangling
expect 2 "-o dangling symlink is refused" "$D" rebase a.v2 --base 0x80000000 -o dangling
check "dangling symlink: clear message" grep -q 'daxsnap: dangling: symbolic link to a missing file' err
cp a.v2 private.v2 && chmod 0600 private.v2
[ "$(id -u)" = 0 ] && chown 65534:65534 private.v2
expect 0 "-o 0600 file" "$D" rebase a.v2 --base 0x80000000 -o private.v2
check "0600 kept" test "$(stat -c %a private.v2)" = 600
if [ "$(id -u)" = 0 ]; then
	check "owner kept (root replacing nobody's file)" test "$(stat -c %u:%g private.v2)" = 65534:65534
else
	skip "owner kept: needs root to give a file to another user"
fi
check "0600 file has the new content" cmp private.v2 r.v2
ls -a > before.ls
mkdir adir
expect 2 "-o directory is refused" "$D" rebase a.v2 --base 0x80000000 -o adir
check "directory: clear message" grep -q 'daxsnap: adir: is a directory' err
check "directory untouched" test -d adir
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' sock
expect 2 "-o socket is refused" "$D" rebase a.v2 --base 0x80000000 -o sock
check "socket: clear message, still a socket" sh -c "grep -q 'daxsnap: sock: is a socket' err && test -S sock"
expect 2 "-o /dev/full: a failed write is an I/O error" "$D" rebase a.v2 --base 0x80000000 -o /dev/full
check "/dev/full: says why" grep -q 'daxsnap: /dev/full: No space left on device' err
expect 0 "-o - writes stdout" sh -c "'$D' rebase a.v2 --base 0x80000000 -o - > stdout.v2"
check "stdout blob" cmp stdout.v2 r.v2
(umask 027; "$D" convert a.v2 --to v1 -o new.v1)
check "a new file gets 0666 less the umask" test "$(stat -c %a new.v1)" = 640
check "no temporary files left" sh -c "! ls -A | grep -q '^\\.'"

# --- bounded input ---
# exit 1, not timeout's 124: it stopped at the header instead of reading on
# (no wall-clock check: under an emulated microVM on a busy host, starting
# the program alone took longer than the 3 s such a check allowed)
expect 1 "show /dev/zero fails" timeout 10 "$D" show /dev/zero
check "show /dev/zero: bad magic" grep -q 'daxsnap: /dev/zero: bad magic' err
# a v2 header whose count claims more entries than the window can hold, then zeros forever
{ head -c 40 a.v2; printf '\377\377\377\377\000\000\000\000'; } > huge.hdr
expect 1 "a header claiming too many entries fails before reading on" sh -c "cat huge.hdr /dev/zero | timeout 10 '$D' show -"
check "and says why" grep -q 'header claims 4294967295 entries' err
{ cat a.v2; printf 'tail'; } > long.v2
expect 1 "bytes past the blob's size are refused" "$D" verify long.v2
expect 1 "create -J stops reading JSON past 64 MiB" sh -c "cat /dev/zero | '$D' create -J -o y"
check "and says why" grep -q 'daxsnap: stdin: JSON input above the 64 MiB limit' err
expect 0 "show -- - reads stdin" sh -c "'$D' show -- - < a.v2"
# without KVM here replay goes to the microVM (as memcheck-guest does); 77
# only when that cannot run either. Inside the microVM it never nests another.
expect 77 "replay without KVM and without a microVM is 77" \
	env MEMKIT_KVM_DEV=/nonexistent-kvm MEMKIT_QEMU=/nonexistent/qemu "$D" replay a.v2 --map 1=f1 --map 2=f2
check "replay: the notice, then why no microVM" sh -c \
	"grep -q '^daxsnap: KVM unavailable here: .*; replaying in a microVM on kernel ' err && grep -q 'no /nonexistent/qemu' err"
# the blob from standard input, its file under /tmp (this test's directory), a writable slot
expect 0 "replay without KVM here runs in the microVM" \
	sh -c "MEMKIT_KVM_DEV=/nonexistent-kvm '$D' replay - --map 1=f1 < e.v2"
check "replay in the microVM: every mapping rebound" grep -q '^replayed 2 mappings: 2 rebound, 0 failed, 0 exits' out
expect 0 "--version" "$D" --version
check "--version: libdax and a licence line" sh -c "grep -q '^daxsnap (memkit) ' out && grep -q '^libdax ' out && grep -q '^License GPL-2.0-or-later' out"
expect 0 "subcommand --help" env LC_ALL=C.UTF-8 "$D" show --help
check "subcommand help names the program and the command" grep -q '^  daxsnap show \[OPTION…\] FILE|-' out

expect 2 "usage: unknown option" "$D" show --bogus a.v2
expect 2 "usage: a hostile unknown option" "$D" show "--bo$(printf '\033')gus" a.v2
check "a subcommand's usage error is one line that points at its help" \
	sh -c "test \$(wc -l < err) -eq 1 && grep -q \"^daxsnap: show: .* (see 'daxsnap show --help')\$\" err"
check "the option is escaped in the message" sh -c "grep -qF 'bo\\x1bgus' err && ! grep -q \"\$(printf '\\033')\" err"
expect 0 "--help" "$D" --help
finish
