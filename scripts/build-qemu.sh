#!/bin/sh
# SPDX-License-Identifier: LGPL-2.1-or-later
#
# Build the QEMU that memkit's microVM (scripts/memkit-microvm) runs: the x86
# system emulator from Debian 12's own qemu source package (7.2), with the
# patches in scripts/qemu/ (fixes to the emulated SVM that nested KVM guests
# need; each patch's header says what was wrong and the evidence), configured
# for just what the microVM uses (TCG and KVM, virtio-9p, the pc machine) and
# installed under $MEMKIT_QEMU_DIR (default /var/cache/memkit/qemu), where
# memkit-microvm finds it. A machine builds it once: a stamp names the source
# version and the patches' checksum, and a rerun with both unchanged does
# nothing. The firmware (SeaBIOS, option ROMs) is Debian's, from
# qemu-system-x86's /usr/share/qemu and /usr/share/seabios.
#
# Usage: build-qemu.sh [--force]
# Needs: dpkg-dev, meson, ninja-build, libglib2.0-dev, libpixman-1-dev,
# libcap-ng-dev, libattr1-dev, zlib1g-dev, libfdt-dev (scripts/install-deps.sh).
# Works as root, or as a user with sudo (the cache directory is system-wide).
set -eu

prog=build-qemu
here=$(cd "$(dirname "$0")" && pwd)
dest=${MEMKIT_QEMU_DIR:-/var/cache/memkit/qemu}
suite=bookworm    # the source the patches are made against
force=0
[ "${1:-}" = --force ] && force=1
if [ "$(id -u)" -eq 0 ] || [ -w "$(dirname "$dest")" ] 2>/dev/null; then SUDO=; else SUDO=sudo; fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT INT TERM
a="$work/apt"
mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
echo "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian $suite main" \
	>"$a/sources.list"
apt_private() {
	cmd=$1
	shift
	"$cmd" -o Dir::Etc::sourcelist="$a/sources.list" -o Dir::Etc::sourceparts=/dev/null \
		-o Dir::State::Lists="$a/lists" -o Dir::Cache="$a/cache" \
		-o Dir::State::status=/dev/null -o APT::Sandbox::User="$(id -un)" "$@"
}
apt_private apt-get -qq update
version=$(apt_private apt-cache showsrc qemu | sed -n 's/^Version: //p' | sort -V | tail -n1)
[ -n "$version" ] || { echo "$prog: no qemu source package in $suite" >&2; exit 1; }
patches=$(ls "$here"/qemu/*.patch)
# shellcheck disable=SC2086
stamp="qemu $version, patches $(cat $patches | sha256sum | cut -c1-16)"
if [ "$force" = 0 ] && [ "$(cat "$dest/memkit-build" 2>/dev/null)" = "$stamp" ] &&
	[ -x "$dest/bin/qemu-system-x86_64" ]; then
	echo "$prog: $stamp already in $dest"
	exit 0
fi

echo "$prog: building $stamp (a few minutes)"
(cd "$work" && apt_private apt-get -qq source --download-only "qemu=$version") >/dev/null
# apt checked the files against the signed Sources index; dpkg-source has no keyring.
dpkg-source -x "$work"/qemu_*.dsc "$work/src" >"$work/source.log" 2>&1 || { cat "$work/source.log" >&2; exit 1; }
for p in $patches; do
	patch -d "$work/src" -p1 --quiet --forward <"$p"
done
mkdir -p "$work/build"
cd "$work/build"
# Only what memkit-microvm passes to QEMU: -machine pc, TCG or KVM, 9p shares,
# a serial console to a file. No tools, docs, graphics, audio or networking.
"$work/src/configure" --target-list=x86_64-softmmu --prefix="$dest" \
	--firmwarepath=/usr/share/qemu:/usr/share/seabios --disable-install-blobs \
	--without-default-features --enable-tcg --enable-kvm \
	--enable-virtfs --enable-attr --enable-cap-ng --enable-fdt=system \
	--disable-tools --disable-docs --disable-werror --disable-xen \
	>"$work/configure.log" 2>&1 || { tail -n 20 "$work/configure.log" >&2; exit 1; }
ninja -j"$(nproc)" qemu-system-x86_64 >"$work/build.log" 2>&1 || { tail -n 30 "$work/build.log" >&2; exit 1; }
$SUDO rm -rf "$dest.new"
$SUDO mkdir -p "$dest.new/bin"
$SUDO install -m 0755 qemu-system-x86_64 "$dest.new/bin/"
for p in $patches; do
	$SUDO install -m 0644 "$p" "$dest.new/"
done
echo "$stamp" | $SUDO tee "$dest.new/memkit-build" >/dev/null
# The check that it runs at all: version, and the devices memkit-microvm uses.
"$dest.new/bin/qemu-system-x86_64" -device help >"$work/devices" 2>&1 &&
	grep -q virtio-9p-pci "$work/devices" ||
	{ echo "$prog: the built QEMU has no virtio-9p-pci device" >&2; exit 1; }
$SUDO rm -rf "$dest"
$SUDO mv "$dest.new" "$dest"
echo "$prog: $("$dest/bin/qemu-system-x86_64" --version | head -n1) in $dest"
