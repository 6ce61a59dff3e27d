#!/bin/sh
# Every man page is clean under mandoc -Tlint (warnings and up) or is a
# one-line .so link to a page that names it, and every
# function a library exports is named (.Nm) by one of the pages.
. "$top_srcdir/tests/tap.sh"
pages=$(ls "$top_srcdir"/man/*.[1-9] 2>/dev/null)
n=$(printf '%s\n' "$pages" | grep -c . || true)
if [ "$n" -eq 0 ]; then
	plan 1; fail "no man pages in man/"; finish
fi
plan $((n + 3))
for p in $pages; do
	name=$(basename "$p")
	# A link page: one `.so man3/GROUP.3` line whose group page names it.
	target=$(sed -n '1s/^\.so  *\([^ ]*\) *$/\1/p' "$p")
	if [ -n "$target" ]; then
		group="$top_srcdir/man/$(basename "$target")"
		if [ "$(wc -l < "$p")" -eq 1 ] && [ -f "$group" ] &&
		   grep -qE "^\.Nm ${name%.*}( ,)?\$" "$group"; then
			ok "$name: link to $target"
		else
			fail "$name: .so $target: no such page in man/, or it does not name ${name%.*}"
		fi
		continue
	fi
	if [ -z "$MANDOC" ]; then
		skip "$name: mandoc not installed"
		continue
	fi
	check "mandoc -Tlint $name" "$MANDOC" -Tlint -W warning "$p"
done
for lib in libshm libdax libsandbox; do
	so="$top_builddir/$lib/.libs/$lib.so"
	if [ ! -f "$so" ]; then
		fail "$lib: $so not built"
		continue
	fi
	missing=""
	for sym in $(nm -D --defined-only "$so" | awk '$2 == "T" { print $3 }' | sed 's/@.*//'); do
		grep -qE "^\.Nm $sym( ,)?\$" "$top_srcdir"/man/*.3 || missing="$missing $sym"
	done
	if [ -z "$missing" ]; then
		ok "$lib: every exported function has a man page"
	else
		fail "$lib: exported functions without a man page:$missing"
	fi
done
finish
