#!/bin/sh
# memcheck-guest's linux check must fail when libdax maps a wrong file range
# or drops the guest's writes. Runs in the microVM (tests/microvm-inject.sh),
# where a stock kernel boots nested under KVM; each case boots one guest.
. "$top_srcdir/tests/tap.sh"
MC="$top_builddir/tools/memcheck-guest"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
plan 2
run() { "$MC" "$@" >"$tmp/out" 2>"$tmp/err"; rc=$?; }

# FAIL for the reason injected (a checksum differs), not any failure.
run --tests linux --inject-fault=linux
if [ "$rc" -eq 1 ] && grep -q "^linux  *FAIL .*MD5" "$tmp/out"; then
	ok "linux: libdax mapping a wrong file range is caught (FAIL)"; else
	fail "linux: injected wrong range not detected (exit $rc)"; cat "$tmp/out" "$tmp/err" | diag; fi
# A DAX mapper that drops the guest's writes (they never reach the file).
MEMCHECK_LINUX_FAULT=drop-write run --tests linux --inject-fault=linux
if [ "$rc" -eq 1 ] && grep -q "^linux  *FAIL .*MD5" "$tmp/out"; then
	ok "linux: a DAX mapping that drops writes is caught (FAIL)"; else
	fail "linux: dropped writes not detected (exit $rc)"; cat "$tmp/out" "$tmp/err" | diag; fi
finish
