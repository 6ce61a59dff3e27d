#!/bin/sh
# Fetch Debian's stock kernels for memkit's microVM (scripts/memkit-microvm):
# Debian 12's 6.1, Debian 13's 6.12 and unstable's newest ("sid"), from
# Debian's package registry, without installing them into the system. A
# private apt configuration (own sources list, lists and cache) downloads
# the kernel linux-image-amd64 depends on; from unstable's 7.x on that
# package is split into linux-binary-RELEASE (vmlinuz under
# /usr/lib/modules/RELEASE), linux-modules-RELEASE and linux-base-RELEASE
# (config, modules.builtin), which are fetched with it. The packages are
# unpacked into $MEMKIT_KERNEL_DIR/<release>/ (vmlinuz + the modules tree),
# and depmod is run there.
#
# Usage: fetch-kernels.sh [SERIES...]
#   SERIES is 6.1, 6.12 or sid (default: all three)
# Works as root, or as a user with sudo (the cache directory is system-wide).
set -eu

dir=${MEMKIT_KERNEL_DIR:-/var/cache/memkit/kernels}
[ $# -gt 0 ] || set -- 6.1 6.12 sid
if [ "$(id -u)" -eq 0 ] || [ -w "$(dirname "$dir")" ] 2>/dev/null; then SUDO=; else SUDO=sudo; fi

suite_of() {
	case $1 in
	6.1) echo bookworm ;;
	6.12) echo trixie ;;
	sid | unstable) echo sid ;;
	*) echo "fetch-kernels: $1: unknown kernel series (known: 6.1 6.12 sid)" >&2; exit 2 ;;
	esac
}

# apt-get/apt-cache with a private configuration under $a (no system state touched).
apt_private() {
	cmd=$1
	shift
	"$cmd" -o Dir::Etc::sourcelist="$a/sources.list" -o Dir::Etc::sourceparts=/dev/null \
		-o Dir::State::Lists="$a/lists" -o Dir::Cache="$a/cache" \
		-o Dir::State::status=/dev/null -o APT::Sandbox::User="$(id -un)" "$@"
}

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM

for series in "$@"; do
	suite=$(suite_of "$series")
	a="$work/$suite"
	mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
	echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
		>"$a/sources.list"
	apt_private apt-get -qq update
	pkg=$(apt_private apt-cache depends linux-image-amd64 |
		sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*-amd64\)$/\1/p' | head -n1)
	if [ -z "$pkg" ]; then
		echo "fetch-kernels: $suite: no linux-image-amd64 dependency found" >&2
		exit 1
	fi
	release=${pkg#linux-image-}
	if [ -r "$dir/$release/vmlinuz" ] && [ -r "$dir/$release/modules.dep" ]; then
		# Fetched before suites were recorded: say which (memkit-microvm --kernel SUITE).
		[ -r "$dir/$release/suite" ] || echo "$suite" | $SUDO tee "$dir/$release/suite" >/dev/null
		echo "fetch-kernels: $release already in $dir"
		continue
	fi
	# The image and, where it is split, the packages holding its parts.
	pkgs=$pkg
	for part in binary modules base; do
		if apt_private apt-cache depends "$pkg" | grep -qx "  Depends: linux-$part-$release"; then
			pkgs="$pkgs linux-$part-$release"
		fi
	done
	# shellcheck disable=SC2086
	(cd "$a" && apt_private apt-get -qq download $pkgs)
	x="$a/x"
	for deb in "$a"/linux-*.deb; do
		dpkg-deb -x "$deb" "$x"
	done
	mods="$x/lib/modules/$release"
	[ -d "$mods" ] || mods="$x/usr/lib/modules/$release"
	image="$x/boot/vmlinuz-$release"
	[ -r "$image" ] || image="$mods/vmlinuz"
	config="$x/boot/config-$release"
	[ -r "$config" ] || config="$mods/config"
	if [ ! -r "$image" ] || [ ! -d "$mods/kernel" ]; then
		echo "fetch-kernels: $release: no vmlinuz or no modules in $pkgs" >&2
		exit 1
	fi
	# One directory per release: vmlinuz, config, and lib/modules/<release>.
	$SUDO mkdir -p "$dir/$release.new/lib/modules"
	$SUDO cp "$image" "$dir/$release.new/vmlinuz"
	$SUDO cp "$config" "$dir/$release.new/config"
	$SUDO cp -a "$mods" "$dir/$release.new/lib/modules/"
	$SUDO rm -f "$dir/$release.new/lib/modules/$release/vmlinuz" "$dir/$release.new/lib/modules/$release/config"
	$SUDO depmod -b "$dir/$release.new" "$release"
	echo "$suite" | $SUDO tee "$dir/$release.new/suite" >/dev/null
	# modules.dep at the top marks a complete fetch (checked above).
	$SUDO ln -sf "lib/modules/$release/modules.dep" "$dir/$release.new/modules.dep"
	$SUDO rm -rf "$dir/$release"
	$SUDO mv "$dir/$release.new" "$dir/$release"
	rm -rf "$x" "$a"/linux-*.deb
	echo "fetch-kernels: $release in $dir/$release"
done
