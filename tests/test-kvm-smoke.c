/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* KVM smoke test: a real VM runs a few guest instructions; exits are checked. */
#include "config.h"

#include <glib.h>
#include <string.h>

#include "common/kvm.h"
#include "common/sys.h"
#include "kvmtest.h"

static void test_extension(void)
{
	int fd;

	if (!kvmtest_available())
		return;
	fd = mk_kvm_open();
	g_assert_cmpint(fd, >=, 0);
	g_assert_cmpint(mk_kvm_check_extension(fd, KVM_CAP_USER_MEMORY), >, 0);
	g_assert_cmpint(mk_kvm_vcpu_mmap_size(fd), >=, (int)sizeof(struct kvm_run));
	g_assert_cmpint(mk_kvm_check_extension(-1, KVM_CAP_USER_MEMORY), ==, -EBADF);
	mk_close(fd);
}

static void test_guest_io_and_hlt(void)
{
	/* 32-bit flat code:
	 *   movl $0xdeadbeef, 0x3000   ; store into guest RAM
	 *   mov  $0x42, %al
	 *   out  %al, $0x10           ; KVM_EXIT_IO
	 *   hlt                        ; KVM_EXIT_HLT
	 */
	static const uint8_t code[] = {
		0xc7, 0x05, 0x00, 0x30, 0x00, 0x00, 0xef, 0xbe, 0xad, 0xde,
		0xb0, 0x42,
		0xe6, 0x10,
		0xf4,
	};
	struct vmm_vm vm;
	struct vmm_err err = { 0 };
	uint32_t v;
	int r;

	if (!kvmtest_available())
		return;
	r = vmm_vm_open(&vm, -1, 1 << 20, 0, &err);
	if (r < 0)
		g_error("VM setup: %s", err.msg);
	g_assert_cmpint(vmm_cpu_flat32(&vm, 0x1000, code, sizeof(code), NULL), ==, 0);

	r = vmm_vm_run(&vm);
	g_assert_cmpint(r, ==, KVM_EXIT_IO);
	g_assert_cmpint(vm.run->io.direction, ==, KVM_EXIT_IO_OUT);
	g_assert_cmpint(vm.run->io.port, ==, 0x10);
	g_assert_cmpint(vm.run->io.size, ==, 1);
	g_assert_cmpint(*((uint8_t *)vm.run + vm.run->io.data_offset), ==, 0x42);
	memcpy(&v, (char *)vm.ram + 0x3000, 4);
	g_assert_cmphex(v, ==, 0xdeadbeef);

	r = vmm_vm_run(&vm);
	g_assert_cmpint(r, ==, KVM_EXIT_HLT);
	vmm_vm_close(&vm);
}

static void test_mmio_exit_outside_ram(void)
{
	/* movl 0x200000, %eax: a read past the 1 MiB slot is an MMIO exit. */
	static const uint8_t code[] = { 0xa1, 0x00, 0x00, 0x20, 0x00, 0xf4 };
	struct vmm_vm vm;
	struct vmm_err err = { 0 };
	int r;

	if (!kvmtest_available())
		return;
	r = vmm_vm_open(&vm, -1, 1 << 20, 0, &err);
	if (r < 0)
		g_error("VM setup: %s", err.msg);
	g_assert_cmpint(vmm_cpu_flat32(&vm, 0x1000, code, sizeof(code), NULL), ==, 0);
	r = vmm_vm_run(&vm);
	g_assert_cmpint(r, ==, KVM_EXIT_MMIO);
	g_assert_cmphex(vm.run->mmio.phys_addr, ==, 0x200000);
	g_assert_false(vm.run->mmio.is_write);
	g_assert_cmpint(vm.run->mmio.len, ==, 4);
	vmm_vm_close(&vm);
}

static void test_dirty_log(void)
{
	/* movl $1, 0x5000; hlt */
	static const uint8_t code[] = { 0xc7, 0x05, 0x00, 0x50, 0x00, 0x00, 0x01, 0, 0, 0, 0xf4 };
	struct vmm_vm vm;
	struct vmm_err err = { 0 };
	uint64_t bitmap[4] = { 0 };
	int r;

	if (!kvmtest_available())
		return;
	r = vmm_vm_open(&vm, -1, 64 * 4096, 0, &err);
	if (r < 0)
		g_error("VM setup: %s", err.msg);
	g_assert_cmpint(mk_kvm_set_memslot(vm.vm_fd, 0, KVM_MEM_LOG_DIRTY_PAGES, 0,
					   vm.ram_size, vm.ram), ==, 0);
	g_assert_cmpint(vmm_cpu_flat32(&vm, 0x1000, code, sizeof(code), NULL), ==, 0);
	g_assert_cmpint(vmm_vm_run(&vm), ==, KVM_EXIT_HLT);
	g_assert_cmpint(mk_kvm_get_dirty_log(vm.vm_fd, 0, bitmap), ==, 0);
	g_assert_true(bitmap[0] & (1ull << 5));         /* page 5 was written */
	g_assert_false(bitmap[0] & (1ull << 9));        /* page 9 was not */
	vmm_vm_close(&vm);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/kvm/extension", test_extension);
	g_test_add_func("/kvm/guest-io-hlt", test_guest_io_and_hlt);
	g_test_add_func("/kvm/mmio-exit", test_mmio_exit_outside_ram);
	g_test_add_func("/kvm/dirty-log", test_dirty_log);
	return g_test_run();
}
