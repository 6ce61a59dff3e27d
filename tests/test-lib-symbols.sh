#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Each shared library carries only the parts of common/ it calls. common/
# is linked into every library whole (a convenience archive); compiled a
# section per function and linked with --gc-sections, a library keeps the
# functions it reaches and no others. For each library and each of common's
# objects: if nothing in the library's own objects reaches that object (its
# global functions, directly or through other common objects it reaches),
# the .so holds none of its functions. libshm, which makes no KVM calls,
# holds no mk_kvm_* and, without a hash table, no mk_hash_*. Reads the
# symbol tables (nm) of the build tree's objects and .so files.
. "$top_srcdir/tests/tap.sh"
NM=${NM:-nm}
b=$top_builddir
libs="libshm libdax libsandbox"
plan 3

for lib in $libs; do
	so="$b/$lib/.libs/$lib.so"
	if python3 - "$NM" "$so" "$b/common/.libs" "$b/$lib/.libs" "$lib" >"$b/tests/lib-symbols.$lib.out" 2>&1 <<'PY'
import glob, os, subprocess, sys
nm, so, common_dir, lib_dir, lib = sys.argv[1:]

def syms(path):
    """(defined globals, undefined) of one object, mk_ names only."""
    out = subprocess.run([nm, path], stdout=subprocess.PIPE, check=True, text=True).stdout
    d, u = set(), set()
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 2 and f[-1].startswith("mk_"):
            (u if f[-2] == "U" else d if f[-2] in "TDBR" else set()).add(f[-1])
    return d, u

common = {os.path.basename(o): syms(o) for o in glob.glob(os.path.join(common_dir, "libcommon_la-*.o"))}
own = glob.glob(os.path.join(lib_dir, lib + "_internal_la-*.o"))
assert common and own, (common_dir, lib_dir)
need = set()
for o in own:
    need |= syms(o)[1]
reached, grew = set(), True
while grew:
    grew = False
    for name, (d, u) in common.items():
        if name not in reached and d & need:
            reached.add(name)
            need |= u
            grew = True
out = subprocess.run([nm, so], stdout=subprocess.PIPE, check=True, text=True).stdout
held = {l.split()[-1] for l in out.splitlines() if l.split()[-2:-1] in (["t"], ["T"])}
bad = []
for name, (d, u) in sorted(common.items()):
    if name not in reached and d & held:
        bad.append("%s (never called) left %s" % (name, ", ".join(sorted(d & held)[:4])))
print("%s: reaches %s; holds %d of common's functions" %
      (lib, " ".join(sorted(n[len("libcommon_la-"):-2] for n in reached)),
       len(held & set().union(*(d for d, u in common.values())))))
if bad:
    print("\n".join(bad))
    sys.exit(1)
PY
	then
		ok "$lib.so holds only the parts of common/ it calls"; diag <"$b/tests/lib-symbols.$lib.out"
	else
		fail "$lib.so holds parts of common/ it never calls"; diag <"$b/tests/lib-symbols.$lib.out"
	fi
	rm -f "$b/tests/lib-symbols.$lib.out"
done
finish
