#!/bin/sh
# The linux check's fault injections, in a microVM of their own (they test
# memcheck's verification, which no kernel changes; a boot of their own
# lets them run beside the per-kernel batches): on 6.12 where configured,
# else on the first kernel configured.
MEMKIT_MICROVM_TESTS="tests/memcheck-linux-inject.sh"
export MEMKIT_MICROVM_TESTS
series=6.12
case " $MEMKIT_MICROVM_KERNELS " in
*" 6.12 "*) ;;
*) set -- $MEMKIT_MICROVM_KERNELS; series=${1:-6.12} ;;
esac
exec /bin/sh "$top_srcdir/tests/microvm.sh" "$series"
