#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# bash completion in a real bash session: source each tool's completion
# file, call its function with COMP_WORDS/COMP_CWORD as bash sets them,
# compare COMPREPLY. Pool names come from the built shmctl listing a real
# pool directory on /dev/shm.
. "$top_srcdir/tests/tap.sh"
BC="$top_srcdir/bash-completion"
SHMCTL="$top_builddir/tools/shmctl"
DAXSNAP="$top_builddir/tools/daxsnap"
MEMCHECK="$top_builddir/tools/memcheck-guest"
CHILD="$top_builddir/tests/shm-child"
D=$(mktemp -d /dev/shm/memkit-completion-XXXXXX)
T=$(mktemp -d "${TMPDIR:-/tmp}/completion-test.XXXXXX")
trap 'rm -rf "$D" "$T"' EXIT
plan 16

if ! command -v bash >/dev/null; then
	echo "Bail out! bash is needed to test bash completion"
	exit 1
fi

# comp FILE FUNC CWORD WORD... : print COMPREPLY sorted, one per line
comp() {
	file=$1 func=$2 cword=$3; shift 3
	bash -c '
		file=$1 func=$2 cword=$3; shift 3
		. "$file" || exit 1
		COMP_WORDS=("$@"); COMP_CWORD=$cword
		COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
		"$func" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" || exit 1
		printf "%s\n" "${COMPREPLY[@]}" | LC_ALL=C sort' bash "$file" "$func" "$cword" "$@"
}
# want "description" "expected lines (space separated)" comp-args...
want() {
	desc=$1 exp=$2; shift 2
	got=$(comp "$@" | tr '\n' ' ' | sed 's/ $//')
	if [ "$got" = "$exp" ]; then ok "$desc"; else fail "$desc"; printf 'got:  %s\nwant: %s\n' "$got" "$exp" | diag; fi
}

"$CHILD" create "$D" alpha 1
"$CHILD" create "$D" beta 1
: > "$D/memkit-shm.bad name"

want "shmctl: subcommands" "gc list rm stat" "$BC/shmctl" _shmctl 1 "$SHMCTL" ""
want "shmctl: subcommand prefix" "stat" "$BC/shmctl" _shmctl 1 "$SHMCTL" "st"
want "shmctl: pool names from shmctl list (bad names left out)" "alpha beta" \
	"$BC/shmctl" _shmctl 4 "$SHMCTL" --dir "$D" stat ""
want "shmctl: pool name prefix for rm" "beta" "$BC/shmctl" _shmctl 5 "$SHMCTL" -d "$D" rm alpha b
want "shmctl: stat takes one pool" "" "$BC/shmctl" _shmctl 5 "$SHMCTL" --dir "$D" stat alpha ""
want "shmctl: list options" "--chunks" "$BC/shmctl" _shmctl 2 "$SHMCTL" list --c
want "shmctl: list options by prefix" "--bytes" "$BC/shmctl" _shmctl 2 "$SHMCTL" list --b
want "shmctl: --output columns, the last of a list" "POOL,SIZE POOL,STATE" \
	"$BC/shmctl" _shmctl 3 "$SHMCTL" list -o POOL,s
want "shmctl: gc options" "--dry-run" "$BC/shmctl" _shmctl 2 "$SHMCTL" gc --dr

want "daxsnap: subcommands" "--help --version check-files convert create diff rebase replay show verify" \
	"$BC/daxsnap" _daxsnap 1 "$DAXSNAP" ""
want "daxsnap: verify options" "--base --cap --help --json --len" "$BC/daxsnap" _daxsnap 2 "$DAXSNAP" verify --
touch "$T/snap.v2" "$T/snap.json"
want "daxsnap: files for show" "$T/snap.json $T/snap.v2" "$BC/daxsnap" _daxsnap 2 "$DAXSNAP" show "$T/snap"
want "daxsnap: --to values" "v1 v2" "$BC/daxsnap" _daxsnap 3 "$DAXSNAP" convert --to ""
want "daxsnap: --map NODEID=PATH completes the path" "1=$T/snap.json 1=$T/snap.v2" \
	"$BC/daxsnap" _daxsnap 3 "$DAXSNAP" check-files --map "1=$T/snap"

want "memcheck-guest: options" "--json" "$BC/memcheck-guest" _memcheck_guest 1 "$MEMCHECK" --js
want "memcheck-guest: --tests from its --list, the last of a list" "dax,shm dax,snapshot" \
	"$BC/memcheck-guest" _memcheck_guest 2 "$MEMCHECK" --tests dax,s
finish
