#!/bin/sh
# Runs inside the microVM (tests/microvm.sh): every KVM test program in turn,
# merged into one TAP stream. Each case is renamed "PROGRAM: case" and
# carries "# kernel RELEASE"; a program that crashes or stops short of its
# plan is a failed case of its own. The plan comes last.
cd "$top_builddir" || exit 1
# memcheck-guest: in the microVM already, never nest another.
export MEMKIT_MICROVM_GUEST=1
release=$(uname -r)
echo "# microVM: kernel $release, $(nproc) CPUs, $(awk '/MemTotal/ {print int($2/1024)}' /proc/meminfo) MiB"
n=0
# One program a line, with arguments: the all-KVM programs whole; of the
# mixed ones only their KVM and fs-verity cases (GTest -p), the rest runs
# on the host; the tool scripts whole (their KVM parts need the rest); and
# the lazy-snapshot cases whose userfaultfd and shmem behaviour the stock
# kernels must show too.
# $MEMKIT_MICROVM_TESTS, if set, replaces the list (same form).
list=${MEMKIT_MICROVM_TESTS:-"tests/test-kvm-smoke
tests/test-dax-kvm
tests/test-sbx-kvm
tests/test-sbx-mem -p /sbx/mem/resize/bound
tests/test-shm-blob -p /shm/blob/verity
tests/test-sbx-snapshot -p /sbx/snapshot/import-verity
tests/test-sbx-lazy -p /sbx/lazy/raw-pointer -p /sbx/lazy/caller-loop -p /sbx/lazy/bad-chunk-raw-pointer -p /sbx/lazy/restore -p /sbx/lazy/take-resize -p /sbx/lazy/working-set -p /sbx/lazy/fork
tests/test-memcheck.sh
tests/daxsnap-cli.sh"}
while read -r t args; do
	[ -n "$t" ] || continue
	case $t in
	*.sh) cmd="/bin/sh $top_srcdir/$t" ;;
	*) cmd="./$t" ;;
	esac
	start=$(date +%s)
	out=$(mktemp)
	# shellcheck disable=SC2086
	$cmd $args </dev/null >"$out" 2>&1
	rc=$?
	echo "# ${t##*/}: exit $rc after $(($(date +%s) - start)) s (emulated: not a timing)"
	n=$(awk -v prog="${t##*/}" -v rel="$release" -v n="$n" -v rc="$rc" '
		function emit(ok, rest,   dir) {
			n++
			seen++
			if (!ok) failed++
			# Keep a SKIP/TODO directive last; put the kernel in front of its reason.
			if (match(rest, /[ \t]*#[ \t]*([sS][kK][iI][pP]|[tT][oO][dD][oO])/)) {
				dir = substr(rest, RSTART)
				sub(/^[ \t]*#[ \t]*/, "", dir)
				rest = substr(rest, 1, RSTART - 1)
				print (ok ? "ok " : "not ok ") n " - " prog ": " rest " # " substr(dir, 1, 4) " [kernel " rel "]" substr(dir, 5)
			} else
				print (ok ? "ok " : "not ok ") n " - " prog ": " rest " # kernel " rel
		}
		/^1\.\.[0-9]+/ { plan = substr($1, 4) + 0; next }
		/^ok / || /^not ok / {
			ok = ($1 == "ok")
			line = $0
			sub(/^(not )?ok[ \t]*[0-9]*[ \t]*(-[ \t]*)?/, "", line)
			emit(ok, line)
			next
		}
		/^Bail out!/ { emit(0, "bail out: " substr($0, 11)); bailed = 1; next }
		/^#/ { print; next }
		{ print "# " $0 }
		END {
			if (!bailed && plan != seen)
				emit(0, "planned " plan " cases, ran " seen " (exit " rc ")")
			else if (!bailed && rc != 0 && !failed)
				emit(0, "exited " rc " with no failed case")
			print n > "/dev/stderr"
		}' "$out" 2>&1 >&3 3>&-) 3>&1
	rm -f "$out"
done <<EOF
$list
EOF
echo "1..$n"
