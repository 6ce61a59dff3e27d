#!/bin/sh
# libshm's tests again with thread caches off (LIBSHM_TCACHE=0): the shared
# free-list path every allocation took before caches, and still takes for
# over-aligned blocks, in signal handlers nested in the cache and past
# SHMA_TC_POOLS pools per thread.
LIBSHM_TCACHE=0 exec "$top_builddir/tests/test-shm" "$@"
