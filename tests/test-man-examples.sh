#!/bin/sh
# The program in the EXAMPLES section of each library's overview page
# (libshm(3), libdax(3), libsandbox(3)) is complete: extracted from the
# page (the first .Bd -literal display, roff escapes undone), it compiles
# with -Wall -Werror against the public headers as <memkit/NAME.h>, links
# against the library just built and exits 0 (each program checks its own
# results).
. "$top_srcdir/tests/tap.sh"
plan 6
tmp=$(mktemp -d "${TMPDIR:-/tmp}/memkit-man-examples-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/include/memkit"
for h in libshm/shm.h libdax/dax.h libsandbox/sandbox.h; do
	ln -s "$top_srcdir/$h" "$tmp/include/memkit/"
done

# The first literal display of the EXAMPLES section, as C source.
extract() {
	awk '/^\.Sh / { ex = ($0 == ".Sh EXAMPLES") }
	     bd && /^\.Ed/ { exit }
	     bd { print }
	     ex && /^\.Bd -literal/ { bd = 1 }' "$1" |
		sed -e 's/\\&//g' -e 's/\\-/-/g' -e 's/\\e/\\/g'
}

for lib in libshm libdax libsandbox; do
	page="$top_srcdir/man/$lib.3"
	src="$tmp/$lib.c"
	extract "$page" > "$src"
	if ! grep -q 'main(' "$src"; then
		fail "$lib.3: EXAMPLES holds a program"
		skip "$lib.3: EXAMPLES program runs (no program)"
		continue
	fi
	# shellcheck disable=SC2086
	if out=$($CC $MK_SAN_FLAGS -std=gnu11 -Wall -Werror -I"$tmp/include" -o "$tmp/$lib" "$src" \
		-L"$top_builddir/$lib/.libs" -l"${lib#lib}" 2>&1); then
		ok "$lib.3: EXAMPLES program compiles and links against $lib"
	else
		fail "$lib.3: EXAMPLES program compiles and links against $lib"
		printf '%s\n' "$out" | diag
		skip "$lib.3: EXAMPLES program runs (did not build)"
		continue
	fi
	if out=$(cd "$tmp" && LD_LIBRARY_PATH="$top_builddir/$lib/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
		"$tmp/$lib" 2>&1); then
		ok "$lib.3: EXAMPLES program runs"
		printf '%s\n' "$out" | diag
	else
		fail "$lib.3: EXAMPLES program runs (exit $?)"
		printf '%s\n' "$out" | diag
	fi
done
finish
