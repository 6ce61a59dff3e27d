#!/bin/sh
# Install memkit's build and test dependencies (Debian/Ubuntu), and the stock
# kernels (Debian's 6.1 and 6.12) that the microVM runs KVM tests on.
# Works as root, or as a user with sudo.
set -e
here=$(dirname "$0")
pkgs="build-essential autoconf automake libtool pkg-config libglib2.0-dev mandoc
      linux-libc-dev clang libclang-rt-dev libboost-dev libmimalloc-dev g++ xz-utils
      qemu-system-x86 busybox-static cpio kmod zstd e2fsprogs
      libsmartcols-dev bash-completion python3"
if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $pkgs
"$here/fetch-kernels.sh"
