#!/bin/sh
# The program in the EXAMPLES section of each library's overview page
# (libshm(3), libdax(3), libsandbox(3)) is complete: extracted from the
# page (the first .Bd -literal display, roff escapes undone), it compiles
# with -Wall -Werror against the public headers as <memkit/NAME.h>, links
# against the library just built and exits 0 (each program checks its own
# results). libshm(3)'s program, stopped while it holds its pool, shows in a
# fresh `shmctl list`.
. "$top_srcdir/tests/tap.sh"
. "$top_srcdir/tests/man-example.sh"
plan 7
tmp=$(mktemp -d "${TMPDIR:-/tmp}/memkit-man-examples-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$tmp/include/memkit"
for h in libshm/shm.h libdax/dax.h libsandbox/sandbox.h; do
	ln -s "$top_srcdir/$h" "$tmp/include/memkit/"
done


# The example creates a memfd pool (libshm's default) and prints while it
# holds it: with its standard output unbuffered (stdbuf) into a pipe that is
# already full, it waits in that printf, pool and all. A fresh `shmctl list`
# must show that pool, held by the example, under the name the example then
# prints.
shmctl_sees_example() {
	if ! command -v stdbuf >/dev/null; then
		fail "libshm.3: shmctl list shows the EXAMPLES program's pool (no stdbuf)"; return
	fi
	# stdbuf preloads its library ahead of the sanitizers' runtime
	if out=$(ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}verify_asan_link_order=0" \
		LD_LIBRARY_PATH="$top_builddir/libshm/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
		python3 - "$1" "$top_builddir/tools/shmctl" 2>&1 <<'PY'
import fcntl, json, os, subprocess, sys, time
example, shmctl = sys.argv[1], sys.argv[2]
r, w = os.pipe()
fcntl.fcntl(w, fcntl.F_SETFL, os.O_NONBLOCK)
try:
    while True:
        os.write(w, b"\n" * 4096)
except BlockingIOError:
    pass
fcntl.fcntl(w, fcntl.F_SETFL, 0)
p = subprocess.Popen(["stdbuf", "-o0", example], stdout=w, cwd=os.path.dirname(example))
os.close(w)
pools, deadline = [], time.monotonic() + 30
while not pools and time.monotonic() < deadline and p.poll() is None:
    # exit 1 if some other process holds a damaged pool: the document is whole all the same
    d = json.loads(subprocess.run([shmctl, "list", "--json"], stdout=subprocess.PIPE).stdout)
    pools = [x for x in d["pools"] if any(h["pid"] == p.pid for h in x["holders"])]
    if not pools:
        time.sleep(0.05)
out = b"".join(iter(lambda: os.read(r, 65536), b""))
assert p.wait() == 0, "the example failed"
assert len(pools) == 1, "shmctl list did not show a pool held by the example: %r" % d
x = pools[0]
assert x["backend"] == "memfd" and x["state"] == "alive" and x["users"] == 1, x
printed = out.decode().strip().splitlines()[-1]
assert printed.startswith(x["pool"] + ": "), (printed, x["pool"])
print("shmctl saw %s (%s, %s), held by the example (pid %d)" % (x["pool"], x["backend"], x["state"], p.pid))
PY
	); then
		ok "libshm.3: a fresh shmctl list shows the EXAMPLES program's memfd pool while it runs"
		printf '%s\n' "$out" | diag
	else
		fail "libshm.3: a fresh shmctl list shows the EXAMPLES program's memfd pool while it runs"
		printf '%s\n' "$out" | diag
	fi
}

for lib in libshm libdax libsandbox; do
	page="$top_srcdir/man/$lib.3"
	src="$tmp/$lib.c"
	man_example "$page" > "$src"
	if ! grep -q 'main(' "$src"; then
		fail "$lib.3: EXAMPLES holds a program"
		skip "$lib.3: EXAMPLES program runs (no program)"
		continue
	fi
	# shellcheck disable=SC2086
	if out=$($CC $MK_SAN_FLAGS -std=gnu11 -Wall -Werror -I"$tmp/include" -o "$tmp/$lib" "$src" \
		-L"$top_builddir/$lib/.libs" -l"${lib#lib}" 2>&1); then
		ok "$lib.3: EXAMPLES program compiles and links against $lib"
	else
		fail "$lib.3: EXAMPLES program compiles and links against $lib"
		printf '%s\n' "$out" | diag
		skip "$lib.3: EXAMPLES program runs (did not build)"
		continue
	fi
	if out=$(cd "$tmp" && LD_LIBRARY_PATH="$top_builddir/$lib/.libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
		"$tmp/$lib" 2>&1); then
		ok "$lib.3: EXAMPLES program runs"
		printf '%s\n' "$out" | diag
	else
		fail "$lib.3: EXAMPLES program runs (exit $?)"
		printf '%s\n' "$out" | diag
	fi
	[ "$lib" = libshm ] && shmctl_sees_example "$tmp/$lib"
done
finish
