#!/bin/sh
# Regenerate the build system: configure, Makefile.in, libtool files.
set -e
cd "$(dirname "$0")"
autoreconf --force --install
# automake ships the TAP driver but does not install it by itself.
cp -f "$(automake --print-libdir)/tap-driver.sh" build-aux/tap-driver.sh
echo "Now run ./configure && make"
