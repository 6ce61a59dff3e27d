#!/bin/sh
# memcheck-guest end to end: options, exit codes, --json, every check at a
# small size on the real KVM, and that a deliberately corrupted host-side
# verification is reported as FAIL. Without a usable /dev/kvm memcheck-guest
# runs its checks in memkit's microVM by itself; inside that microVM
# (tests/microvm-batch.sh sets MEMKIT_MICROVM_GUEST) it never nests another,
# so the cases about going there run on the host only.
. "$top_srcdir/tests/tap.sh"
MC="$top_builddir/tools/memcheck-guest"
CHECKS="patterns guard dirty readonly snapshot patterns-gmem guard-gmem snapshot-gmem dax shm lazy"
SIZE=4M
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# The real-KVM part runs here where this host can create a VM (configure's
# check, $MEMKIT_NATIVE_KVM), inside the microVM, or where no microVM is
# configured (then it SKIPs with the reason); otherwise only in the microVM.
kvm_here=yes
if [ "${MEMKIT_NATIVE_KVM:-yes}" != yes ] && [ -n "${MEMKIT_MICROVM_KERNELS:-}" ] &&
	[ -z "${MEMKIT_MICROVM_GUEST:-}" ]; then
	kvm_here=no
fi
ntests=11
# In the microVM: the linux check too (the stock kernel the microVM runs,
# booted nested, its virtio-fs DAX mount served by libdax). Its fault
# injections run in a microVM of their own (tests/microvm-inject.sh).
if [ -z "${MEMKIT_MICROVM_GUEST:-}" ]; then
	ntests=$((ntests + 8))  # the microVM: fallback, from any directory (host only)
else
	ntests=$((ntests + 1))  # the linux check
fi
[ "$kvm_here" = no ] || ntests=$((ntests + 29))
plan $ntests

# run ARGS...: output in $tmp/out, stderr in $tmp/err, exit status in $rc.
run() { "$MC" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }
expect_rc() {
	want=$1; desc=$2; shift 2
	run "$@"
	if [ "$rc" -eq "$want" ]; then ok "$desc"; else
		fail "$desc (exit $rc, expected $want)"; cat "$tmp/out" "$tmp/err" | diag; fi
}

# -- interface (no KVM needed) -- 9 tests
expect_rc 0 "--help" --help
expect_rc 0 "--version" --version
if grep -q "^memcheck-guest (memkit) [0-9]" "$tmp/out" && grep -q "^libsandbox [0-9]" "$tmp/out"; then ok "--version prints the version"; else fail "--version output"; fi
expect_rc 2 "bad --size is a usage error" --size 12X
expect_rc 2 "--size above 1G is a usage error" --size 2G
expect_rc 2 "unknown check is a usage error" --tests patterns,bogus
expect_rc 2 "--iterations 0 is a usage error" --iterations 0
expect_rc 2 "stray argument is a usage error" extra
if grep -q "^memcheck-guest: unexpected argument 'extra' (see 'memcheck-guest --help')$" "$tmp/err" &&
	[ "$(wc -l <"$tmp/err")" -eq 1 ]; then ok "a usage error is one line 'memcheck-guest: ...'"; else
	fail "usage error message"; diag <"$tmp/err"; fi

# -- no KVM device and no microVM either: 77 with the reason -- 2 tests
if [ -n "${MEMKIT_MICROVM_GUEST:-}" ]; then
	want="KVM unavailable: no /dev/kvm"  # in the microVM: no nested one
else
	want="no /nonexistent/qemu"  # the microVM runner's reason
fi
MEMKIT_KVM_DEV=/nonexistent/kvm MEMKIT_QEMU=/nonexistent/qemu run --tests patterns
if [ "$rc" -eq 77 ] && grep -q "$want" "$tmp/err"; then
	ok "no KVM device, no microVM: exit 77 with the reason"; else
	fail "no KVM device, no microVM (exit $rc)"; diag <"$tmp/err"; fi
