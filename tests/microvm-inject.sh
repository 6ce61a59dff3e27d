#!/bin/sh
# The linux check's fault injections, in a microVM of their own on 6.12 (they
# test memcheck's verification, which no kernel changes; a boot of their own
# lets them run beside the per-kernel batches).
MEMKIT_MICROVM_TESTS="tests/memcheck-linux-inject.sh"
export MEMKIT_MICROVM_TESTS
exec /bin/sh "$top_srcdir/tests/microvm.sh" 6.12
