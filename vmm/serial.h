/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmm: a 16550A UART at a legacy port base, enough for Linux's 8250
 * driver to detect it and use it as the console. Output goes to a
 * callback; the guest never gets input. The interrupt line is
 * level-driven through KVM_IRQ_LINE on the in-kernel PIC (no VM, vm_fd
 * -1: no interrupt).
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct vmm_serial {
	uint16_t base;
	unsigned irq;
	int vm_fd;
	uint8_t ier, lcr, mcr, scr, dll, dlm, fcr;
	bool thri;          /* "transmitter empty" interrupt pending */
	int line;           /* last level given to KVM (-1 unknown) */
	void (*out)(void *data, const char *buf, size_t len);
	void *data;
};

void vmm_serial_init(struct vmm_serial *s, uint16_t base, unsigned irq, int vm_fd,
		     void (*out)(void *data, const char *buf, size_t len), void *data);
/* One byte access at port base + off (0..7; others read 0, writes ignored). */
void vmm_serial_io(struct vmm_serial *s, unsigned off, uint8_t *data, bool is_write);