MEMKIT_KVM_DEV=/nonexistent/kvm MEMKIT_QEMU=/nonexistent/qemu run --tests patterns --json
if [ "$rc" -eq 77 ] && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["result"] == "unavailable"' "$tmp/out"; then
	ok "no KVM at all: --json still one JSON object"; else fail "no KVM --json (exit $rc)"; diag <"$tmp/out"; fi

# -- on the host: without a KVM device the checks run in the microVM by
# themselves, and --kernel picks its kernel -- 3 tests
if [ -z "${MEMKIT_MICROVM_GUEST:-}" ]; then
	MEMKIT_KVM_DEV=/nonexistent/kvm run --tests patterns,dirty --size 1M --json
	if [ "$rc" -eq 0 ] && grep -q "KVM unavailable here: .*running the checks in a microVM on kernel" "$tmp/err" &&
		python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["via"] == "microvm" and d["passed"] == 2, d' "$tmp/out"; then
		ok "no KVM device: the checks pass in the microVM, which stderr and --json name"; else
		fail "no KVM device: microVM fallback (exit $rc)"; cat "$tmp/out" "$tmp/err" | diag; fi
	k=6.1
	run --kernel "$k" --tests dirty --size 1M --json
	if [ "$rc" -eq 0 ] && python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); k=sys.argv[2]; assert d["via"] == "microvm" and d["kernel"].startswith((k + ".", k + "-")), d' "$tmp/out" "$k"; then
		ok "--kernel $k: the checks ran on that kernel in the microVM"; else
		fail "--kernel $k (exit $rc)"; cat "$tmp/out" "$tmp/err" | diag; fi
	run --kernel 0.0-nonexistent --tests dirty
	if [ "$rc" -eq 77 ] && grep -q "kernel '0.0-nonexistent' not found" "$tmp/err"; then
		ok "--kernel with an unknown kernel: exit 77 with the reason"; else
		fail "--kernel unknown (exit $rc)"; cat "$tmp/out" "$tmp/err" | diag; fi
fi

# -- on the host: README's main job from a directory under /tmp, /run and
# /var/tmp (a fresh clone there), which the microVM replaces by fresh tmpfs
# and so shares in read-only; the fallback notice is a line of its own -- 5 tests
if [ -z "${MEMKIT_MICROVM_GUEST:-}" ]; then
	for base in /tmp /run /var/tmp; do
		if ! d=$(mktemp -d "$base/memkit-cwd.XXXXXX" 2>/dev/null); then
			fail "cannot make a directory under $base to run from"; continue
		fi
		# /tmp: the job as README has it; elsewhere a smaller one, the microVM forced
		if [ "$base" = /tmp ]; then
			(cd "$d" && "$MC") >"$tmp/out" 2>"$tmp/err"; rc=$?
			what="README's main job (memcheck-guest)"
		else
			(cd "$d" && MEMKIT_KVM_DEV=/nonexistent/kvm "$MC" --size 4M) >"$tmp/out" 2>"$tmp/err"; rc=$?
			what="memcheck-guest --size 4M in the microVM"
		fi
		rmdir "$d"
		# Only guest_memfd checks may skip (a kernel without it, or without
		# dirty logging / read-only memslots on it), each naming the kernel.
		if [ "$rc" -eq 0 ] && grep -qE "^11 checks: [0-9]+ passed, 0 failed, [0-9]+ skipped" "$tmp/out" &&
			! grep -E "^[a-z-]+ +SKIP " "$tmp/out" | grep -vqE "^[a-z]+-gmem +SKIP .*kernel [^ ]+: "; then
			ok "$what from a directory under $base"; else
			fail "$what from a directory under $base (exit $rc)"; cat "$tmp/out" "$tmp/err" | diag; fi
		[ "$base" = /run ] && cp "$tmp/err" "$tmp/err.run"
	done
	# The notice is one line, the next message starts a line of its own.
	if head -n1 "$tmp/err.run" | grep -qE '^memcheck-guest: KVM unavailable here: .*; running the checks in a microVM on kernel [^ ]+$'; then
		ok "the microVM notice is a whole line"; else
		fail "the microVM notice"; diag <"$tmp/err.run"; fi
	# The runner itself: the caller's directory under /tmp (read-only), a
	# --rw directory inside it (mounted over it, writable).
	d=$(mktemp -d /tmp/memkit-cwd.XXXXXX)
	mkdir "$d/rw" && echo here >"$d/file"
	(cd "$d" && "$top_srcdir/scripts/memkit-microvm" --rw rw -- \
		sh -c 'pwd; cat file; touch rw/made && echo rw ok; touch ro 2>/dev/null || echo ro ok') \
		>"$tmp/out" 2>"$tmp/err"; rc=$?
	if [ "$rc" -eq 0 ] && [ "$(cat "$tmp/out")" = "$(printf '%s\nhere\nrw ok\nro ok' "$d")" ] && [ -e "$d/rw/made" ]; then
		ok "memkit-microvm: runs in the caller's directory under /tmp, read-only, a --rw one inside it writable"; else
		fail "memkit-microvm in a directory under /tmp (exit $rc)"; cat "$tmp/out" "$tmp/err" | diag; fi
	rm -rf "$d"
