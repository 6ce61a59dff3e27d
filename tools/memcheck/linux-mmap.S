/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest linux check: a tiny static x86-64 Linux program for the
 * guest (busybox has no way to write a file through mmap). linux.c wraps
 * the bytes between mc_lxmmap_start and mc_lxmmap_end into an ELF
 * executable, /bin/mcmmap in the initramfs. Position independent, no data.
 *
 *   mcmmap PATH      map the first 2 MiB of PATH shared and writable, read
 *                    one word of every page first (read faults: read-only
 *                    DAX mappings), then write them (write faults: the
 *                    read -> write upgrade)
 *   mcmmap PATH w    the same without the read pass (writable mappings)
 *
 * Every 8-byte word at file offset off becomes off ^ LXMMAP_MAGIC; then
 * msync(MS_SYNC), munmap, exit 0. Exit 1 on any failed system call.
 */
#define LXMMAP_LEN   0x200000
#define LXMMAP_MAGIC 0x4d434d4d41500000

	.section .rodata.mc_lxmmap, "a"
	.globl mc_lxmmap_start
	.globl mc_lxmmap_end
mc_lxmmap_start:
	mov	(%rsp), %r12            /* argc */
	mov	16(%rsp), %rdi          /* argv[1]: the path */
	mov	$2, %esi                /* O_RDWR */
	xor	%edx, %edx
	mov	$2, %eax                /* open */
	syscall
	test	%rax, %rax
	js	1f
	mov	%rax, %r13              /* fd */
	xor	%edi, %edi
	mov	$LXMMAP_LEN, %esi
	mov	$3, %edx                /* PROT_READ | PROT_WRITE */
	mov	$1, %r10d               /* MAP_SHARED */
	mov	%r13, %r8
	xor	%r9d, %r9d
	mov	$9, %eax                /* mmap */
	syscall
	cmp	$-4095, %rax
	jae	1f
	mov	%rax, %rbx              /* the mapping */
	cmp	$3, %r12
	jae	3f
	xor	%ecx, %ecx
	xor	%edx, %edx
2:	add	(%rbx,%rcx), %rdx       /* read pass: one word per page */
	add	$4096, %rcx
	cmp	$LXMMAP_LEN, %rcx
	jb	2b
3:	xor	%ecx, %ecx
	movabs	$LXMMAP_MAGIC, %rdx
4:	mov	%rcx, %rax
	xor	%rdx, %rax
	mov	%rax, (%rbx,%rcx)
	add	$8, %rcx
	cmp	$LXMMAP_LEN, %rcx
	jb	4b
	mov	%rbx, %rdi
	mov	$LXMMAP_LEN, %esi
	mov	$4, %edx                /* MS_SYNC */
	mov	$26, %eax               /* msync */
	syscall
	test	%rax, %rax
	jnz	1f
	mov	%rbx, %rdi
	mov	$LXMMAP_LEN, %esi
	mov	$11, %eax               /* munmap */
	syscall
	mov	%r13, %rdi
	mov	$3, %eax                /* close */
	syscall
	xor	%edi, %edi
	mov	$60, %eax               /* exit */
	syscall
1:	mov	$1, %edi
	mov	$60, %eax
	syscall
mc_lxmmap_end:

	.section .note.GNU-stack, "", @progbits
