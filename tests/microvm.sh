#!/bin/sh
# KVM tests on a stock kernel: boot the microVM once on kernel $1 (a series
# from --with-microvm-kernels) and run every KVM test program inside it
# (tests/microvm-batch.sh), as one TAP stream whose cases name the program
# and the kernel they ran on. SKIPs, with the reason, only where no microVM
# can run (no qemu, no kernel fetched, no KVM inside).
series=$1
runner="$top_srcdir/scripts/memkit-microvm"
case " $MEMKIT_MICROVM_KERNELS " in
*" $series "*) ;;
*)
	echo "1..0 # SKIP kernel $series not configured (./configure --with-microvm-kernels='$MEMKIT_MICROVM_KERNELS')"
	exit 0
	;;
esac
err=$(mktemp)
trap 'rm -f "$err"' EXIT
# The source tree read-only where it is under /tmp (distcheck, fresh clones).
"$runner" --kernel "$series" --rw "$top_builddir" --ro "$top_srcdir" \
	--timeout "${MEMKIT_MICROVM_TIMEOUT:-2400}" -- \
	/bin/sh "$top_srcdir/tests/microvm-batch.sh" 2>"$err"
rc=$?
case $rc in
0) ;;
77)
	echo "1..0 # SKIP no microVM on kernel $series: $(tail -n1 "$err")"
	exit 0
	;;
*)
	sed 's/^/# /' "$err"
	echo "Bail out! microVM on kernel $series: exit $rc: $(tail -n1 "$err")"
	exit 1
	;;
esac
# Diagnostics of the programs (stderr) after the stream.
sed 's/^/# /' "$err"