fi

# -- in the microVM: a real Linux guest as libdax's client -- 1 test
if [ -n "${MEMKIT_MICROVM_GUEST:-}" ]; then
	rel=$(uname -r)
	run --tests linux --json
	if [ "$rc" -eq 0 ] && python3 - "$tmp/out" "$rel" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
c = d["checks"][0]
m = c["metrics"]
assert d["kernel"] == sys.argv[2] and c["name"] == "linux" and c["status"] == "pass", c
assert m["setupmapping"] > 0 and m["removemapping"] > 0 and m["upgrades"] > 0, m
# each side's checksums cover what it checked; the check fails if any differs
assert m["bytes_checked_guest"] > 0 and m["bytes_checked_host"] > 0 and "sums match" in c["detail"], c
# fio ran from the second DAX mount and verified what its eight jobs read back
assert "fio: 8 jobs verified" in c["detail"] and m["fio_libraries"] > 0, c
assert m["fio_verified_bytes"] >= 4 * 24 * 2**20 and m["fio_dev_setupmapping"] > 0, m
for job in ("seq_psync", "rand_psync", "seq_mmap", "rand_mmap", "shared_read_check", "seq_read", "rand_read_mmap"):
    assert m["fio_%s_read_bytes" % job] > 0, (job, m)
PY
	then
		ok "linux: a $rel guest mounts virtio-fs with DAX over libdax; setup, remove, upgrade; fio's jobs verified; checksums match"
	else
		fail "linux on $rel (exit $rc)"; cat "$tmp/out" "$tmp/err" | diag
	fi
fi

# -- real KVM --
if [ "$kvm_here" = no ]; then
	echo "# no usable /dev/kvm here: the real-KVM cases run in the microVM (tests/microvm-*.sh)"
	finish
fi
run --tests patterns --size 1M
if [ "$rc" -eq 77 ]; then
	reason=$(cat "$tmp/err")
	n=$((ntests - tap_n))
	while [ "$n" -gt 0 ]; do skip "$reason"; n=$((n - 1)); done
	finish
fi

# Every check on its own at a small size: 11 tests.
for c in $CHECKS; do
	run --size $SIZE --tests "$c"
	line=$(grep "^$c " "$tmp/out")
	case "$rc:$line" in
	0:*" PASS "*) ok "$c passes at $SIZE";;
	0:*" SKIP "*) skip "$c: $(printf '%s' "$line" | sed 's/^.* ms  //')";;
	*) fail "$c at $SIZE (exit $rc)"; cat "$tmp/out" "$tmp/err" | diag;;
	esac
	eval "status_$(printf '%s' "$c" | tr - _)=\$(printf '%s' \"\$line\" | awk '{print \$2}')"
done

