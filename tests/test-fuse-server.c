/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmm/'s virtio-fs device and passthrough FUSE server (pci.c,
 * virtio-pci.c, virtio-fs.c, fuse-server.c: memcheck-guest's linux check
 * serves its guest with them) fed hostile requests from the guest's side,
 * without KVM: a struct vmm_vm built by hand over anonymous memory as guest
 * RAM, a PCI bus with the device on it, and this program as the guest's
 * driver. It programs config space through
 * ports 0xcf8/0xcfc, finds the virtio capabilities, sets up the queues
 * through BAR 0, places requests as split-virtqueue descriptor chains in
 * guest RAM, writes the notify register and reads the replies back from the
 * used ring, as Linux's virtio_pci and virtiofs drivers do. The FUSE root
 * is a real temporary directory, so a request that should have been
 * refused but changed the host shows up there.
 *
 * The same malformed requests then go to vmm_fuse_handle() directly in
 * buffers of exactly their size (an --enable-sanitizers build catches any
 * read past them) with poisoned guard bytes after the reply buffer.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glib.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/fuse.h>
#include <linux/virtio_config.h>
#include <linux/virtio_pci.h>
#include <linux/virtio_ring.h>

#include "common/macro.h"
#include "vmm/fuse-server.h"
#include "vmm/machine.h"
#include "vmm/pci.h"
#include "vmm/virtio-fs.h"
#include "vmm/vm.h"
#include "tests/guard.h"


/* Guest RAM and where the driver puts things in it. */
#define RAM_SIZE   (4ull << 20)
#define SLOT       1
#define BAR0_GPA   0xc0000000ull
#define QSIZE      VMM_VQ_SIZE
#define REQ_GPA    0x10000ull        /* requests: up to 0x200000 */
#define REPLY_GPA  0x200000ull       /* replies: up to 0x3f0000, then guard bytes */
#define REPLY_MAX  0x1e0000ull
#define GUARD      256
#define HDR_IN     sizeof(struct fuse_in_header)
#define HDR_OUT    sizeof(struct fuse_out_header)
#define NOTHING    (-1)              /* no used-ring entry came back */

static const uint64_t rings[2][3] = {   /* per queue: descriptors, available, used */
	{ 0x4000, 0x5000, 0x6000 },      /* 0: hiprio (FORGET) */
	{ 0x1000, 0x2000, 0x3000 },      /* 1: requests */
};

struct guest {
	struct vmm_vm vm;                /* RAM only: no KVM */
	struct vmm_pci pci;
	struct vmm_fuse fuse;
	struct vmm_virtiofs fs;
	char *root;
	int root_fd;
	uint64_t common, notify;         /* guest-physical, from the capabilities */
	uint32_t notify_mult;
	uint16_t notify_off[2];
	uint16_t avail_idx[2], used_seen[2];
	uint64_t unique;
};

/* ---- the driver: config space, BAR 0 ---------------------------------------- */

static void cf8(struct guest *g, unsigned off)
{
	uint32_t a = 0x80000000u | SLOT << 11 | (off & 0xfc);

	vmm_pci_io(&g->pci, 0xcf8, (uint8_t *)&a, 4, true);
}

static uint32_t cfg_read(struct guest *g, unsigned off, unsigned len)
{
	uint32_t v = 0;

	cf8(g, off);
	vmm_pci_io(&g->pci, (uint16_t)(0xcfc + (off & 3)), (uint8_t *)&v, len, false);
	return v;
}

static void cfg_write(struct guest *g, unsigned off, uint32_t v, unsigned len)
{
	cf8(g, off);
	vmm_pci_io(&g->pci, (uint16_t)(0xcfc + (off & 3)), (uint8_t *)&v, len, true);
}

static uint64_t mmio_read(struct guest *g, uint64_t gpa, unsigned len)
{
	uint64_t v = 0;

	g_assert_true(vmm_pci_mmio(&g->pci, gpa, (uint8_t *)&v, len, false));
	return v;
}

static void mmio_write(struct guest *g, uint64_t gpa, uint64_t v, unsigned len)
{
	g_assert_true(vmm_pci_mmio(&g->pci, gpa, (uint8_t *)&v, len, true));
}

static void common_write(struct guest *g, unsigned off, uint64_t v, unsigned len)
{
	mmio_write(g, g->common + off, v, len);
}

static uint8_t status(struct guest *g)
{
	return (uint8_t)mmio_read(g, g->common + VIRTIO_PCI_COMMON_STATUS, 1);
}

/* Memory decoding on, then the virtio capabilities as virtio_pci_modern finds them. */
static void find_device(struct guest *g)
{
	uint64_t bar0;

	g_assert_cmphex(cfg_read(g, 0x00, 2), ==, 0x1af4);
	g_assert_cmphex(cfg_read(g, 0x02, 2), ==, 0x1040 + VMM_VIRTIO_ID_FS);
	cfg_write(g, 0x04, 0x0006, 2);                  /* memory space + bus master */
	bar0 = cfg_read(g, 0x10, 4) & ~0xfu;
	g_assert_cmphex(bar0, ==, BAR0_GPA);
	for (unsigned p = cfg_read(g, 0x34, 1); p; p = cfg_read(g, p + 1, 1)) {
		unsigned type = cfg_read(g, p + VIRTIO_PCI_CAP_CFG_TYPE, 1);
		uint64_t off = cfg_read(g, p + VIRTIO_PCI_CAP_OFFSET, 4);

		if (cfg_read(g, p, 1) != 0x09)          /* vendor-specific: virtio */
			continue;
		g_assert_cmpuint(cfg_read(g, p + VIRTIO_PCI_CAP_BAR, 1), ==, 0);
		if (type == VIRTIO_PCI_CAP_COMMON_CFG)
			g->common = bar0 + off;
		if (type == VIRTIO_PCI_CAP_NOTIFY_CFG) {
			g->notify = bar0 + off;
			g->notify_mult = cfg_read(g, p + 16, 4);
		}
	}
	g_assert_cmphex(g->common, !=, 0);
	g_assert_cmphex(g->notify, !=, 0);
}

/* Queue q at the given rings (a hostile driver passes bad ones). */
static void setup_queue(struct guest *g, unsigned q, uint64_t desc, uint64_t avail, uint64_t used)
{
	common_write(g, VIRTIO_PCI_COMMON_Q_SELECT, q, 2);
	g_assert_cmpuint(mmio_read(g, g->common + VIRTIO_PCI_COMMON_Q_SIZE, 2), ==, QSIZE);
	common_write(g, VIRTIO_PCI_COMMON_Q_SIZE, QSIZE, 2);
	g->notify_off[q] = (uint16_t)mmio_read(g, g->common + VIRTIO_PCI_COMMON_Q_NOFF, 2);
	common_write(g, VIRTIO_PCI_COMMON_Q_DESCLO, (uint32_t)desc, 4);
	common_write(g, VIRTIO_PCI_COMMON_Q_DESCHI, (uint32_t)(desc >> 32), 4);
	common_write(g, VIRTIO_PCI_COMMON_Q_AVAILLO, (uint32_t)avail, 4);
	common_write(g, VIRTIO_PCI_COMMON_Q_AVAILHI, (uint32_t)(avail >> 32), 4);
	common_write(g, VIRTIO_PCI_COMMON_Q_USEDLO, (uint32_t)used, 4);
	common_write(g, VIRTIO_PCI_COMMON_Q_USEDHI, (uint32_t)(used >> 32), 4);
	common_write(g, VIRTIO_PCI_COMMON_Q_ENABLE, 1, 2);
	g->avail_idx[q] = g->used_seen[q] = 0;
}

