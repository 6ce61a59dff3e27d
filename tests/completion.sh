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
plan 31

if ! command -v bash >/dev/null; then
	echo "Bail out! bash is needed to test bash completion"
	exit 1
fi

# comp FILE FUNC LINE [BREAKS]: complete LINE (the cursor at its end) as bash
# does: split into COMP_WORDS at blanks and at each run of COMP_WORDBREAKS
# characters (BREAKS, default bash's own, which has '=' and ':'), call FUNC
# and print COMPREPLY sorted, one per line: what readline puts in place of
# the text after the last break.
comp() {
	bash -c '
		file=$1 func=$2 line=$3 breaks=$4
		. "$file" || exit 1
		[ -n "$breaks" ] || breaks=$COMP_WORDBREAKS
		words=() w=
		isbreak() { [[ $1 != [[:space:]] && $breaks == *"$1"* ]]; }
		for ((k = 0; k < ${#line}; k++)); do
			c=${line:k:1}
			if [[ $c == [[:space:]] ]]; then
				[ -n "$w" ] && words+=("$w")
				w=
			elif isbreak "$c"; then
				[ -n "$w" ] && ! isbreak "${w:0:1}" && { words+=("$w"); w=; }
				w+=$c
			else
				[ -n "$w" ] && isbreak "${w:0:1}" && { words+=("$w"); w=; }
				w+=$c
			fi
		done
		words+=("$w")
		COMP_WORDS=("${words[@]}"); COMP_CWORD=$((${#words[@]} - 1))
		COMP_LINE=$line; COMP_POINT=${#line}
		"$func" "${COMP_WORDS[0]}" "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD-1]}" || exit 1
		printf "%s\n" "${COMPREPLY[@]}" | LC_ALL=C sort' bash "$@"
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

S="$BC/shmctl"
want "shmctl: subcommands" "gc list rm stat" "$S" _shmctl "$SHMCTL "
want "shmctl: subcommand prefix" "stat" "$S" _shmctl "$SHMCTL st"
want "shmctl: pool names from shmctl list (bad names left out)" "alpha beta" \
	"$S" _shmctl "$SHMCTL --dir $D stat "
want "shmctl: pool name prefix for rm" "beta" "$S" _shmctl "$SHMCTL -d $D rm alpha b"
want "shmctl: stat takes one pool" "" "$S" _shmctl "$SHMCTL --dir $D stat alpha "
want "shmctl: list options" "--chunks" "$S" _shmctl "$SHMCTL list --c"
want "shmctl: list options by prefix" "--bytes" "$S" _shmctl "$SHMCTL list --b"
want "shmctl: --output columns, the last of a list" "POOL,SIZE POOL,STATE" \
	"$S" _shmctl "$SHMCTL list -o POOL,s"
want "shmctl: gc options" "--dry-run" "$S" _shmctl "$SHMCTL gc --dr"
# after '=', as bash splits the line: the value, in place of what follows the '='
want "shmctl: --output=PO completes the column" "POOL" "$S" _shmctl "$SHMCTL --output=PO"
want "shmctl: --output= lists the columns" \
	"BACKEND CHUNKS DEAD DISK FILES FREE HOLDERS KIND OWNER PID POOL SIZE STATE USED USERS" \
	"$S" _shmctl "$SHMCTL list --output="
want "shmctl: --output=POOL,s, the last of a list" "POOL,SIZE POOL,STATE" "$S" _shmctl "$SHMCTL list --output=POOL,s"
want "shmctl: --dir=DIR is the directory for pool names" "alpha beta" "$S" _shmctl "$SHMCTL --dir=$D stat "
want "shmctl: --dir= completes directories" "$D" "$S" _shmctl "$SHMCTL --dir=$D"
# --pid=1,PID: the last item from the running processes, this shell's among them
out=$(comp "$S" _shmctl "$SHMCTL --pid=1,$$")
if printf '%s\n' "$out" | grep -qx "1,$$" && ! printf '%s\n' "$out" | grep -qv "^1,$$"; then
	ok "shmctl: --pid=1,PID completes process IDs, the last of a list"; else
	fail "shmctl: --pid=1,PID"; printf '%s\n' "$out" | diag; fi
# with '=' not a word break (bash-completion's -n =): the whole word
want "shmctl: --output=PO, '=' not a break" "--output=POOL" "$S" _shmctl "$SHMCTL --output=PO" ' 	
"'"'"'><;|&(:'

X="$BC/daxsnap"
want "daxsnap: subcommands" "--help --version check-files convert create diff rebase replay show verify" \
	"$X" _daxsnap "$DAXSNAP "
want "daxsnap: verify options" "--base --cap --help --json --len" "$X" _daxsnap "$DAXSNAP verify --"
touch "$T/snap.v2" "$T/snap.json" "$T/disk.img"
want "daxsnap: files for show" "$T/snap.json $T/snap.v2" "$X" _daxsnap "$DAXSNAP show $T/snap"
want "daxsnap: --to values" "v1 v2" "$X" _daxsnap "$DAXSNAP convert --to "
want "daxsnap: --to=v values" "v1 v2" "$X" _daxsnap "$DAXSNAP convert --to=v"
want "daxsnap: --map NODEID=PATH completes the path after the '='" "$T/snap.json $T/snap.v2" \
	"$X" _daxsnap "$DAXSNAP check-files --map 1=$T/snap"
want "daxsnap: create --map 1=dis completes disk.img" "$T/disk.img" "$X" _daxsnap "$DAXSNAP create --map 1=$T/dis"
want "daxsnap: --map=1=dis too" "$T/disk.img" "$X" _daxsnap "$DAXSNAP create --map=1=$T/dis"
want "daxsnap: --output=FILE" "$T/disk.img" "$X" _daxsnap "$DAXSNAP create --output=$T/dis"
want "daxsnap: --format= values" "1 2" "$X" _daxsnap "$DAXSNAP create --format="
want "daxsnap: --map 1=dis, '=' not a break" "1=$T/disk.img" "$X" _daxsnap "$DAXSNAP create --map 1=$T/dis" ' 	
"'"'"'><;|&(:'

M="$BC/memcheck-guest"
want "memcheck-guest: options" "--json" "$M" _memcheck_guest "$MEMCHECK --js"
want "memcheck-guest: --tests from its --list, the last of a list" "dax,shm dax,snapshot dax,snapshot-gmem" \
	"$M" _memcheck_guest "$MEMCHECK --tests dax,s"
want "memcheck-guest: --tests=dax,s" "dax,shm dax,snapshot dax,snapshot-gmem" "$M" _memcheck_guest "$MEMCHECK --tests=dax,s"
want "memcheck-guest: --kernel=6. values" "6.1 6.12" "$M" _memcheck_guest "$MEMCHECK --kernel=6."
finish
