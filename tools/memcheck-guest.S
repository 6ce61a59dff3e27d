/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * memcheck-guest: the program that runs inside the VM. 64-bit code, no
 * data of its own, position independent: the host copies the bytes
 * between mc_guest_start and mc_guest_end to MC_CODE and enters it in
 * long mode with identity-mapped 2 MiB pages (see vm.c). It announces
 * itself on MC_PORT_HELLO, then executes the command block at MC_CMD
 * over and over, reporting each on MC_PORT_DONE (see memcheck/proto.h).
 *
 * Every access to test memory is in [%rdi, %rdi + 32) (the host recovers
 * the address of a fault from it when KVM cannot say, see mc_fault_fn).
 * Registers: rbx = command block; rdi = cursor; rcx = words left;
 * rdx = pattern generator; r9/r11/r12/r13 = verify results.
 */
#include "tools/memcheck/proto.h"

/* One xorshift64 step on state (13, 7, 17); clobbers r10. */
	.macro XORSHIFT state
	mov	\state, %r10
	shl	$13, %r10
	xor	%r10, \state
	mov	\state, %r10
	shr	$7, %r10
	xor	%r10, \state
	mov	\state, %r10
	shl	$17, %r10
	xor	%r10, \state
	.endm

	.section .rodata.mc_guest, "a"
	.balign 64
	.globl mc_guest_start
	.globl mc_guest_end
	.code64

mc_guest_start:
	xor	%eax, %eax
	out	%al, $MC_PORT_HELLO
cmd_loop:
	mov	$MC_CMD, %ebx
	mov	MC_C_OP(%rbx), %rax
	cmp	$MC_OP_PING, %rax
	je	op_ok
	cmp	$MC_OP_FILL, %rax
	je	op_fill
	cmp	$MC_OP_VERIFY, %rax
	je	op_verify
	cmp	$MC_OP_READ64, %rax
	je	op_read64
	cmp	$MC_OP_WRITE64, %rax
	je	op_write64
	cmp	$MC_OP_WRITE_PAGES, %rax
	je	op_write_pages
	cmp	$MC_OP_CHECKSUM, %rax
	je	op_checksum
	cmp	$MC_OP_HANG, %rax
	je	op_hang
	mov	$MC_ST_BADOP, %al
	jmp	done
bad_arg:
	mov	$MC_ST_BADARG, %al
	jmp	done
op_ok:
	xor	%eax, %eax
done:
	out	%al, $MC_PORT_DONE
	jmp	cmd_loop

/* rdx = rotl(1, seed % 64), from r8 = seed; clobbers rcx. */
walk_init:
	mov	%r8, %rcx
	and	$63, %ecx
	mov	$1, %edx
	rol	%cl, %rdx
	ret

/* rdx = first xorshift state from r8 = seed (0 -> MC_XS_DEFAULT). */
xs_init:
	mov	%r8, %rdx
	test	%rdx, %rdx
	jnz	1f
	movabs	$MC_XS_DEFAULT, %rdx
1:	ret

/* Common FILL/VERIFY prologue: rdi, r8, generator in rdx, rcx = words, rax = kind. */
pat_setup:
	mov	MC_C_ADDR(%rbx), %rdi
	mov	MC_C_SEED(%rbx), %r8
	xor	%r9d, %r9d
	xor	%r11d, %r11d
	xor	%r12d, %r12d
	xor	%r13d, %r13d
	mov	MC_C_ARG(%rbx), %rax
	cmp	$MC_PAT_WALK1, %rax
	jne	1f
	call	walk_init
	jmp	9f
1:	cmp	$MC_PAT_WALK0, %rax
	jne	2f
	call	walk_init
	not	%rdx
	jmp	9f
2:	call	xs_init
9:	mov	MC_C_LEN(%rbx), %rcx
	shr	$3, %rcx
	ret

/* ---- FILL ------------------------------------------------------------- */
op_fill:
	call	pat_setup
	test	%rcx, %rcx
	jz	op_ok
	cmp	$MC_PAT_WALK1, %rax
	je	fill_rol
	cmp	$MC_PAT_WALK0, %rax
	je	fill_rol
	cmp	$MC_PAT_ADDR, %rax
	je	fill_addr
	cmp	$MC_PAT_RANDOM, %rax
	je	fill_random
	jmp	bad_arg
fill_rol:
	/* Four independent rotation chains: the stores, not rol, set the pace. */
	cmp	$4, %rcx
	jb	fill_rol1
	mov	%rdx, %r10
	rol	$1, %r10
	mov	%rdx, %r11
	rol	$2, %r11
	mov	%rdx, %r12
	rol	$3, %r12
1:	movnti	%rdx, (%rdi)
	movnti	%r10, 8(%rdi)
	movnti	%r11, 16(%rdi)
	movnti	%r12, 24(%rdi)
	rol	$4, %rdx
	rol	$4, %r10
	rol	$4, %r11
	rol	$4, %r12
	add	$32, %rdi
	sub	$4, %rcx
	cmp	$4, %rcx
	jae	1b
	test	%rcx, %rcx
	jz	fill_done
fill_rol1:
	movnti	%rdx, (%rdi)
	rol	$1, %rdx
	add	$8, %rdi
	dec	%rcx
	jnz	fill_rol1
	jmp	fill_done
