#!/bin/sh
# The file-level call graph of each library named on the command line (or
# in $CALLGRAPH_LIBS), derived from its objects: an edge a.o -> b.o when
# a.o has an undefined symbol that b.o defines (nm of the library's
# internal archive, $top_builddir/LIB/.libs/LIB-internal.a, or of the
# convenience library $top_builddir/LIB/.libs/libLIB.a: vmm). Fails on a
# cycle (a file that, through other files, calls back into itself), and
# prints the cycle. Layers that only call downward have none.
#   usage: tests/callgraph.sh [-v] LIB...     e.g. tests/callgraph.sh libdax
# -v prints every edge.
. "$top_srcdir/tests/tap.sh"
verbose=0
[ "${1:-}" = -v ] && { verbose=1; shift; }
[ $# -gt 0 ] || set -- ${CALLGRAPH_LIBS:-libdax libsandbox libshm vmm}
plan $#
for lib in "$@"; do
	ar="$top_builddir/$lib/.libs/$lib-internal.a"
	[ -f "$ar" ] || ar="$top_builddir/$lib/.libs/lib$lib.a"
	if [ ! -f "$ar" ]; then
		fail "$lib: $ar not built"
		continue
	fi
	# nm -A: "archive:member.o: [addr] TYPE symbol"; edges "from to" between members.
	edges=$(nm -A "$ar" 2>/dev/null | awk '
		{ split($1, p, ":"); obj = p[2]; sub(/^.*_la-/, "", obj); sub(/\.o$/, "", obj)
		  sym = $NF; type = $(NF - 1)
		  if (type == "U") { use[obj, sym] = 1; users[sym] = users[sym] " " obj }
		  else if (type ~ /[TDBRCGSVW]/) def[sym] = obj }
		END { for (sym in users) if (sym in def) {
			n = split(users[sym], u, " ")
			for (i = 1; i <= n; i++) if (u[i] != def[sym]) edge[u[i] " " def[sym]] = 1 }
		      for (e in edge) print e }' | sort -u)
	[ $verbose = 1 ] && printf '%s\n' "$edges" | sed "s/ / -> /; s/^/# $lib: /"
	# A cycle: repeatedly drop files that call nobody left; whatever remains is in or above a cycle.
	cycle=$(printf '%s\n' "$edges" | awk '
		NF == 2 { e[$1, $2] = 1; out[$1]++; node[$1]; node[$2] }
		END {
			changed = 1
			while (changed) {
				changed = 0
				for (n in node) if (!out[n]) {
					for (k in e) { split(k, p, SUBSEP)
						if (p[2] == n) { delete e[k]; out[p[1]]-- } }
					delete node[n]; changed = 1
				}
			}
			for (k in e) { split(k, p, SUBSEP); print p[1] " -> " p[2] }
		}' | sort)
	if [ -z "$cycle" ]; then
		ok "$lib: no file-level call cycle ($(printf '%s\n' "$edges" | grep -c .) edges)"
	else
		fail "$lib: file-level call cycle among these calls"
		printf '%s\n' "$cycle" | diag
	fi
done
finish
