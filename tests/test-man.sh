#!/bin/sh
# The man pages, as `make install` puts them:
#  - every page is clean under mandoc -Tlint (warnings and up); a link page
#    is one `.so man3/GROUP.3` line whose group page names it in NAME (.Nm);
#  - after `make install-man DESTDIR=...`, `man -M MANDIR 3 NAME` finds a
#    page for every function each library exports (nm -D of the built .so),
#    and that page (after following .so) names the function in NAME;
#  - every cross-reference (.Xr) to one of memkit's own pages resolves to an
#    installed page.
. "$top_srcdir/tests/tap.sh"
libs="libshm libdax libsandbox"
# Cross-references to these names are memkit's own and must resolve.
own_re='^(shma_|dax_|sbx_)|^(libshm|libdax|libsandbox|memkit|memkit-microvm|memkit-snapshot|shmctl|daxsnap|memcheck-guest)$'

pages=$(ls "$top_srcdir"/man/*.[1-9] 2>/dev/null)
n=$(printf '%s\n' "$pages" | grep -c . || true)
if [ "$n" -eq 0 ]; then
	plan 1; fail "no man pages in man/"; finish
fi

# The names a page's NAME section lists (.Nm NAME up to the next .Sh).
nm_names() {
	sed -n '/^\.Sh NAME/,/^\.Sh /s/^\.Nm \([A-Za-z0-9_.-]*\).*/\1/p' "$1"
}
# The target of a one-line link page, or nothing.
so_target() {
	sed -n '1s/^\.so  *\([^ ]*\) *$/\1/p' "$1"
}

# The exported functions of each library.
for lib in $libs; do
	so="$top_builddir/$lib/.libs/$lib.so"
	syms=""
	[ -f "$so" ] && syms=$(nm -D --defined-only "$so" | awk '$2 == "T" { print $3 }' | sed 's/@.*//' | sort)
	eval "syms_$lib=\"\$syms\""
done
nsyms=0
for lib in $libs; do
	eval "syms=\$syms_$lib"
	c=$(printf '%s\n' "$syms" | grep -c . || true)
	nsyms=$((nsyms + (c > 0 ? c : 1)))
done

plan $((n + 1 + nsyms + n + 1))

# 1. Lint, or for a link page: its group page exists and names it.
for p in $pages; do
	name=$(basename "$p")
	target=$(so_target "$p")
	if [ -n "$target" ]; then
		fn=${name%.*}
		if [ "$(wc -l < "$p")" -ne 1 ]; then
			fail "$name: a link page is one .so line"
		elif [ ! -f "$top_srcdir/man/$(basename "$target")" ]; then
			fail "$name: .so $target: no such page in man/"
		elif ! nm_names "$top_srcdir/man/$(basename "$target")" | grep -qx "$fn"; then
			fail "$name: $(basename "$target") does not name $fn in NAME"
		else
			ok "$name: link to $target"
		fi
		continue
	fi
	if [ -z "$MANDOC" ]; then
		skip "$name: mandoc not installed"
		continue
	fi
	check "mandoc -Tlint $name" "$MANDOC" -Tlint -W warning "$p"
done

# 2. Install the pages the way `make install` does.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/memkit-man-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
if out=$(cd "$top_builddir" && MAKEFLAGS= $MAKE install-man DESTDIR="$tmp/root" 2>&1) &&
   mandir=$(dirname "$(find "$tmp/root" -type d -name man3 | head -n1)") &&
   [ -d "$mandir/man3" ]; then
	ok "make install-man DESTDIR (mandir ${mandir#"$tmp/root"})"
else
	fail "make install-man DESTDIR"
	printf '%s\n' "$out" | tail -20 | diag
	mandir="$tmp/none"
fi

# Where `man -M mandir SEC NAME` finds NAME, following a .so link (one
# level, as man-db and mandoc do): prints the page that holds the text.
have_man=0
command -v man > /dev/null 2>&1 && have_man=1
resolve() { # sec name
	f="$mandir/man$1/$2.$1"
	[ -f "$f" ] || return 1
	if [ $have_man = 1 ]; then
		MANOPT= MANSECT= man -M "$mandir" -w "$1" "$2" > /dev/null 2>&1 || return 1
	fi
	t=$(so_target "$f")
	if [ -n "$t" ]; then
		f="$mandir/$t"
		[ -f "$f" ] && [ -z "$(so_target "$f")" ] || return 1
	fi
	printf '%s\n' "$f"
}

# 3. man 3 NAME for every exported function.
for lib in $libs; do
	eval "syms=\$syms_$lib"
	if [ -z "$syms" ]; then
		fail "$lib: $top_builddir/$lib/.libs/$lib.so not built or exports nothing"
		continue
	fi
	for sym in $syms; do
		if ! page=$(resolve 3 "$sym"); then
			fail "$lib: man 3 $sym: no installed page"
		elif ! nm_names "$page" | grep -qx "$sym"; then
			fail "$lib: man 3 $sym: $(basename "$page") does not name it in NAME"
		else
			ok "$lib: man 3 $sym -> $(basename "$page")"
		fi
	done
done

# 4. Every .Xr to a memkit page resolves to an installed page.
for p in $pages; do
	name=$(basename "$p")
	if [ -n "$(so_target "$p")" ]; then
		ok "$name: link page, no cross-references"
		continue
	fi
	bad=""
	# .Xr at the start of a macro line or called inside one (.Pq Xr ...).
	refs=$(grep '^\.' "$p" | grep -oE '(^\.| )Xr +[A-Za-z0-9_.-]+ +[1-9]' |
		awk '{ print $2, $3 }' | sort -u)
	while read -r ref sec; do
		[ -n "$ref" ] || continue
		printf '%s\n' "$ref" | grep -qE "$own_re" || continue
		resolve "$sec" "$ref" > /dev/null || bad="$bad $ref($sec)"
	done <<EOF
$refs
EOF
	if [ -z "$bad" ]; then
		ok "$name: every .Xr to a memkit page resolves"
	else
		fail "$name: .Xr without an installed page:$bad"
	fi
done

# 5. memkit(7) SEE ALSO names every page that is not a link.
missing=""
see=$(sed -n '/^\.Sh SEE ALSO/,/^\.Sh /s/^\.Xr  *\([^ ]*\)  *\([1-9]\).*/\1.\2/p' "$top_srcdir/man/memkit.7")
for p in $pages; do
	name=$(basename "$p")
	[ "$name" = memkit.7 ] && continue
	[ -n "$(so_target "$p")" ] && continue
	printf '%s\n' "$see" | grep -qxF "$name" || missing="$missing $name"
done
if [ -z "$missing" ]; then
	ok "memkit.7: SEE ALSO names every page"
else
	fail "memkit.7: SEE ALSO lacks:$missing"
fi
finish