# The checks can fail: a corrupted host-side verification is a FAIL, exit 1. 11 tests.
for c in $CHECKS; do
	eval "st=\$status_$(printf '%s' "$c" | tr - _)"
	if [ "$st" = SKIP ]; then skip "$c: skipped above, cannot inject"; continue; fi
	run --size $SIZE --tests "$c" --inject-fault="$c"
	if [ "$rc" -eq 1 ] && grep -q "^$c  *FAIL " "$tmp/out"; then
		ok "$c: injected fault is reported as FAIL"
	else
		fail "$c: injected fault not detected (exit $rc)"; cat "$tmp/out" "$tmp/err" | diag
	fi
done

# A guest that hangs is stopped by the timeout and failed, never a hang. 1 test.
run --size 1M --tests patterns --inject-fault=hang --timeout 1
if [ "$rc" -eq 1 ] && grep -q "did not answer within" "$tmp/out"; then
	ok "hanging guest stopped by --timeout, reported as FAIL"; else
	fail "hanging guest (exit $rc)"; cat "$tmp/out" "$tmp/err" | diag; fi

# --json: one valid object per run, with every selected check. 3 tests.
run --size $SIZE --json
if [ "$rc" -le 1 ] && python3 -m json.tool "$tmp/out" >/dev/null; then ok "--json is valid JSON"; else
	fail "--json (exit $rc)"; diag <"$tmp/out"; fi
# Durations ("ms") with exactly three decimals, no number with float noise
# (more than three decimals, an exponent), whole counts as integers.
if python3 - "$tmp/out" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
for key, num in re.findall(r'"([a-z_0-9]+)": (-?[0-9][0-9.eE+-]*)', text):
    assert re.fullmatch(r'-?[0-9]+(\.[0-9]{3})?', num), (key, num)
    if key == "ms" or key.endswith(("_us", "_ms", "_s", "_gbps")):
        assert re.fullmatch(r'-?[0-9]+\.[0-9]{3}', num), (key, num)
d = json.loads(text)
assert isinstance(d["checks"][0]["metrics"].get("pages_written", 0), int) or d["checks"][0]["name"] != "dirty"
PY
then ok "--json: durations with three decimals, counts as integers, no float noise"; else
	fail "--json numbers"; diag <"$tmp/out"; fi
if python3 - "$tmp/out" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
names = [c["name"] for c in d["checks"]]
assert names == ("patterns guard dirty readonly snapshot patterns-gmem guard-gmem "
                 "snapshot-gmem dax shm lazy").split(), names
assert d["result"] in ("pass", "fail")
assert d["passed"] + d["failed"] + d["skipped"] == 11
for c in d["checks"]:
    assert c["status"] in ("pass", "fail", "skip") and isinstance(c["metrics"], dict)
    # The sandbox checks name the region kind they ran on, the others none.
    want = "guest_memfd" if c["name"].endswith("-gmem") else \
        "anonymous" if c["name"] in ("patterns", "guard", "dirty", "readonly", "snapshot") else None
    assert c.get("region") == want, c
PY
then ok "--json lists every check with status and metrics"; else fail "--json content"; fi

# One check is "1 check", one round "1 round", one iteration "1 iteration". 1 test.
run --size 1M --tests snapshot --iterations 1
if [ "$rc" -eq 0 ] && grep -q "^1 check: 1 passed" "$tmp/out" && grep -q ", 1 iteration;" "$tmp/out" &&
	grep -q " 1 round of " "$tmp/out"; then
	ok "plurals: 1 check, 1 iteration, 1 round"; else
	fail "plurals (exit $rc)"; cat "$tmp/out" "$tmp/err" | diag; fi

# A full default-style run (all checks) passes at a small size: 1 test.
expect_rc 0 "all checks at $SIZE exit 0" --size $SIZE --seed 7 --iterations 2

# Non-terminal stderr gets no progress lines. 1 test.
if [ ! -s "$tmp/err" ]; then ok "no progress output when stderr is not a terminal"; else
	fail "stderr not empty"; diag <"$tmp/err"; fi
finish
