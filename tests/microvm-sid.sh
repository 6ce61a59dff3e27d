#!/bin/sh
# KVM test programs inside the microVM on Debian unstable's newest kernel.
exec /bin/sh "$top_srcdir/tests/microvm.sh" sid
