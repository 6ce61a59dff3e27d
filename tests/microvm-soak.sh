#!/bin/bash
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# microvm-soak.sh: run memcheck-guest's linux check (a stock kernel booted
# nested under the microVM's own KVM, its virtio-fs DAX mount served by
# libdax) N times per kernel, J microVMs at a time, and count the failures
# by kind. It measures the microVM's emulator more than memkit: a nested
# guest that panics or hangs there is what memcheck-guest(1) BUGS
# describes. Not part of make check (it takes N x kernels x 1-2 minutes).
#
# Usage: tests/microvm-soak.sh [-k "6.1 6.12 sid"] [-j J] [-o DIR] N
#   -k KERNELS  the kernels (default: every series fetch-kernels.sh fetched)
#   -j J        microVMs in parallel (default 2: what makes the defect show)
#   -o DIR      keep each run's output there (default: a temporary directory,
#               removed at the end unless a run failed)
# Environment: MEMKIT_QEMU (the QEMU binary), MEMKIT_MICROVM_CPUS (the
# microVM's vCPUs), as memkit-microvm takes them, to compare configurations;
# MC (the memcheck-guest to run; default the build tree's, else PATH's);
# MEMKIT_QEMU_DETECT=1 with a QEMU built with scripts/qemu/diagnostic/
# detect.patch: each run's QEMU logs the defects it sees happen, counted
# per run.
#
# Prints a line per run and per kernel "KERNEL: P passed, F failed (panic
# a, hang b, other c) in N runs"; exit 0 when no run failed, 1 otherwise,
# 2 on a usage error.
set -u
prog=microvm-soak
here=$(cd "$(dirname "$0")" && pwd)
kernels=
jobs=2
outdir=
usage() { sed -n '11,25s/^# \{0,1\}//p' "$0"; exit "$1"; }
while getopts k:j:o:h opt; do
	case $opt in
	k) kernels=$OPTARG ;;
	j) jobs=$OPTARG ;;
	o) outdir=$OPTARG ;;
	h) usage 0 ;;
	*) usage 2 >&2 ;;
	esac
done
shift $((OPTIND - 1))
[ $# -eq 1 ] || { echo "$prog: one run count expected (see -h)" >&2; exit 2; }
n=$1
for v in "$n" "$jobs"; do
	case $v in '' | *[!0-9]* | 0) echo "$prog: '$v' is not a positive whole number" >&2; exit 2 ;; esac
done

mc=${MC:-}
if [ -z "$mc" ]; then
	for c in "${top_builddir:-$here/..}/tools/memcheck-guest" "$(command -v memcheck-guest)"; do
		[ -x "$c" ] && { mc=$c; break; }
	done
fi
[ -n "$mc" ] || { echo "$prog: no memcheck-guest (build it, or set MC)" >&2; exit 2; }
runner=${MEMKIT_MICROVM:-$here/../scripts/memkit-microvm}
if [ -z "$kernels" ]; then
	# One name per fetched kernel: its series (6.1.0-50-amd64 -> 6.1), or
	# "sid" for unstable's.
	kernels=$("$runner" --list | awk -F'\t' '
		$4 == "sid" { print "sid"; next }
		$4 != "host" && match($1, /^[0-9]+\.[0-9]+/) { print substr($1, 1, RLENGTH) }' |
		sort -uV | tr '\n' ' ')
fi
[ -n "$kernels" ] || { echo "$prog: no kernels (run scripts/fetch-kernels.sh)" >&2; exit 2; }

keep=1
if [ -z "$outdir" ]; then
	outdir=$(mktemp -d "${TMPDIR:-/tmp}/microvm-soak.XXXXXX") || exit 2
	keep=0
fi
mkdir -p "$outdir" || exit 2

# What the microVM will run: QEMU, whose build, vCPUs (memkit-microvm -q).
IFS="$(printf '\t')" read -r qpath qbuild qcpus <<EOF
$("$runner" --which-qemu)
EOF
echo "# $prog: $n runs per kernel ($kernels), $jobs in parallel; $qpath ($qbuild," \
	"$("$qpath" --version | head -n1)), ${MEMKIT_MICROVM_CPUS:-$qcpus} vCPUs; load $(cut -d' ' -f1-3 /proc/loadavg)"

# One run: $1 kernel, $2 index. Writes $outdir/K.I.{out,err,rc}.
one() {
	local base="$outdir/$1.$2" t0=$SECONDS
	MEMKIT_QEMU_DETECT=${MEMKIT_QEMU_DETECT:+$base.detect} \
		MEMKIT_KVM_DEV=/nonexistent "$mc" --tests linux --kernel "$1" --verbose \
		>"$base.out" 2>"$base.err"
	echo "$? $((SECONDS - t0))" >"$base.rc"
}

# Kind of failure, from the check's detail and the guest console it prints.
kind() { # base
	if grep -q -e 'Kernel panic' -e 'Fatal exception' -e 'general protection' -e 'BUG:' "$1.out" "$1.err"; then
		echo panic
	elif grep -q -e 'no result within' -e 'timed out' -e 'soft lockup' -e 'rcu.*stall' "$1.out" "$1.err"; then
		echo hang
	else
		echo other
	fi
}

# Interleave the kernels so that the microVMs side by side run different ones.
running=0
for i in $(seq 1 "$n"); do
	for k in $kernels; do
		if [ "$running" -ge "$jobs" ]; then
			wait -n
			running=$((running - 1))
		fi
		one "$k" "$i" &
		running=$((running + 1))
	done
done
wait

failed_any=0
for k in $kernels; do
	p=0 panic=0 hang=0 other=0
	for i in $(seq 1 "$n"); do
		base="$outdir/$k.$i"
		read -r rc secs <"$base.rc"
		seen=
		if [ -n "${MEMKIT_QEMU_DETECT:-}" ]; then
			seen="; qemu saw: $(cut -d' ' -f1 "$base.detect" 2>/dev/null | sort | uniq -c |
				awk '{ printf "%s%s x%s", n++ ? ", " : "", $2, $1 }')"
		fi
		if [ "$rc" = 0 ]; then
			p=$((p + 1))
			echo "$k run $i: pass (${secs} s$seen)"
		else
			f=$(kind "$base")
			eval "$f=\$(($f + 1))"
			echo "$k run $i: FAIL $f (exit $rc, ${secs} s$seen): $(grep -m1 '^linux ' "$base.out" | cut -c1-160)"
		fi
	done
	f=$((panic + hang + other))
	[ "$f" -eq 0 ] || failed_any=1
	echo "$k: $p passed, $f failed (panic $panic, hang $hang, other $other) in $n runs"
done
echo "# load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
if [ "$failed_any" = 1 ] || [ "$keep" = 1 ]; then
	echo "# each run's output: $outdir"
else
	rm -rf "$outdir"
fi
exit "$failed_any"
