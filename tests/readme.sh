#!/bin/sh
# SPDX-License-Identifier: GPL-2.0-or-later
# README's "Use" section works as written: each command of its sh block runs
# as a user would type it, in a fresh directory, with the tools just built
# first on the PATH; the cc line against an install (DESTDIR) found only
# through pkg-config, building libshm(3)'s example, which then runs. The
# plain `memcheck-guest` (README's main job) is tests/test-memcheck.sh's.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/man-example.sh"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/memkit-readme-XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# The commands of the first sh block after "## Use", comments cut.
awk '/^## / { use = ($0 == "## Use") }
     use && blk && /^```/ { exit }
     use && blk { print }
     use && /^```sh/ { blk = 1 }' "$top_srcdir/README.md" |
	sed -e 's/  *# .*$//' > "$tmp/commands"
n=$(grep -c . "$tmp/commands")
if [ "$n" -lt 5 ]; then
	plan 1; fail "README.md: no sh block of commands under ## Use"; finish
fi
plan "$n"

root="$tmp/root"
if ! out=$(cd "$top_builddir" && MAKEFLAGS= $MAKE install DESTDIR="$root" 2>&1); then
	printf '%s\n' "$out" | tail -20 | diag
fi
pcdir=$(dirname "$(find "$root" -name libshm.pc | head -n1)")
libdir=$(dirname "$(find "$root" -name libshm.so | head -n1)")
mkdir "$tmp/work"
man_example "$top_srcdir/man/libshm.3" > "$tmp/work/example.c"

alone= shm=
if [ "$(id -u)" = 0 ] && unshare --mount --pid --fork --mount-proc true 2>/dev/null; then
	alone="unshare --mount --pid --fork --mount-proc"
	shm="mount -t tmpfs -o mode=1777 memkit-readme /dev/shm && "
fi
while IFS= read -r cmd; do
	[ -n "$cmd" ] || continue
	if [ "$cmd" = memcheck-guest ]; then
		ok "README: $cmd (README's main job: tests/test-memcheck.sh runs it from /tmp, /run and /var/tmp)"
		continue
	fi
	run=$cmd
	case $cmd in
	cc\ *)
		# a sanitizer build's libraries need the sanitizers linked in; then run it
		[ -n "${MK_SAN_FLAGS:-}" ] && run="${CC:-cc} $MK_SAN_FLAGS ${cmd#cc }"
		run="$run && LD_LIBRARY_PATH='$libdir' ./example" ;;
	esac
	# the pkg-config of an installed memkit (here a DESTDIR), the tools just built;
	# as root in a machine of its own (PID and mount namespaces, an empty
	# /dev/shm): other tests' pools, some damaged on purpose, stay out of sight
	if out=$(cd "$tmp/work" && PATH="$top_builddir/tools:$PATH" PKG_CONFIG_PATH="$pcdir" \
		PKG_CONFIG_SYSROOT_DIR="$root" $alone sh -c "$shm$run" 2>&1 </dev/null); then
		ok "README: $cmd"
	else
		fail "README: $cmd (exit $?)"
	fi
	printf '%s\n' "$out" | head -n 12 | diag
done < "$tmp/commands"
finish
