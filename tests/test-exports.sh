#!/bin/sh
# Each shared library exports only its public prefix (and its version node).
. "$top_srcdir/tests/tap.sh"
plan 3
for spec in libshm:shma_ libdax:dax_ libsandbox:sbx_; do
	lib=${spec%%:*}
	prefix=${spec#*:}
	so="$top_builddir/$lib/.libs/$lib.so"
	if [ ! -f "$so" ]; then
		fail "$lib: $so not built"
		continue
	fi
	# Defined dynamic symbols, less the version-node symbols (absolute, ABS).
	syms=$(nm -D --defined-only "$so" | awk '$2 != "A" { print $3 }' | sed 's/@.*//')
	bad=$(printf '%s\n' "$syms" | grep -v "^$prefix" || true)
	n=$(printf '%s\n' "$syms" | grep -c "^$prefix" || true)
	if [ -z "$bad" ] && [ "$n" -gt 0 ]; then
		ok "$lib exports $n symbols, all ${prefix}*"
	else
		fail "$lib exports symbols outside ${prefix}* (or none)"
		printf '%s\n' "$bad" | diag
	fi
done
finish
