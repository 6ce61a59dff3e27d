#!/bin/sh
# Each shared library exports only its public prefix, and exactly the
# symbols its version script lists, each in the node that lists it
# (nm -D --defined-only shows name@@NODE).
# Every name is listed: a glob (shma_*) would let the next new function
# slip into an old, released node, so a glob entry is an error.
# The version script names the soname its nodes belong to ("soname:
# libshm.so.3" in its header comment): an ABI break changes the soname
# (libtool current, age 0) and starts the nodes afresh, and this keeps the
# two in step.
. "$top_srcdir/tests/tap.sh"
plan 9
for spec in libshm:shma_ libdax:dax_ libsandbox:sbx_; do
	lib=${spec%%:*}
	prefix=${spec#*:}
	so="$top_builddir/$lib/.libs/$lib.so"
	sym="$top_srcdir/$lib/$lib.sym"
	if [ ! -f "$so" ]; then
		fail "$lib: $so not built"
		fail "$lib: $so not built"
		fail "$lib: $so not built"
		continue
	fi
	soname=$(readelf -d "$so" | sed -n 's/.*(SONAME).*\[\(.*\)\].*/\1/p')
	symso=$(sed -n 's/^ \* soname: *\([^ ]*\) *$/\1/p' "$sym")
	if [ -n "$soname" ] && [ "$soname" = "$symso" ]; then
		ok "$lib: soname $soname is the one $lib.sym names"
	else
		fail "$lib: soname '$soname' but $lib.sym names '$symso'"
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

	# "NODE name" for each global entry of the version script (comments dropped).
	listed=$(sed 's|/\*.*\*/||; /\/\*/,/\*\//d' "$sym" | awk '
		/^[A-Za-z0-9_.]+[ \t]*\{/ { node = $1; global = 0; next }
		/global:/ { global = 1; next }
		/local:/ { global = 0; next }
		/^[ \t]*\}/ { global = 0; next }
		global && /;/ { gsub(/[ \t;]/, ""); if ($0 != "") print node, $0 }')
	# "NODE name" for each exported symbol.
	exported=$(nm -D --defined-only "$so" | awk '$2 != "A" && $3 ~ /@/ {
		split($3, a, "@+"); sub(/^@+/, "", a[2]); print a[2], a[1] }' | sed 's/@//g')
	problems=""
	# every exported symbol is listed in its node (by name, or by a glob of that node)
	while read -r node name; do
		[ -n "$name" ] || continue
		found=0
		while read -r lnode lname; do
			[ "$lnode" = "$node" ] || continue
			# shellcheck disable=SC2254
			case $name in $lname) found=1; break ;; esac
		done <<-LISTED
		$listed
		LISTED
		[ $found = 1 ] || problems="$problems
exported but not listed in $node: $name"
	done <<-EXPORTED
	$exported
	EXPORTED
	# every name listed is exported, from the node that lists it
	while read -r lnode lname; do
		case $lname in ''|*'*'*) continue ;; esac
		printf '%s\n' "$exported" | grep -qx "$lnode $lname" ||
			problems="$problems
listed in $lnode but not exported from it: $lname"
	done <<-LISTED
	$listed
	LISTED
	globs=$(printf '%s\n' "$listed" | awk '$2 ~ /[*?[]/ { print $1 ": " $2 }')
	[ -z "$globs" ] || problems="$problems
a glob instead of names: $globs"
	if [ -z "$problems" ]; then
		ok "$lib: $lib.sym lists exactly what nm -D shows ($(printf '%s\n' "$exported" | wc -l) symbols, by name)"
	else
		fail "$lib: $lib.sym and nm -D differ"
		printf '%s\n' "$problems" | sed '/^$/d' | diag
	fi
done
finish
