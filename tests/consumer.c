/* A program outside the tree: built from pkg-config flags against an install. */
#include <stdio.h>

#include <memkit/dax.h>
#include <memkit/sandbox.h>
#include <memkit/shm.h>

int main(void)
{
	printf("libshm %s libdax %s libsandbox %s\n", shma_version(), dax_version(), sbx_version());
	return 0;
}
