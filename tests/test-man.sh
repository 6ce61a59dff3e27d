#!/bin/sh
# Every man page is clean under mandoc -Tlint (warnings and up), and every
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
