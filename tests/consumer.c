/*
 * A program outside the tree: built from pkg-config flags against an
 * install, it uses one real entry point of each library and prints the
 * versions once everything worked.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <memkit/dax.h>
#include <memkit/sandbox.h>
#include <memkit/shm.h>

static int fail(const char *what, int r)
{
	fprintf(stderr, "consumer: %s: %s\n", what, strerror(-r));
	return 1;
}

int main(int argc, char **argv)
{
	static const char msg[] = "memkit consumer";
	struct dax_table *table;
	struct sbx_mem *mem;
	const void *map;
	char back[sizeof(msg)];
	size_t len;
	int fd, r;

	(void)argc;
	/* libshm: publish a sealed blob and map it back after verification. */
	fd = shma_blob_publish("consumer", msg, sizeof(msg));
	if (fd < 0)
		return fail("shma_blob_publish", fd);
	r = shma_blob_map(fd, &map, &len);
	if (r < 0)
		return fail("shma_blob_map", r);
	if (len != sizeof(msg) || memcmp(map, msg, len))
		return fail("blob contents", -1);
	shma_blob_unmap(map, len);
	close(fd);

	/* libdax: the table backend opens a real file. */
	r = dax_table_new(&table);
	if (r < 0)
		return fail("dax_table_new", r);
	r = dax_table_add(table, 1, argv[0]);
	if (r < 0)
		return fail("dax_table_add", r);
	dax_table_free(table);

	/* libsandbox: a guarded region, written and read back. */
	r = sbx_mem_new((uint64_t)sysconf(_SC_PAGESIZE) * 4, &mem);
	if (r < 0)
		return fail("sbx_mem_new", r);
	r = sbx_mem_write(mem, 100, msg, sizeof(msg));
	if (r < 0)
		return fail("sbx_mem_write", r);
	r = sbx_mem_read(mem, 100, back, sizeof(back));
	if (r < 0 || memcmp(back, msg, sizeof(msg)))
		return fail("sbx_mem_read", r < 0 ? r : -1);
	sbx_mem_free(mem);

	printf("libshm %s libdax %s libsandbox %s\n", shma_version(), dax_version(), sbx_version());
	return 0;
}
