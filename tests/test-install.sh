#!/bin/sh
# Install into a scratch DESTDIR, then build and run a consumer that knows
# only what pkg-config tells it.
. "$top_srcdir/tests/tap.sh"
plan 4
tmp=$(mktemp -d "${TMPDIR:-/tmp}/memkit-install-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
root="$tmp/root"

if out=$(cd "$top_builddir" && MAKEFLAGS= $MAKE install DESTDIR="$root" 2>&1); then
	ok "make install DESTDIR"
else
	fail "make install DESTDIR"; printf '%s\n' "$out" | tail -20 | diag; finish
fi

pcdir=$(dirname "$(find "$root" -name libshm.pc | head -n1)")
export PKG_CONFIG_PATH="$pcdir" PKG_CONFIG_SYSROOT_DIR="$root"
ver_ok=1
for lib in libshm libdax libsandbox; do
	v=$($PKG_CONFIG --modversion $lib 2>&1) || { ver_ok=0; echo "$v" | diag; }
done
[ $ver_ok = 1 ] && ok "pkg-config --modversion libshm libdax libsandbox" || fail "pkg-config --modversion"

flags=$($PKG_CONFIG --cflags --libs libshm libdax libsandbox)
# shellcheck disable=SC2086
if out=$($CC $MK_SAN_FLAGS -o "$tmp/consumer" "$top_srcdir/tests/consumer.c" $flags 2>&1); then
	ok "consumer builds from pkg-config flags alone"
else
	fail "consumer builds from pkg-config flags alone"; printf '%s\n' "$out" | diag; finish
fi

libdir=$(dirname "$(find "$root" -name 'libshm.so' | head -n1)")
expect="libshm $($PKG_CONFIG --modversion libshm) libdax $($PKG_CONFIG --modversion libdax) libsandbox $($PKG_CONFIG --modversion libsandbox)"
if out=$(LD_LIBRARY_PATH="$libdir" "$tmp/consumer" 2>&1) && [ "$out" = "$expect" ]; then
	ok "consumer runs against installed libraries"
else
	fail "consumer runs against installed libraries"
	printf 'got: %s\nwant: %s\n' "$out" "$expect" | diag
fi
finish
