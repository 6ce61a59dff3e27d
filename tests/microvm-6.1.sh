#!/bin/sh
# KVM test programs inside the microVM on Debian's 6.1 kernel.
exec /bin/sh "$top_srcdir/tests/microvm.sh" 6.1
