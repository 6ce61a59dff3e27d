#!/bin/sh
# Write a one-line link page man/NAME.3 (".so man3/GROUP.3") for every
# function that a group page names in its NAME section (.Nm NAME) but that
# has no page of its own, for the name prefixes given (default: shma_ sbx_).
# Existing files are never touched. Prints each page it writes; list them in
# man/Makemodule.am (tests/test-man.sh checks that every exported function
# resolves after `make install`).
#   usage: man/update-links.sh [PREFIX...]     e.g. man/update-links.sh dax_
set -eu
cd "$(dirname "$0")"
[ $# -gt 0 ] || set -- shma_ sbx_
for page in *.3; do
	# A link page itself names nothing.
	head -n1 "$page" | grep -q '^\.so ' && continue
	group=${page%.3}
	# .Nm lines of the NAME section only (up to the next .Sh).
	names=$(sed -n '/^\.Sh NAME/,/^\.Sh /s/^\.Nm \([A-Za-z0-9_]*\).*/\1/p' "$page")
	for name in $names; do
		[ "$name" = "$group" ] && continue
		want=0
		for prefix in "$@"; do
			case $name in "$prefix"*) want=1 ;; esac
		done
		[ $want = 1 ] || continue
		[ -e "$name.3" ] && continue
		printf '.so man3/%s.3\n' "$group" > "$name.3"
		echo "man/$name.3"
	done
done
