#!/bin/sh
# The libraries build alone (issue #23): a copy of the distributed tree,
# configured with --disable-tools --disable-tests where pkg-config finds
# nothing (no GLib, json-glib, smartcols or bash-completion) and there is no
# C++ compiler, builds and installs the three libraries, their headers,
# .pc files and man pages, and nothing else.
. "$top_srcdir/tests/tap.sh"
plan 6
tmp=$(mktemp -d "${TMPDIR:-/tmp}/memkit-alone-XXXXXX")
trap 'chmod -R u+w "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
src="$tmp/src" root="$tmp/root"
# No make jobserver of the outer make check: these makes run on their own.
unset MAKEFLAGS MFLAGS

# The tree a tarball would hold (make distdir), so a file the build needs
# but dist leaves out fails here too.
if out=$(cd "$top_builddir" && $MAKE distdir distdir="$src" 2>&1); then
	ok "make distdir: a copy of the distributed tree"
else
	fail "make distdir"; printf '%s\n' "$out" | tail -20 | diag; finish
fi
chmod -R u+w "$src"

mkdir "$tmp/no-pc"
if out=$(cd "$src" && env -u PKG_CONFIG_PATH PKG_CONFIG_LIBDIR="$tmp/no-pc" CXX=false \
	./configure --disable-tools --disable-tests --prefix=/usr 2>&1); then
	ok "configure --disable-tools --disable-tests: no GLib, smartcols, json-glib or C++"
else
	fail "configure --disable-tools --disable-tests without GLib"; printf '%s\n' "$out" | tail -20 | diag; finish
fi
# Not an accident of this machine: pkg-config really found nothing.
if (cd "$src" && env -u PKG_CONFIG_PATH PKG_CONFIG_LIBDIR="$tmp/no-pc" ${PKG_CONFIG:-pkg-config} --exists glib-2.0); then
	fail "pkg-config still finds glib-2.0 with PKG_CONFIG_LIBDIR empty"
else
	ok "pkg-config finds no glib-2.0 there"
fi

if out=$(cd "$src" && $MAKE 2>&1); then
	ok "make builds the libraries"
else
	fail "make"; printf '%s\n' "$out" | tail -30 | diag; finish
fi
if out=$(cd "$src" && $MAKE install DESTDIR="$root" 2>&1); then
	ok "make install DESTDIR"
else
	fail "make install DESTDIR"; printf '%s\n' "$out" | tail -30 | diag; finish
fi

# What was installed: the libraries and what documents them, and no tool.
want="usr/include/memkit/dax.h usr/include/memkit/sandbox.h usr/include/memkit/shm.h
usr/share/man/man3/dax_session_new.3 usr/share/man/man3/libdax.3
usr/share/man/man3/libsandbox.3 usr/share/man/man3/libshm.3
usr/share/man/man3/sbx_mem_new.3 usr/share/man/man3/shma_alloc.3
usr/share/man/man5/daxsnap.5 usr/share/man/man5/memkit-snapshot.5
usr/share/man/man7/memkit.7"
missing="" extra=""
for f in $want; do [ -e "$root/$f" ] || missing="$missing $f"; done
for lib in libshm libdax libsandbox; do
	ls "$root"/usr/lib*/$lib.so.[0-9]* >/dev/null 2>&1 || missing="$missing $lib.so.N"
	ls "$root"/usr/lib*/pkgconfig/$lib.pc >/dev/null 2>&1 || missing="$missing $lib.pc"
done
for d in usr/bin usr/libexec usr/share/man/man1 usr/share/bash-completion; do
	[ -n "$(find "$root/$d" -type f 2>/dev/null)" ] && extra="$extra $d"
done
if [ -z "$missing$extra" ]; then
	ok "installed: the three libraries, headers, .pc files and man pages; no tool"
else
	fail "installed files"
	{ [ -z "$missing" ] || echo "missing:$missing"; [ -z "$extra" ] || echo "not wanted:$extra"
	  (cd "$root" && find . | sort); } | diag
fi
finish
