#!/bin/sh
# Install memkit's build and test dependencies (Debian/Ubuntu), the stock
# kernels (Debian's 6.1, 6.12 and unstable's) that the microVM runs KVM tests
# on, and the microVM's QEMU (Debian 12's, with memkit's fixes to its
# emulated SVM: scripts/build-qemu.sh, built once per machine).
# Works as root, or as a user with sudo.
set -e
here=$(dirname "$0")
pkgs="build-essential autoconf automake libtool pkg-config libglib2.0-dev mandoc
      linux-libc-dev clang libclang-rt-dev libboost-dev libmimalloc-dev g++ xz-utils
      qemu-system-x86 busybox-static cpio kmod zstd e2fsprogs
      libsmartcols-dev bash-completion python3 libjson-glib-dev fio
      dpkg-dev meson ninja-build libpixman-1-dev libcap-ng-dev libattr1-dev zlib1g-dev libfdt-dev"
if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $pkgs
"$here/fetch-kernels.sh"
"$here/build-qemu.sh"