/* Reset and initialise the device (virtio 1.x 3.1.1); queue 1's rings at the given addresses. */
static void driver_init_at(struct guest *g, uint64_t desc, uint64_t avail, uint64_t used)
{
	uint8_t s = VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER;

	common_write(g, VIRTIO_PCI_COMMON_STATUS, 0, 1);
	g_assert_cmpuint(status(g), ==, 0);
	common_write(g, VIRTIO_PCI_COMMON_STATUS, s, 1);
	common_write(g, VIRTIO_PCI_COMMON_DFSELECT, 1, 4);
	g_assert_true(mmio_read(g, g->common + VIRTIO_PCI_COMMON_DF, 4) & 1);   /* VERSION_1 */
	common_write(g, VIRTIO_PCI_COMMON_GFSELECT, 1, 4);
	common_write(g, VIRTIO_PCI_COMMON_GF, 1, 4);
	s |= VIRTIO_CONFIG_S_FEATURES_OK;
	common_write(g, VIRTIO_PCI_COMMON_STATUS, s, 1);
	g_assert_cmpuint(status(g), ==, s);
	g_assert_cmpuint(mmio_read(g, g->common + VIRTIO_PCI_COMMON_NUMQ, 2), ==, 2);
	memset(g->vm.ram + 0x1000, 0, 0x6000);          /* both queues' rings */
	setup_queue(g, 0, rings[0][0], rings[0][1], rings[0][2]);
	setup_queue(g, 1, desc, avail, used);
	common_write(g, VIRTIO_PCI_COMMON_STATUS, s | VIRTIO_CONFIG_S_DRIVER_OK, 1);
	vmm_err_clear(&g->fs.error);
	vmm_err_clear(&g->fs.v.error);
	vmm_err_clear(&g->fuse.error);
}

static void driver_init(struct guest *g)
{
	driver_init_at(g, rings[1][0], rings[1][1], rings[1][2]);
}

