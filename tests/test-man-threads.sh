#!/bin/sh
# Every exported function states its thread safety and async-signal safety
# in its man page. For each symbol of the three version scripts
# (lib*/lib*.sym), man/SYMBOL.3 (after following a `.so` link) has a
# THREAD SAFETY section with an entry that names the function (an
# `.It Fn SYMBOL ...` line of its list) or covers every function of the
# page (`.It All functions of this page`), and that entry says MT-Safe or
# MT-Unsafe and AS-Safe or AS-Unsafe. A function named by several entries
# needs both words in each.
. "$top_srcdir/tests/tap.sh"
libs="libshm libdax libsandbox"
man="$top_srcdir/man"

# The names a version script exports: "name;" lines (not "local:", "*;").
sym_names() {
	sed -n 's/^[[:space:]]*\([A-Za-z_][A-Za-z0-9_]*\);[[:space:]]*$/\1/p' "$1"
}
# The target of a one-line link page, or nothing.
so_target() {
	sed -n '1s/^\.so  *\([^ ]*\) *$/\1/p' "$1"
}

# Prints "ok" or why page does not state sym's thread safety.
threads_of() { # sym page
	awk -v sym="$1" '
	function close_entry() {
		if (!inent)
			return
		good = text ~ /MT-(Safe|Unsafe)/ && text ~ /AS-(Safe|Unsafe)/
		if (named) {
			nnamed++
			if (!good)
				bad = 1
		} else if (all) {
			nall++
			if (!good)
				badall = 1
		}
		inent = 0
	}
	/^\.Sh / {
		close_entry()
		insec = $0 == ".Sh THREAD SAFETY"
		if (insec)
			sec = 1
		next
	}
	!insec { next }
	/^\.It( |$)/ || /^\.El( |$)/ {
		close_entry()
		if ($1 != ".It")
			next
		inent = 1; text = ""; named = 0
		all = $0 ~ /^\.It All functions of this page/
		for (i = 2; i < NF; i++)
			if ($i == "Fn" && $(i + 1) == sym)
				named = 1
	}
	inent { text = text " " $0 }
	END {
		close_entry()
		if (!sec)
			print "no THREAD SAFETY section"
		else if (nnamed && bad)
			print "an entry naming it lacks MT-Safe/MT-Unsafe or AS-Safe/AS-Unsafe"
		else if (nnamed)
			print "ok"
		else if (nall && !badall)
			print "ok"
		else if (nall)
			print "its all-functions entry lacks MT-Safe/MT-Unsafe or AS-Safe/AS-Unsafe"
		else
			print "THREAD SAFETY has no entry (.It Fn " sym ") for it"
	}' "$2"
}

n=0
for lib in $libs; do
	c=$(sym_names "$top_srcdir/$lib/$lib.sym" 2>/dev/null | grep -c . || true)
	n=$((n + (c > 0 ? c : 1)))
done
plan "$n"

for lib in $libs; do
	syms=$(sym_names "$top_srcdir/$lib/$lib.sym" 2>/dev/null)
	if [ -z "$syms" ]; then
		fail "$lib: $lib/$lib.sym lists no symbols"
		continue
	fi
	for sym in $syms; do
		page="$man/$sym.3"
		if [ ! -f "$page" ]; then
			fail "$lib: $sym: no man/$sym.3"
			continue
		fi
		t=$(so_target "$page")
		[ -n "$t" ] && page="$man/$(basename "$t")"
		if [ ! -f "$page" ]; then
			fail "$lib: $sym: .so $t: no such page in man/"
			continue
		fi
		why=$(threads_of "$sym" "$page")
		if [ "$why" = ok ]; then
			ok "$lib: $sym -> $(basename "$page")"
		else
			fail "$lib: $sym -> $(basename "$page"): $why"
		fi
	done
done
finish