fill_addr:
	cmp	$4, %rcx
	jb	fill_addr1
	lea	8(%rdi), %r10
	lea	16(%rdi), %r11
	lea	24(%rdi), %r12
	movnti	%rdi, (%rdi)
	movnti	%r10, 8(%rdi)
	movnti	%r11, 16(%rdi)
	movnti	%r12, 24(%rdi)
	add	$32, %rdi
	sub	$4, %rcx
	jnz	fill_addr
	jmp	fill_done
fill_addr1:
	movnti	%rdi, (%rdi)
	add	$8, %rdi
	dec	%rcx
	jnz	fill_addr1
fill_done:
	sfence			/* the stores are non-temporal (no read for ownership) */
	jmp	op_ok
fill_random:
	XORSHIFT %rdx
	movnti	%rdx, (%rdi)
	add	$8, %rdi
	dec	%rcx
	jnz	fill_random
	jmp	fill_done

/* ---- VERIFY ----------------------------------------------------------- */
/* Mismatch at rdi: expected rdx, actual rax. Counts; keeps the first. */
record_bad:
	test	%r9, %r9
	jnz	1f
	mov	%rdi, %r11
	mov	%rdx, %r12
	mov	%rax, %r13
1:	inc	%r9
	ret

op_verify:
	call	pat_setup
	test	%rcx, %rcx
	jz	verify_done
	cmp	$MC_PAT_WALK1, %rax
	je	verify_rol
	cmp	$MC_PAT_WALK0, %rax
	je	verify_rol
	cmp	$MC_PAT_ADDR, %rax
	je	verify_addr
	cmp	$MC_PAT_RANDOM, %rax
	je	verify_random
	jmp	bad_arg
verify_rol:
	mov	(%rdi), %rax
	cmp	%rdx, %rax
	jne	3f
4:	rol	$1, %rdx
	add	$8, %rdi
	dec	%rcx
	jnz	verify_rol
	jmp	verify_done
3:	call	record_bad
	jmp	4b
verify_addr:
	mov	(%rdi), %rax
	cmp	%rdi, %rax
	jne	3f
4:	add	$8, %rdi
	dec	%rcx
	jnz	verify_addr
	jmp	verify_done
3:	mov	%rdi, %rdx
	call	record_bad
	jmp	4b
verify_random:
	XORSHIFT %rdx
	mov	(%rdi), %rax
	cmp	%rdx, %rax
	jne	3f
4:	add	$8, %rdi
	dec	%rcx
	jnz	verify_random
	jmp	verify_done
3:	call	record_bad
	jmp	4b
verify_done:
	mov	%r9, MC_C_RES0(%rbx)
	mov	%r11, MC_C_RES1(%rbx)
	mov	%r12, MC_C_RES2(%rbx)
	mov	%r13, MC_C_RES3(%rbx)
	jmp	op_ok

/* ---- single accesses ---------------------------------------------------- */
op_read64:
	mov	MC_C_ADDR(%rbx), %rdi
	mov	(%rdi), %rax
	mov	%rax, MC_C_RES0(%rbx)
	jmp	op_ok
op_write64:
	mov	MC_C_ADDR(%rbx), %rdi
	mov	MC_C_ARG(%rbx), %rax
	mov	%rax, (%rdi)
	jmp	op_ok

/* ---- WRITE_PAGES: arg pages chosen by xorshift from seed ---------------- */
/* state = xs(state); page = state % npages; *(base + page * 4096 + ((state >> 32) & 0xff8)) = state */
op_write_pages:
	mov	MC_C_ADDR(%rbx), %r13
	mov	MC_C_LEN(%rbx), %r14
	shr	$12, %r14
	jz	bad_arg
	mov	MC_C_ARG(%rbx), %rcx
	cmp	$MC_LIST_MAX, %rcx
	ja	bad_arg
	mov	MC_C_SEED(%rbx), %r8
	call	xs_init
	mov	%rdx, %r8
	mov	$MC_LIST, %r15
	mov	%rcx, MC_C_RES0(%rbx)
	test	%rcx, %rcx
	jz	op_ok
1:	XORSHIFT %r8
	mov	%r8, %rax
	xor	%edx, %edx
	div	%r14
	mov	%rdx, (%r15)
	add	$8, %r15
	shl	$12, %rdx
	add	%r13, %rdx
	mov	%r8, %rax
	shr	$32, %rax
	and	$0xff8, %eax
	lea	(%rdx, %rax), %rdi
	mov	%r8, (%rdi)
	dec	%rcx
	jnz	1b
	jmp	op_ok

/* ---- CHECKSUM ---------------------------------------------------------- */
op_checksum:
	mov	MC_C_ADDR(%rbx), %rdi
	mov	MC_C_LEN(%rbx), %rcx
	shr	$3, %rcx
	movabs	$MC_FNV_OFFSET, %rax
	movabs	$MC_FNV_PRIME, %r10
	test	%rcx, %rcx
	jz	2f
1:	xor	(%rdi), %rax
	imul	%r10, %rax
	add	$8, %rdi
	dec	%rcx
	jnz	1b
2:	mov	%rax, MC_C_RES0(%rbx)
	jmp	op_ok

/* ---- HANG: a guest that never answers ----------------------------------- */
op_hang:
	pause
	jmp	op_hang

mc_guest_end:

	.section .note.GNU-stack, "", @progbits
