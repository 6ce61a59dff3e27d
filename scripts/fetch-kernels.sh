#!/bin/sh
# Fetch Debian's stock kernels for memkit's microVM (scripts/memkit-microvm):
# Debian 12's 6.1 and Debian 13's 6.12, from Debian's package registry,
# without installing them into the system. A private apt configuration
# (own sources list, lists and cache) downloads linux-image-*-amd64; the
# package is unpacked into $MEMKIT_KERNEL_DIR/<release>/ (vmlinuz + the
# modules tree), and depmod is run there.
#
# Usage: fetch-kernels.sh [SERIES...]     SERIES is 6.1 or 6.12 (default: both)
# Works as root, or as a user with sudo (the cache directory is system-wide).
set -eu

dir=${MEMKIT_KERNEL_DIR:-/var/cache/memkit/kernels}
[ $# -gt 0 ] || set -- 6.1 6.12
if [ "$(id -u)" -eq 0 ] || [ -w "$(dirname "$dir")" ] 2>/dev/null; then SUDO=; else SUDO=sudo; fi

suite_of() {
	case $1 in
	6.1) echo bookworm ;;
	6.12) echo trixie ;;
	*) echo "fetch-kernels: $1: unknown kernel series (known: 6.1 6.12)" >&2; exit 2 ;;
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
		echo "fetch-kernels: $release already in $dir"
		continue
	fi
	(cd "$a" && apt_private apt-get -qq download "$pkg")
	deb=$(ls "$a"/linux-image-*.deb)
	x="$a/x"
	dpkg-deb -x "$deb" "$x"
	# One directory per release: vmlinuz, config, and lib/modules/<release>.
	$SUDO mkdir -p "$dir/$release.new"
	$SUDO cp "$x/boot/vmlinuz-$release" "$dir/$release.new/vmlinuz"
	$SUDO cp "$x/boot/config-$release" "$dir/$release.new/config"
	$SUDO mkdir -p "$dir/$release.new/lib/modules"
	$SUDO cp -a "$x/lib/modules/$release" "$dir/$release.new/lib/modules/" 2>/dev/null ||
		$SUDO cp -a "$x/usr/lib/modules/$release" "$dir/$release.new/lib/modules/"
	$SUDO depmod -b "$dir/$release.new" "$release"
	# modules.dep at the top marks a complete fetch (checked above).
	$SUDO ln -sf "lib/modules/$release/modules.dep" "$dir/$release.new/modules.dep"
	$SUDO rm -rf "$dir/$release"
	$SUDO mv "$dir/$release.new" "$dir/$release"
	rm -rf "$x" "$deb"
	echo "fetch-kernels: $release in $dir/$release"
done
