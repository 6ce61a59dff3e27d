#!/bin/sh
# Install memkit's build and test dependencies (Debian/Ubuntu).
# Works as root, or as a user with sudo.
set -e
pkgs="build-essential autoconf automake libtool pkg-config libglib2.0-dev mandoc
      linux-libc-dev clang libclang-rt-dev libboost-dev g++ xz-utils"
if [ "$(id -u)" -eq 0 ]; then SUDO=; else SUDO=sudo; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
# shellcheck disable=SC2086
$SUDO apt-get install -y -qq --no-install-recommends $pkgs
