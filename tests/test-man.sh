#!/bin/sh
# Every man page is clean under mandoc -Tlint (warnings and up).
. "$top_srcdir/tests/tap.sh"
pages=$(ls "$top_srcdir"/man/*.[1-9] 2>/dev/null)
n=$(printf '%s\n' "$pages" | grep -c . || true)
if [ "$n" -eq 0 ]; then
	plan 1; fail "no man pages in man/"; finish
fi
plan "$n"
for p in $pages; do
	name=$(basename "$p")
	if [ -z "$MANDOC" ]; then
		skip "$name: mandoc not installed"
		continue
	fi
	check "mandoc -Tlint $name" "$MANDOC" -Tlint -W warning "$p"
done
finish
