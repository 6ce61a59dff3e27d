#!/bin/sh
# The one set-up command: install dependencies, build, install, run the main job.
# Works as root, or as a user with sudo.
set -e
cd "$(dirname "$0")/.."
if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
./scripts/install-deps.sh
./autogen.sh >/dev/null
./configure --quiet
make -j"$(nproc)"
$SUDO make install
$SUDO ldconfig
# The main job: memcheck-guest once it is built, else a smoke run of what was installed.
if command -v memcheck-guest >/dev/null 2>&1; then
	memcheck-guest
else
	export PKG_CONFIG_PATH=/usr/local/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}
	for lib in libshm libdax libsandbox; do
		printf '%s %s\n' "$lib" "$(pkg-config --modversion "$lib")"
	done
	for tool in shmctl daxsnap; do
		if command -v "$tool" >/dev/null 2>&1; then "$tool" --version; fi
	done
fi
