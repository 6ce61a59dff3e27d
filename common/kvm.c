/* SPDX-License-Identifier: LGPL-2.1-or-later */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "kvm.h"
#include "sys.h"

static long kvm_ioctl(int fd, unsigned long req, unsigned long arg)
{
	int saved = errno;
	long r;

	do
		r = ioctl(fd, req, arg);
	while (r < 0 && errno == EINTR && req != KVM_RUN);
	if (r < 0)
		r = -errno;
	errno = saved;
	return r;
}

int mk_kvm_open(void)
{
	const char *dev = secure_getenv("MEMKIT_KVM_DEV");
	int fd, r;

	fd = mk_openat(AT_FDCWD, dev && *dev ? dev : "/dev/kvm", O_RDWR, 0);
	if (fd < 0)
		return fd;
	r = (int)kvm_ioctl(fd, KVM_GET_API_VERSION, 0);
	if (r != KVM_API_VERSION) {
		mk_close(fd);
		return r < 0 ? r : -ENOTSUP;
	}
	return fd;
}

const char *mk_kvm_strerror(int err)
{
	switch (err < 0 ? -err : err) {
	case ENOENT:
		return "no /dev/kvm (KVM not available or nested virtualization off)";
	case EACCES:
	case EPERM:
		return "permission denied on /dev/kvm (add the user to the kvm group)";
	case ENXIO:
	case ENODEV:
		return "KVM device present but no hypervisor support (module not loaded?)";
	case ENOTSUP:
		return "unsupported KVM API version";
	default:
		return strerror(err < 0 ? -err : err);
	}
}

int mk_kvm_check_extension(int fd, long cap)
{
	return (int)kvm_ioctl(fd, KVM_CHECK_EXTENSION, (unsigned long)cap);
}

int mk_kvm_create_vm(int kvm_fd)
{
	long r;

	/* EINTR can happen here on busy hosts; retried in kvm_ioctl. */
	r = kvm_ioctl(kvm_fd, KVM_CREATE_VM, 0);
	if (r >= 0)
		(void)fcntl((int)r, F_SETFD, FD_CLOEXEC);
	return (int)r;
}

int mk_kvm_create_vcpu(int vm_fd, unsigned id)
{
	long r = kvm_ioctl(vm_fd, KVM_CREATE_VCPU, id);

	if (r >= 0)
		(void)fcntl((int)r, F_SETFD, FD_CLOEXEC);
	return (int)r;
}

int mk_kvm_vcpu_mmap_size(int kvm_fd)
{
	return (int)kvm_ioctl(kvm_fd, KVM_GET_VCPU_MMAP_SIZE, 0);
}

int mk_kvm_set_memslot(int vm_fd, uint32_t slot, uint32_t flags, uint64_t gpa,
		       uint64_t size, void *hva)
{
	struct kvm_userspace_memory_region region = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
	};

	return (int)kvm_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, (unsigned long)&region);
}

int mk_kvm_delete_memslot(int vm_fd, uint32_t slot)
{
	return mk_kvm_set_memslot(vm_fd, slot, 0, 0, 0, NULL);
}

int mk_kvm_create_guest_memfd(int vm_fd, uint64_t size, uint64_t flags)
{
	struct kvm_create_guest_memfd g = { .size = size, .flags = flags };
	long r = kvm_ioctl(vm_fd, KVM_CREATE_GUEST_MEMFD, (unsigned long)&g);

	/* KVM makes it O_CLOEXEC-less on some kernels: set it either way. */
	if (r >= 0)
		(void)fcntl((int)r, F_SETFD, FD_CLOEXEC);
	return (int)r;
}

int mk_kvm_set_memslot_gmem(int vm_fd, uint32_t slot, uint32_t flags, uint64_t gpa,
			    uint64_t size, void *hva, int gmem_fd, uint64_t gmem_off)
{
	struct kvm_userspace_memory_region2 region = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = (uint64_t)(uintptr_t)hva,
		.guest_memfd_offset = gmem_off,
		.guest_memfd = (uint32_t)gmem_fd,
	};

	return (int)kvm_ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION2, (unsigned long)&region);
}

int mk_kvm_get_dirty_log(int vm_fd, uint32_t slot, uint64_t *bitmap)
{
	struct kvm_dirty_log log = { .slot = slot, .dirty_bitmap = bitmap };

	return (int)kvm_ioctl(vm_fd, KVM_GET_DIRTY_LOG, (unsigned long)&log);
}

int mk_kvm_run(int vcpu_fd)
{
	return (int)kvm_ioctl(vcpu_fd, KVM_RUN, 0);
}

int mk_kvm_get_regs(int vcpu_fd, struct kvm_regs *regs)
{
	return (int)kvm_ioctl(vcpu_fd, KVM_GET_REGS, (unsigned long)regs);
}

int mk_kvm_set_regs(int vcpu_fd, const struct kvm_regs *regs)
{
	return (int)kvm_ioctl(vcpu_fd, KVM_SET_REGS, (unsigned long)regs);
}

int mk_kvm_get_sregs(int vcpu_fd, struct kvm_sregs *sregs)
{
	return (int)kvm_ioctl(vcpu_fd, KVM_GET_SREGS, (unsigned long)sregs);
}

int mk_kvm_set_sregs(int vcpu_fd, const struct kvm_sregs *sregs)
{
	return (int)kvm_ioctl(vcpu_fd, KVM_SET_SREGS, (unsigned long)sregs);
}