static void guest_open(struct guest *g)
{
	void *ram = mmap(NULL, RAM_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	g_assert_true(ram != MAP_FAILED);
	memset(g, 0, sizeof(*g));
	g->root = g_dir_make_tmp("test-fuse-server-XXXXXX", NULL);
	g_assert_nonnull(g->root);
	g->root_fd = open(g->root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	g_assert_cmpint(g->root_fd, >=, 0);
	/* The VM as the device sees it: RAM and the PCI bus (no KVM: vm_fd -1). */
	vmm_vm_init(&g->vm);
	g->vm.ram = ram;
	g->vm.ram_size = RAM_SIZE;
	vmm_pci_init(&g->pci);
	g_assert_cmpint(vmm_fuse_init(&g->fuse, g->root_fd, NULL, 0), ==, 0);
	g_assert_cmpint(vmm_virtiofs_init(&g->fs, &g->vm, &g->pci, SLOT, "memkit", &g->fuse, BAR0_GPA,
					  0, 0), ==, 0);
	find_device(g);
	driver_init(g);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void guest_close(struct guest *g)
{
	vmm_virtiofs_free(&g->fs);
	vmm_fuse_free(&g->fuse);
	close(g->root_fd);
	g_assert_cmpint(nftw(g->root, rm_one, 16, FTW_DEPTH | FTW_PHYS), ==, 0);
	g_free(g->root);
	if (!g->vm.ram_written_fn)       /* the test's own RAM, not a region (test_sbx_ram) */
		munmap(g->vm.ram, RAM_SIZE);
}

/* ---- the driver: virtqueues --------------------------------------------------- */

static struct vring_desc *desc_table(struct guest *g, unsigned q)
{
	return (struct vring_desc *)(g->vm.ram + rings[q][0]);
}

/*
 * Publish the chain at head on queue q, notify, and return the length the
 * device wrote (NOTHING: no used entry came back).
 */
static int64_t kick(struct guest *g, unsigned q, uint16_t head)
{
	struct vring_avail *avail = (struct vring_avail *)(g->vm.ram + rings[q][1]);
	struct vring_used *used = (struct vring_used *)(g->vm.ram + rings[q][2]);
	int64_t len = NOTHING;

	avail->ring[g->avail_idx[q] % QSIZE] = head;
	__atomic_store_n(&avail->idx, ++g->avail_idx[q], __ATOMIC_RELEASE);
	mmio_write(g, g->notify + (uint64_t)g->notify_off[q] * g->notify_mult, q, 2);
	if (__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE) != g->used_seen[q]) {
		struct vring_used_elem *e = &used->ring[g->used_seen[q]++ % QSIZE];

		g_assert_cmpuint(e->id, ==, head);
		len = e->len;
	}
	g_assert_cmpuint(__atomic_load_n(&used->idx, __ATOMIC_ACQUIRE), ==, g->used_seen[q]);
	return len;
}

/* n descriptors over [gpa, gpa + len) (the last takes the rest), from index *i on. */
static void split(struct vring_desc *d, uint16_t *i, uint64_t gpa, uint64_t len, unsigned n,
		  uint16_t flags)
{
	for (unsigned k = 0; k < n; k++) {
		uint64_t piece = k + 1 < n ? len / n : len - (len / n) * (n - 1);

		d[*i] = (struct vring_desc){ gpa, (uint32_t)piece, (uint16_t)(flags | VRING_DESC_F_NEXT),
					     (uint16_t)(*i + 1) };
		gpa += piece;
		++*i;
	}
}

/*
 * Send len bytes of req on queue q as nr readable descriptors, with a
 * reply buffer of cap bytes as nw writable ones (Linux puts the header and
 * each argument in descriptors of their own); guard bytes after the reply
 * buffer must survive. Returns what the used ring says was written.
 */
static int64_t send_split(struct guest *g, unsigned q, const void *req, size_t len, unsigned nr,
			  size_t cap, unsigned nw)
{
	struct vring_desc *d = desc_table(g, q);
	uint8_t *reply = g->vm.ram + REPLY_GPA;
	uint16_t i = 0;
	int64_t n;

	g_assert_cmpuint(len, <=, REPLY_GPA - REQ_GPA);
	g_assert_cmpuint(cap, <=, REPLY_MAX);
	g_assert_cmpuint(nr + nw, <=, QSIZE);
	memcpy(g->vm.ram + REQ_GPA, req, len);
	memset(reply, 0xa5, cap + GUARD);
	split(d, &i, REQ_GPA, len, nr, 0);
	split(d, &i, REPLY_GPA, cap, nw, VRING_DESC_F_WRITE);
	d[i - 1].flags &= (uint16_t)~VRING_DESC_F_NEXT;
	n = kick(g, q, 0);
	for (size_t k = cap; k < cap + GUARD; k++)
		g_assert_cmphex(reply[k], ==, 0xa5);
	g_assert_cmpint(n, <=, (int64_t)cap);
	return n;
}

static int64_t send_req(struct guest *g, const void *req, size_t len, size_t cap)
{
	return send_split(g, 1, req, len, len > HDR_IN ? 2 : 1, cap, cap > HDR_OUT ? 2 : 1);
}

/* ---- requests --------------------------------------------------------------------- */

static GByteArray *req_new(struct guest *g, uint32_t opcode, uint64_t nodeid)
{
	struct fuse_in_header ih = { .opcode = opcode, .unique = ++g->unique, .nodeid = nodeid };

	return g_byte_array_append(g_byte_array_new(), (const guint8 *)&ih, sizeof(ih));
}

static void req_add(GByteArray *b, const void *p, size_t n)
{
	g_byte_array_append(b, p, (guint)n);
}

/* A name with its NUL, as the kernel sends it. */
static void req_name(GByteArray *b, const char *name)
{
	req_add(b, name, strlen(name) + 1);
}

/* The header's len: what the request holds. */
static void req_seal(GByteArray *b)
{
	uint32_t len = b->len;

	memcpy(b->data, &len, sizeof(len));
}

/*
 * Send b (sealed here) with cap bytes for the reply: the reply's error
 * (0 or -errno), its body copied to body (up to body_len bytes).
 */
static int call_body(struct guest *g, GByteArray *b, size_t cap, void *body, size_t body_len)
{
	struct fuse_out_header oh;
	uint64_t unique;
	int64_t n;

	req_seal(b);
	memcpy(&unique, b->data + offsetof(struct fuse_in_header, unique), sizeof(unique));
	n = send_req(g, b->data, b->len, cap);
	g_byte_array_unref(b);
	g_assert_cmpint(n, >=, (int64_t)HDR_OUT);
	memcpy(&oh, g->vm.ram + REPLY_GPA, sizeof(oh));
	g_assert_cmpuint(oh.len, ==, n);
	g_assert_cmpuint(oh.unique, ==, unique);
	if (oh.error)
		g_assert_cmpuint(oh.len, ==, HDR_OUT);
	if (body)
		memcpy(body, g->vm.ram + REPLY_GPA + HDR_OUT, MK_MIN(body_len, (size_t)n - HDR_OUT));
	return oh.error;
}

static int call(struct guest *g, GByteArray *b)
{
	return call_body(g, b, 4096, NULL, 0);
}

/* A request the FUSE protocol has no reply for (FORGET...): nothing written back. */
static void call_noreply(struct guest *g, unsigned q, GByteArray *b)
{
	req_seal(b);
	g_assert_cmpint(send_split(g, q, b->data, b->len, 1, 0, 0), ==, 0);
	g_byte_array_unref(b);
}

static void do_init(struct guest *g)
{
	struct fuse_init_in ii = { .major = 7, .minor = 38, .max_readahead = 1 << 17,
				   .flags = FUSE_MAP_ALIGNMENT };
	struct fuse_init_out io;
	GByteArray *b = req_new(g, FUSE_INIT, 0);

	req_add(b, &ii, sizeof(ii));
	g_assert_cmpint(call_body(g, b, HDR_OUT + sizeof(io), &io, sizeof(io)), ==, 0);
	g_assert_cmpuint(io.major, ==, 7);
	g_assert_cmpuint(io.max_write, ==, VMM_FUSE_MAX_WRITE);
}

static int lookup(struct guest *g, uint64_t parent, const char *name, uint64_t *nodeid)
{
	struct fuse_entry_out e = { 0 };
	GByteArray *b = req_new(g, FUSE_LOOKUP, parent);
	int r;

	req_name(b, name);
	r = call_body(g, b, HDR_OUT + sizeof(e), &e, sizeof(e));
	if (nodeid)
		*nodeid = e.nodeid;
	return r;
}

static bool host_has(struct guest *g, const char *name)
{
	struct stat st;

	return fstatat(g->root_fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static void host_file(struct guest *g, const char *name, const char *text)
{
	int fd = openat(g->root_fd, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);

	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(write(fd, text, strlen(text)), ==, (ssize_t)strlen(text));
	close(fd);
}

static gint cmp_names(gconstpointer a, gconstpointer b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The directory's entries, sorted, one string (what must not change). */
static char *host_listing(struct guest *g)
{
	GDir *d = g_dir_open(g->root, 0, NULL);
	GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
	const char *n;
	char *s;

	g_assert_nonnull(d);
	while ((n = g_dir_read_name(d)))
		g_ptr_array_add(names, g_strdup(n));
	g_dir_close(d);
	g_ptr_array_sort(names, cmp_names);
	g_ptr_array_add(names, NULL);
	s = g_strjoinv("\n", (char **)names->pdata);
	g_ptr_array_unref(names);
	return s;
}

/* Every opcode the server handles with a fixed argument, and its size (<linux/fuse.h>). */
static const struct {
	uint32_t op;
	size_t size;
	bool noreply;
} fixed_args[] = {
	{ FUSE_INIT, sizeof(struct fuse_init_in), false },
	{ FUSE_FORGET, sizeof(struct fuse_forget_in), true },
	{ FUSE_BATCH_FORGET, sizeof(struct fuse_batch_forget_in), true },
	{ FUSE_INTERRUPT, sizeof(struct fuse_interrupt_in), true },
	{ FUSE_GETATTR, sizeof(struct fuse_getattr_in), false },
	{ FUSE_SETATTR, sizeof(struct fuse_setattr_in), false },
	{ FUSE_OPEN, sizeof(struct fuse_open_in), false },
	{ FUSE_OPENDIR, sizeof(struct fuse_open_in), false },
	{ FUSE_CREATE, sizeof(struct fuse_create_in), false },
	{ FUSE_MKDIR, sizeof(struct fuse_mkdir_in), false },
	{ FUSE_READ, sizeof(struct fuse_read_in), false },
	{ FUSE_WRITE, sizeof(struct fuse_write_in), false },
	{ FUSE_READDIR, sizeof(struct fuse_read_in), false },
	{ FUSE_RELEASE, sizeof(struct fuse_release_in), false },
	{ FUSE_RELEASEDIR, sizeof(struct fuse_release_in), false },
	{ FUSE_FLUSH, sizeof(struct fuse_flush_in), false },
	{ FUSE_FSYNC, sizeof(struct fuse_fsync_in), false },
	{ FUSE_FSYNCDIR, sizeof(struct fuse_fsync_in), false },
	{ FUSE_SETUPMAPPING, sizeof(struct fuse_setupmapping_in), false },
	{ FUSE_REMOVEMAPPING, sizeof(struct fuse_removemapping_in), false },
};

/* Opcodes that take one file name (after their fixed argument, if any). */
static const struct {
	uint32_t op;
	size_t arg;
} name_ops[] = {
	{ FUSE_LOOKUP, 0 },
	{ FUSE_MKDIR, sizeof(struct fuse_mkdir_in) },
	{ FUSE_UNLINK, 0 },
	{ FUSE_RMDIR, 0 },
	{ FUSE_CREATE, sizeof(struct fuse_create_in) },
};

#define ARG_MAX 128    /* the largest fixed argument here is fuse_setattr_in's 88 bytes */

/* A plausible argument for op: fuse_mkdir_in's mode, fuse_create_in's flags and mode. */
static void fill_arg(uint32_t op, uint8_t a[ARG_MAX], size_t n)
{
	uint32_t v[2] = { O_RDWR, 0644 };

	g_assert_cmpuint(n, <=, ARG_MAX);
	n = MK_MIN(n, (size_t)ARG_MAX);

	if (op == FUSE_MKDIR)
		v[0] = 0755, v[1] = 0;
	memset(a, 0, n);
	if (n >= sizeof(v))
		memcpy(a, v, sizeof(v));
}

/* ---- guest side: what works ---------------------------------------------------------- */

static uint64_t do_create(struct guest *g, const char *name, uint64_t *fh)
{
	struct fuse_create_in ci = { .flags = O_RDWR, .mode = S_IFREG | 0644 };
	struct { struct fuse_entry_out e; struct fuse_open_out o; } out;
	GByteArray *b = req_new(g, FUSE_CREATE, 1);

	req_add(b, &ci, sizeof(ci));
	req_name(b, name);
	g_assert_cmpint(call_body(g, b, HDR_OUT + sizeof(out), &out, sizeof(out)), ==, 0);
	*fh = out.o.fh;
	return out.e.nodeid;
}

static void test_good(void)
{
	struct guest g;
	struct fuse_write_in wi = { .size = 5 };
	struct fuse_read_in ri = { .size = 100 };
	struct fuse_mkdir_in mi = { .mode = 0755 };
	struct fuse_forget_in fi = { .nlookup = 1 };
	uint64_t node, fh, nlookup;
	char data[100] = { 0 };
	GByteArray *b;

	guest_open(&g);
	host_file(&g, "hello", "hello, world\n");
	do_init(&g);
	g_assert_cmpint(lookup(&g, 1, "hello", &node), ==, 0);
	g_assert_cmpuint(node, >, 1);
	b = req_new(&g, FUSE_GETATTR, node);
	req_add(b, &(struct fuse_getattr_in){ 0 }, sizeof(struct fuse_getattr_in));
	g_assert_cmpint(call(&g, b), ==, 0);

	/* CREATE, WRITE, READ: the host file has the bytes. */
	do_create(&g, "new", &fh);
	g_assert_true(host_has(&g, "new"));
	wi.fh = fh;
	b = req_new(&g, FUSE_WRITE, 1);
	req_add(b, &wi, sizeof(wi));
	req_add(b, "abcde", 5);
	g_assert_cmpint(call(&g, b), ==, 0);
	ri.fh = fh;
	b = req_new(&g, FUSE_READ, 1);
	req_add(b, &ri, sizeof(ri));
	g_assert_cmpint(call_body(&g, b, HDR_OUT + ri.size, data, sizeof(data)), ==, 0);
	g_assert_cmpstr(data, ==, "abcde");
	b = req_new(&g, FUSE_RELEASE, 1);
	req_add(b, &(struct fuse_release_in){ .fh = fh }, sizeof(struct fuse_release_in));
	g_assert_cmpint(call(&g, b), ==, 0);

	/* MKDIR, UNLINK, RMDIR on the host directory. */
	b = req_new(&g, FUSE_MKDIR, 1);
	req_add(b, &mi, sizeof(mi));
	req_name(b, "dir");
	g_assert_cmpint(call(&g, b), ==, 0);
	g_assert_true(host_has(&g, "dir"));
	b = req_new(&g, FUSE_UNLINK, 1);
	req_name(b, "new");
	g_assert_cmpint(call(&g, b), ==, 0);
	g_assert_false(host_has(&g, "new"));
	b = req_new(&g, FUSE_RMDIR, 1);
	req_name(b, "dir");
	g_assert_cmpint(call(&g, b), ==, 0);
	g_assert_false(host_has(&g, "dir"));
	b = req_new(&g, FUSE_STATFS, 1);
	g_assert_cmpint(call(&g, b), ==, 0);

	/* FORGET on the hiprio queue: no reply, the count drops. */
	nlookup = g.fuse.nodes[node].nlookup;
	b = req_new(&g, FUSE_FORGET, node);
	req_add(b, &fi, sizeof(fi));
	call_noreply(&g, 0, b);
	g_assert_cmpuint(g.fuse.nodes[node].nlookup, ==, nlookup - 1);

	/* A name of NAME_MAX bytes is a name. */
	{
		char longest[NAME_MAX + 1];

		memset(longest, 'n', NAME_MAX);
		longest[NAME_MAX] = '\0';
		do_create(&g, longest, &fh);
		g_assert_true(host_has(&g, longest));
	}
	g_assert_cmpuint(g.fuse.st.refused, ==, 0);
	g_assert_cmpstr(g.fuse.error.msg, ==, "");
	g_assert_cmpstr(g.fs.error.msg, ==, "");
	g_assert_cmpuint(status(&g) & VIRTIO_CONFIG_S_NEEDS_RESET, ==, 0);
	guest_close(&g);
}

/* Protocol 7.31..7.35 kernels send fuse_init_in without flags2: the one compat size. */
static void test_init_compat(void)
{
	struct fuse_init_in ii = { .major = 7, .minor = 31, .flags = FUSE_MAP_ALIGNMENT };
	struct fuse_init_out io;
	struct guest g;
	GByteArray *b;

	guest_open(&g);
	b = req_new(&g, FUSE_INIT, 0);
	req_add(b, &ii, offsetof(struct fuse_init_in, flags2));
	g_assert_cmpint(call_body(&g, b, HDR_OUT + sizeof(io), &io, sizeof(io)), ==, 0);
	g_assert_cmpuint(io.minor, ==, 31);
	g_assert_cmpuint(g.fuse.st.init_flags2, ==, 0);
	/* Between the compat and the full size: neither. */
	b = req_new(&g, FUSE_INIT, 0);
	req_add(b, &ii, offsetof(struct fuse_init_in, flags2) + 4);
	g_assert_cmpint(call(&g, b), ==, -EINVAL);
	/* Older than virtio-fs (7.31): the compat sizes before it are not spoken. */
	ii.minor = 30;
	b = req_new(&g, FUSE_INIT, 0);
	req_add(b, &ii, sizeof(ii));
	g_assert_cmpint(call(&g, b), ==, -EPROTO);
	guest_close(&g);
}

/*
 * Guest RAM a libsandbox region as in vmm_machine_open() (the raw pointer
 * with the will_mark_dirty promise, vmm_machine_sbx_ram): the driver
 * places a READ of 10000 bytes (three writable descriptors), the region is
 * snapshotted, the notify makes the device write the reply and the used
 * ring. The region's record then holds exactly those pages (the reply's
 * three, the used ring's one), and a restore copies back just them and
 * leaves RAM as it was before the notify. A device store that vmm did not
 * report would stay behind after the restore.
 */
static void test_sbx_ram(void)
{
	struct fuse_write_in wi = { .size = 10000 };
	struct fuse_read_in ri = { .size = 10000 };
	const size_t cap = HDR_OUT + 10000;
	g_autofree uint8_t *text = g_malloc(10000), *before = NULL;
	struct vring_avail *avail;
	struct vring_used *used;
	struct sbx_snapshot *snap;
	struct sbx_mem_stats st = { .size = sizeof(st) };
	struct sbx_mem *mem;
	struct vring_desc *d;
	struct guest g;
	uint64_t fh;
	uint16_t i = 0;
	GByteArray *b;

	for (size_t k = 0; k < 10000; k++)
		text[k] = (uint8_t)('a' + k % 26);
	guest_open(&g);
	g_assert_cmpint(sbx_mem_new(RAM_SIZE, &mem), ==, 0);
	munmap(g.vm.ram, RAM_SIZE);
	g_assert_cmpint(vmm_machine_sbx_ram(&g.vm, mem), ==, 0);
	driver_init(&g);                 /* the rings again, in the region */
	do_init(&g);
	do_create(&g, "big", &fh);
	wi.fh = ri.fh = fh;
	b = req_new(&g, FUSE_WRITE, 1);
	req_add(b, &wi, sizeof(wi));
	req_add(b, text, 10000);
	g_assert_cmpint(call(&g, b), ==, 0);

	/* The driver's part of a READ (send_split without the notify). */
	b = req_new(&g, FUSE_READ, 1);
	req_add(b, &ri, sizeof(ri));
	req_seal(b);
	d = desc_table(&g, 1);
	memcpy(g.vm.ram + REQ_GPA, b->data, b->len);
	memset(g.vm.ram + REPLY_GPA, 0xa5, cap);
	split(d, &i, REQ_GPA, b->len, 1, 0);
	split(d, &i, REPLY_GPA, cap, 3, VRING_DESC_F_WRITE);
	d[i - 1].flags &= (uint16_t)~VRING_DESC_F_NEXT;
	g_byte_array_unref(b);
	avail = (struct vring_avail *)(g.vm.ram + rings[1][1]);
	avail->ring[g.avail_idx[1] % QSIZE] = 0;
	__atomic_store_n(&avail->idx, ++g.avail_idx[1], __ATOMIC_RELEASE);
	before = g_memdup2(g.vm.ram, RAM_SIZE);
	g_assert_cmpint(sbx_snapshot_take(mem, &snap), ==, 0);

	/* The device's part: reply and used ring, reported by vmm. */
	mmio_write(&g, g.notify + (uint64_t)g.notify_off[1] * g.notify_mult, 1, 2);
	used = (struct vring_used *)(g.vm.ram + rings[1][2]);
	g_assert_cmpuint(used->idx, ==, (uint16_t)(g.used_seen[1] + 1));
	g_assert_cmpuint(used->ring[g.used_seen[1] % QSIZE].len, ==, cap);
	g_assert_cmpmem(g.vm.ram + REPLY_GPA + HDR_OUT, 10000, text, 10000);
	g_assert_cmpint(sbx_mem_stats(mem, &st), ==, 0);
	g_test_message("the device dirtied %llu pages of %llu",
		       (unsigned long long)st.dirty_pages, (unsigned long long)(RAM_SIZE / 4096));
	g_assert_cmpuint(st.dirty_pages, ==, 4);
	g_assert_cmpint(sbx_snapshot_restore(mem, snap, SBX_RESTORE_AUTO), ==, 4);
	g_assert_cmpint(sbx_mem_stats(mem, &st), ==, 0);
	g_assert_cmpuint(st.restores_copy, ==, 1);
	g_assert_cmpuint(st.restores_remap, ==, 0);
	g_assert_true(memcmp(g.vm.ram, before, RAM_SIZE) == 0);

	guest_close(&g);
	sbx_snapshot_unref(snap);
	sbx_mem_free(mem);
}

/* ---- guest side: names ------------------------------------------------------------ */

/*
 * Leave name (with its NUL) in the device's request buffer at the offset
 * where op's name starts: a LOOKUP of a name padded in front, which fails
 * and changes nothing.
 */
static void leave_stale(struct guest *g, size_t arg, const char *name)
{
	char *padded = g_strnfill(arg, 'x');
	char *s = g_strconcat(padded, name, NULL);

	g_assert_cmpint(lookup(g, 1, s, NULL), ==, arg ? -ENOENT : 0);
	g_free(s);
	g_free(padded);
}

/*
 * Names without NUL: the stale bytes of the previous request would complete
 * them ("vic" + "tim\0" left by a LOOKUP of "victim"). Refused, and the
 * host directory is exactly as before.
 */
static void test_name_without_nul(void)
{
	static const struct { uint32_t op; size_t arg; const char *stale, *sent; } cases[] = {
		{ FUSE_UNLINK, 0, "victim", "vic" },
		{ FUSE_RMDIR, 0, "victimdir", "vic" },
		{ FUSE_MKDIR, sizeof(struct fuse_mkdir_in), "newdir", "new" },
		{ FUSE_CREATE, sizeof(struct fuse_create_in), "newfile", "new" },
		{ FUSE_LOOKUP, 0, "victim", "vic" },
	};
	struct guest g;
	char *before, *after;

	guest_open(&g);
	do_init(&g);
	host_file(&g, "victim", "x");
	g_assert_cmpint(mkdirat(g.root_fd, "victimdir", 0755), ==, 0);
	before = host_listing(&g);
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		uint8_t arg[ARG_MAX];
		uint64_t refused = g.fuse.st.refused;
		GByteArray *b;
		int r;

		leave_stale(&g, cases[i].arg, cases[i].stale);
		fill_arg(cases[i].op, arg, cases[i].arg);
		b = req_new(&g, cases[i].op, 1);
		req_add(b, arg, cases[i].arg);
		req_add(b, cases[i].sent, strlen(cases[i].sent));     /* no NUL */
		r = call(&g, b);
		g_test_message("%s without NUL: %d", vmm_fuse_opname(cases[i].op), r);
		g_assert_true(r == -EINVAL || r == -ENOENT);
		g_assert_cmpuint(g.fuse.st.refused, ==, refused + 1);
		after = host_listing(&g);
		g_assert_cmpstr(after, ==, before);
		g_free(after);
	}
	g_assert_nonnull(strstr(g.fuse.error.msg, "without NUL"));
	g_free(before);
	guest_close(&g);
}

/* "", ".", "..", "a/b" and a name longer than NAME_MAX: refused for every name op. */
static void test_bad_names(void)
{
	char *longer = g_strnfill(NAME_MAX + 1, 'a');
	const struct { const char *name; int err; } names[] = {
		{ "", -EINVAL }, { ".", -EINVAL }, { "..", -EINVAL }, { "a/b", -EINVAL },
		{ "../victim", -EINVAL }, { longer, -ENAMETOOLONG },
	};
	struct guest g;
	char *before, *after;

	guest_open(&g);
	do_init(&g);
	host_file(&g, "victim", "x");
	g_assert_cmpint(mkdirat(g.root_fd, "a", 0755), ==, 0);
	host_file(&g, "a/b", "x");
	before = host_listing(&g);
	for (size_t i = 0; i < G_N_ELEMENTS(name_ops); i++)
		for (size_t k = 0; k < G_N_ELEMENTS(names); k++) {
			uint8_t arg[ARG_MAX];
			GByteArray *b = req_new(&g, name_ops[i].op, 1);

			fill_arg(name_ops[i].op, arg, name_ops[i].arg);
			req_add(b, arg, name_ops[i].arg);
			req_name(b, names[k].name);
			g_assert_cmpint(call(&g, b), ==, names[k].err);
			after = host_listing(&g);
			g_assert_cmpstr(after, ==, before);
			g_free(after);
		}
	g_assert_true(host_has(&g, "a/b"));
	g_assert_cmpuint(g.fuse.st.refused, ==, G_N_ELEMENTS(name_ops) * G_N_ELEMENTS(names));
	/* Bytes after the name: not what the kernel sends. */
	{
		GByteArray *b = req_new(&g, FUSE_UNLINK, 1);

		req_name(b, "victim");
		req_add(b, "junk", 4);
		g_assert_cmpint(call(&g, b), ==, -EINVAL);
		g_assert_true(host_has(&g, "victim"));
	}
	g_free(before);
	g_free(longer);
	guest_close(&g);
}

/* ---- guest side: lengths --------------------------------------------------------- */

/* Every fixed argument one byte short: refused (no reply where the op has none), nothing done. */
static void test_short_args(void)
{
	struct guest g;
	uint64_t node, fh;
	char *before, *after;

	guest_open(&g);
	do_init(&g);
	host_file(&g, "hello", "hello");
	g_assert_cmpint(lookup(&g, 1, "hello", &node), ==, 0);
	do_create(&g, "f", &fh);
	before = host_listing(&g);
	for (size_t i = 0; i < G_N_ELEMENTS(fixed_args); i++) {
		uint64_t refused = g.fuse.st.refused, nlookup = g.fuse.nodes[node].nlookup;
		uint8_t arg[ARG_MAX];
		GByteArray *b = req_new(&g, fixed_args[i].op, node);

		g_assert_cmpuint(fixed_args[i].size, <=, sizeof(arg));
		fill_arg(fixed_args[i].op, arg, fixed_args[i].size);
		if (fixed_args[i].op == FUSE_INIT)
			memcpy(arg, &(uint32_t[2]){ 7, 38 }, 8);
		if (fixed_args[i].op == FUSE_FORGET)
			memcpy(arg, &(uint64_t){ 1 }, 8);
		req_add(b, arg, fixed_args[i].size - 1);
		if (fixed_args[i].noreply)
			call_noreply(&g, 1, b);
		else
			g_assert_cmpint(call(&g, b), ==, -EINVAL);
		g_test_message("%s with %zu of %zu bytes: refused", vmm_fuse_opname(fixed_args[i].op),
			       fixed_args[i].size - 1, fixed_args[i].size);
		g_assert_cmpuint(g.fuse.st.refused, ==, refused + 1);
		g_assert_cmpuint(g.fuse.nodes[node].nlookup, ==, nlookup);
		after = host_listing(&g);
		g_assert_cmpstr(after, ==, before);
		g_free(after);
	}
	/* The header's len must be what was sent. */
	{
		GByteArray *b = req_new(&g, FUSE_UNLINK, 1);
		uint32_t len;

		req_name(b, "hello");
		req_seal(b);
		len = b->len + 8;
		memcpy(b->data, &len, sizeof(len));
		g_assert_cmpint(send_req(&g, b->data, b->len, 64), ==, (int64_t)HDR_OUT);
		g_assert_cmpint(((struct fuse_out_header *)(g.vm.ram + REPLY_GPA))->error, ==, -EINVAL);
		g_assert_true(host_has(&g, "hello"));
		g_byte_array_unref(b);
	}
	g_free(before);
	guest_close(&g);
}

static int write_req(struct guest *g, uint64_t fh, uint32_t size, size_t sent)
{
	struct fuse_write_in wi = { .fh = fh, .size = size };
	GByteArray *b = req_new(g, FUSE_WRITE, 1);
	uint8_t *data = g_malloc0(sent);
	int r;

	memset(data, 'w', sent);
	req_add(b, &wi, sizeof(wi));
	req_add(b, data, sent);
	r = call(g, b);
	g_free(data);
	return r;
}

/* FUSE_WRITE's size: exactly the data sent, at most max_write. */
static void test_write_size(void)
{
	struct guest g;
	struct stat st;
	uint64_t fh;

	guest_open(&g);
	do_init(&g);
	do_create(&g, "f", &fh);
	g_assert_cmpint(write_req(&g, fh, 100, 50), ==, -EINVAL);   /* more than sent */
	g_assert_cmpint(write_req(&g, fh, 10, 50), ==, -EINVAL);    /* less than sent */
	g_assert_cmpint(write_req(&g, fh, UINT32_MAX, 50), ==, -EINVAL);
	g_assert_cmpint(write_req(&g, fh, VMM_FUSE_MAX_WRITE + 1, VMM_FUSE_MAX_WRITE + 1), ==, -EINVAL);
	g_assert_cmpint(fstatat(g.root_fd, "f", &st, 0), ==, 0);
	g_assert_cmpint(st.st_size, ==, 0);
	g_assert_cmpuint(g.fuse.st.bytes_written, ==, 0);
	g_assert_cmpint(write_req(&g, fh, VMM_FUSE_MAX_WRITE, VMM_FUSE_MAX_WRITE), ==, 0);
	g_assert_cmpint(fstatat(g.root_fd, "f", &st, 0), ==, 0);
	g_assert_cmpint(st.st_size, ==, VMM_FUSE_MAX_WRITE);
	g_assert_cmpuint(g.fuse.st.refused, ==, 4);
	guest_close(&g);
}

/* A reply buffer too small for the reply: an error reply, or nothing, and nothing done. */
static void test_small_reply(void)
{
	struct fuse_create_in ci = { .flags = O_RDWR, .mode = 0644 };
	struct fuse_read_in ri = { .size = 4096 };
	struct guest g;
	uint64_t node, fh, nlookup;
	GByteArray *b;

	guest_open(&g);
	do_init(&g);
	host_file(&g, "hello", "hello");
	g_assert_cmpint(lookup(&g, 1, "hello", &node), ==, 0);
	nlookup = g.fuse.nodes[node].nlookup;
	/* LOOKUP with room for the header only: -EINVAL, no lookup counted. */
	b = req_new(&g, FUSE_LOOKUP, 1);
	req_name(b, "hello");
	g_assert_cmpint(call_body(&g, b, HDR_OUT, NULL, 0), ==, -EINVAL);
	g_assert_cmpuint(g.fuse.nodes[node].nlookup, ==, nlookup);
	/* Not even the header fits (or no writable buffer at all): nothing written. */
	for (size_t cap = 0; cap < HDR_OUT; cap += HDR_OUT / 2) {
		b = req_new(&g, FUSE_LOOKUP, 1);
		req_name(b, "hello");
		req_seal(b);
		g_assert_cmpint(send_split(&g, 1, b->data, b->len, 1, cap, cap ? 1 : 0), ==, 0);
		g_byte_array_unref(b);
	}
	/* CREATE without room for fuse_open_out: the file is not created. */
	b = req_new(&g, FUSE_CREATE, 1);
	req_add(b, &ci, sizeof(ci));
	req_name(b, "created");
	g_assert_cmpint(call_body(&g, b, HDR_OUT + sizeof(struct fuse_entry_out), NULL, 0), ==, -EINVAL);
	g_assert_false(host_has(&g, "created"));
	/* READ of more than the buffer holds. */
	do_create(&g, "f", &fh);
	ri.fh = fh;
	b = req_new(&g, FUSE_READ, 1);
	req_add(b, &ri, sizeof(ri));
	g_assert_cmpint(call_body(&g, b, HDR_OUT + ri.size - 1, NULL, 0), ==, -EINVAL);
	g_assert_cmpuint(g.fuse.st.refused, ==, 5);
	guest_close(&g);
}

/* ---- guest side: hostile descriptors --------------------------------------------------- */

/* After a refused chain: reported, NEEDS_RESET, ignored until reset; then the device works again. */
static void expect_refused_chain(struct guest *g, const char *what)
{
	g_test_message("%s: %s", what, g->fs.error.msg);
	g_assert_nonnull(strstr(g->fs.error.msg, "virtqueue: queue 1: "));
	g_assert_nonnull(strstr(g->fs.v.error.msg, what));
	g_assert_cmpuint(status(g) & VIRTIO_CONFIG_S_NEEDS_RESET, !=, 0);
	driver_init(g);
	g_assert_cmpint(lookup(g, 1, "hello", NULL), ==, 0);
}

static void test_hostile_descriptors(void)
{
	struct guest g;
	struct vring_desc *d;
	GByteArray *b;

	guest_open(&g);
	d = desc_table(&g, 1);
	host_file(&g, "hello", "hello");
	do_init(&g);
	b = req_new(&g, FUSE_LOOKUP, 1);
	req_name(b, "hello");
	req_seal(b);
	memcpy(g.vm.ram + REQ_GPA, b->data, b->len);

	/* A buffer outside guest RAM, or wrapping around. */
	d[0] = (struct vring_desc){ RAM_SIZE - 8, 64, 0, 0 };
	g_assert_cmpint(kick(&g, 1, 0), ==, NOTHING);
	expect_refused_chain(&g, "outside RAM");
	d[0] = (struct vring_desc){ UINT64_MAX - 8, 64, 0, 0 };
	g_assert_cmpint(kick(&g, 1, 0), ==, NOTHING);
	expect_refused_chain(&g, "outside RAM");

	/* A loop: 0 -> 1 -> 0. */
	d[0] = (struct vring_desc){ REQ_GPA, HDR_IN, VRING_DESC_F_NEXT, 1 };
	d[1] = (struct vring_desc){ REQ_GPA + HDR_IN, b->len - HDR_IN, VRING_DESC_F_NEXT, 0 };
	g_assert_cmpint(kick(&g, 1, 0), ==, NOTHING);
	expect_refused_chain(&g, "bad descriptor chain");
	/* A next or a head past the ring. */
	d[1].next = QSIZE;
	g_assert_cmpint(kick(&g, 1, 0), ==, NOTHING);
	expect_refused_chain(&g, "bad descriptor chain");
	g_assert_cmpint(kick(&g, 1, QSIZE + 7), ==, NOTHING);
	expect_refused_chain(&g, "bad descriptor chain");
	/* Readable after writable; an indirect table (not offered). */
	d[0] = (struct vring_desc){ REPLY_GPA, 64, VRING_DESC_F_WRITE | VRING_DESC_F_NEXT, 1 };
	d[1] = (struct vring_desc){ REQ_GPA, b->len, 0, 0 };
	g_assert_cmpint(kick(&g, 1, 0), ==, NOTHING);
	expect_refused_chain(&g, "readable after writable");
	d[0] = (struct vring_desc){ REQ_GPA, 16 * 4, VRING_DESC_F_INDIRECT, 0 };
	g_assert_cmpint(kick(&g, 1, 0), ==, NOTHING);
	expect_refused_chain(&g, "indirect");
	/* An available index more than a ring ahead. */
	{
		struct vring_avail *avail = (struct vring_avail *)(g.vm.ram + rings[1][1]);

		g.avail_idx[1] += QSIZE + 1;
		avail->idx = g.avail_idx[1];
		g_assert_cmpint(kick(&g, 1, 0), ==, NOTHING);
		expect_refused_chain(&g, "available index");
	}
	g_byte_array_unref(b);
	g_assert_cmpstr(g.fuse.error.msg, ==, "");
	guest_close(&g);
}

/*
 * Rings misaligned or outside RAM: refused at the first notification,
 * before anything in them is read (virtio 1.x: 16, 2 and 4-byte alignment).
 */
static void test_hostile_rings(void)
{
	const struct { uint64_t desc, avail, used; const char *what; } cases[] = {
		{ rings[1][0] + 8, rings[1][1], rings[1][2], "descriptor ring at 0x1008 misaligned" },
		{ rings[1][0], rings[1][1] + 1, rings[1][2], "available ring at 0x2001 misaligned" },
		{ rings[1][0], rings[1][1], rings[1][2] + 2, "used ring at 0x3002 misaligned" },
		{ RAM_SIZE - 16, rings[1][1], rings[1][2], "descriptor ring at 0x3ffff0 outside RAM" },
		{ rings[1][0], rings[1][1], RAM_SIZE - 4, "used ring at 0x3ffffc outside RAM" },
	};
	struct guest g;

	guest_open(&g);
	host_file(&g, "hello", "hello");
	do_init(&g);
	for (size_t i = 0; i < G_N_ELEMENTS(cases); i++) {
		driver_init_at(&g, cases[i].desc, cases[i].avail, cases[i].used);
		mmio_write(&g, g.notify + (uint64_t)g.notify_off[1] * g.notify_mult, 1, 2);
		g_test_message("%s: %s", cases[i].what, g.fs.v.error.msg);
		g_assert_nonnull(strstr(g.fs.v.error.msg, cases[i].what));
		g_assert_nonnull(strstr(g.fs.error.msg, cases[i].what));
		g_assert_cmpuint(status(&g) & VIRTIO_CONFIG_S_NEEDS_RESET, !=, 0);
		g_assert_cmpuint(g.fs.requests, ==, 1);          /* only do_init() got through */
	}
	driver_init(&g);
	g_assert_cmpint(lookup(&g, 1, "hello", NULL), ==, 0);
	guest_close(&g);
}

/*
 * The longest chain the ring can hold (QSIZE descriptors: a longer one
 * would be a loop) is accepted, so VMM_CHAIN_MAX (> QSIZE) is never the
 * limit; a queue size above what the device offers is not taken. A request
 * larger than the device's buffer gets an empty used entry and an error,
 * and the device goes on.
 */
static void test_chain_limits(void)
{
	char *name = g_strnfill(200, 'z');
	struct guest g;
	uint8_t *big;
	GByteArray *b;

	g_assert_cmpuint(VMM_CHAIN_MAX, >=, QSIZE);
	guest_open(&g);
	do_init(&g);
	common_write(&g, VIRTIO_PCI_COMMON_Q_SELECT, 1, 2);
	common_write(&g, VIRTIO_PCI_COMMON_Q_SIZE, 2 * QSIZE, 2);
	g_assert_cmpuint(mmio_read(&g, g.common + VIRTIO_PCI_COMMON_Q_SIZE, 2), ==, QSIZE);

	b = req_new(&g, FUSE_LOOKUP, 1);
	req_name(b, name);
	req_seal(b);
	g_assert_cmpint(send_split(&g, 1, b->data, b->len, QSIZE - 2, 4096, 2), ==, (int64_t)HDR_OUT);
	g_assert_cmpint(((struct fuse_out_header *)(g.vm.ram + REPLY_GPA))->error, ==, -ENOENT);
	g_byte_array_unref(b);
	g_assert_cmpstr(g.fs.error.msg, ==, "");

	big = g_malloc0(g.fs.cap + 64);
	b = req_new(&g, FUSE_LOOKUP, 1);
	req_seal(b);
	memcpy(big, b->data, b->len);
	g_byte_array_unref(b);
	g_assert_cmpint(send_split(&g, 1, big, g.fs.cap + 64, 4, 4096, 1), ==, 0);
	g_assert_nonnull(strstr(g.fs.error.msg, "request of"));
	g_assert_cmpuint(g.fs.max_request, ==, g.fs.cap + 64);
	g_assert_cmpuint(status(&g) & VIRTIO_CONFIG_S_NEEDS_RESET, ==, 0);
	host_file(&g, "hello", "hello");
	g_assert_cmpint(lookup(&g, 1, "hello", NULL), ==, 0);
	g_free(big);
	g_free(name);
	guest_close(&g);
}

/* ---- vmm_fuse_handle() directly, in buffers of exactly the request's size ------- */

/*
 * One request of len bytes in a buffer of exactly len bytes, the reply into
 * cap bytes followed by guard bytes (tests/guard.h): its error (1 when
 * there was no reply).
 */
static int direct(struct vmm_fuse *f, const void *req, size_t len, size_t cap)
{
	uint8_t *in = g_malloc(len ? len : 1), *out = mk_guard_alloc(cap);
	struct fuse_out_header oh = { .error = 1 };
	size_t n;

	g_assert_nonnull(out);
	memcpy(in, req, len);
	n = vmm_fuse_handle(f, in, len, out, cap);
	g_assert_cmpuint(n, <=, cap);
	if (n) {
		g_assert_cmpuint(n, >=, HDR_OUT);
		memcpy(&oh, out, sizeof(oh));
		g_assert_cmpuint(oh.len, ==, n);
	}
	g_assert_true(mk_guard_free(out, cap));
	g_free(in);
	return oh.error;
}

static int direct_b(struct vmm_fuse *f, GByteArray *b, size_t cap)
{
	int r;

	req_seal(b);
	r = direct(f, b->data, b->len, cap);
	g_byte_array_unref(b);
	return r;
}

static void test_direct(void)
{
	struct guest g;
	char *before, *after;

	guest_open(&g);
	do_init(&g);
	host_file(&g, "victim", "x");
	before = host_listing(&g);
	/* Names without NUL, in a buffer that ends where the name does. */
	for (size_t i = 0; i < G_N_ELEMENTS(name_ops); i++)
		for (size_t n = 0; n <= 6; n++) {
			uint8_t arg[ARG_MAX];
			GByteArray *b = req_new(&g, name_ops[i].op, 1);
			int r;

			fill_arg(name_ops[i].op, arg, name_ops[i].arg);
			req_add(b, arg, name_ops[i].arg);
			req_add(b, "victim", n);
			r = direct_b(&g.fuse, b, 4096);
			g_assert_true(r == -EINVAL || r == -ENOENT);
		}
	/* Every fixed argument one byte short. */
	for (size_t i = 0; i < G_N_ELEMENTS(fixed_args); i++) {
		uint8_t arg[ARG_MAX];
		GByteArray *b = req_new(&g, fixed_args[i].op, 1);

		fill_arg(fixed_args[i].op, arg, fixed_args[i].size);
		req_add(b, arg, fixed_args[i].size - 1);
		g_assert_cmpint(direct_b(&g.fuse, b, 4096), ==, fixed_args[i].noreply ? 1 : -EINVAL);
	}
	/* Shorter than a header; every reply capacity below what LOOKUP and CREATE write. */
	for (size_t n = 0; n < HDR_IN; n++)
		g_assert_cmpint(direct(&g.fuse, "0123456789012345678901234567890123456789", n, 4096), ==, 1);
	for (size_t cap = 0; cap < HDR_OUT + sizeof(struct fuse_entry_out) + sizeof(struct fuse_open_out); cap++) {
		struct fuse_create_in ci = { .flags = O_RDWR, .mode = 0644 };
		GByteArray *b = req_new(&g, FUSE_LOOKUP, 1);
		int r;

		req_name(b, "victim");
		r = direct_b(&g.fuse, b, cap);
		g_assert_cmpint(r, ==, cap < HDR_OUT ? 1 : cap < HDR_OUT + sizeof(struct fuse_entry_out) ? -EINVAL : 0);
		b = req_new(&g, FUSE_CREATE, 1);
		req_add(b, &ci, sizeof(ci));
		req_name(b, "created");
		g_assert_cmpint(direct_b(&g.fuse, b, cap), ==, cap < HDR_OUT ? 1 : -EINVAL);
	}
	after = host_listing(&g);
	g_assert_cmpstr(after, ==, before);
	g_free(after);
	g_free(before);
	guest_close(&g);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/fuse-server/guest/good", test_good);
	g_test_add_func("/fuse-server/guest/init-compat", test_init_compat);
	g_test_add_func("/fuse-server/guest/name-without-nul", test_name_without_nul);
	g_test_add_func("/fuse-server/guest/bad-names", test_bad_names);
	g_test_add_func("/fuse-server/guest/short-args", test_short_args);
	g_test_add_func("/fuse-server/guest/write-size", test_write_size);
	g_test_add_func("/fuse-server/guest/small-reply", test_small_reply);
	g_test_add_func("/fuse-server/guest/hostile-descriptors", test_hostile_descriptors);
	g_test_add_func("/fuse-server/guest/hostile-rings", test_hostile_rings);
	g_test_add_func("/fuse-server/guest/chain-limits", test_chain_limits);
	g_test_add_func("/fuse-server/guest/sbx-ram", test_sbx_ram);
	g_test_add_func("/fuse-server/direct/exact-buffers", test_direct);
	return g_test_run();
}
