# Shell TAP helpers for script tests: source it, call plan N, then ok/fail/skip.
tap_n=0
tap_failed=0
plan() { echo "1..$1"; }
ok() { tap_n=$((tap_n + 1)); echo "ok $tap_n - $*"; }
fail() { tap_n=$((tap_n + 1)); tap_failed=1; echo "not ok $tap_n - $*"; }
skip() { tap_n=$((tap_n + 1)); echo "ok $tap_n # SKIP $*"; }
diag() { sed 's/^/# /'; }
# check "description" command...: run, ok when it exits 0, failure output as diagnostics.
check() {
	desc=$1; shift
	if out=$("$@" 2>&1); then ok "$desc"; else fail "$desc"; printf '%s\n' "$out" | diag; fi
}
finish() { exit $tap_failed; }
