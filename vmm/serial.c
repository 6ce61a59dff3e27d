/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vmm: the 8250/16550A console UART (serial.h). */
#include "config.h"

#include <string.h>
#include <sys/ioctl.h>
#include <linux/kvm.h>

#include "vmm/serial.h"

enum { RBR_THR = 0, IER = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

#define IER_THRI   0x02
#define IIR_NONE   0x01
#define IIR_THRI   0x02
#define IIR_FIFO   0xc0     /* FIFOs enabled: reads as a 16550A */
#define LCR_DLAB   0x80
#define MCR_LOOP   0x10
#define LSR_THRE   0x20
#define LSR_TEMT   0x40

void vmm_serial_init(struct vmm_serial *s, uint16_t base, unsigned irq, int vm_fd,
		     void (*out)(void *data, const char *buf, size_t len), void *data)
{
	memset(s, 0, sizeof(*s));
	s->base = base;
	s->irq = irq;
	s->vm_fd = vm_fd;
	s->line = -1;
	s->out = out;
	s->data = data;
}

/*
 * The transmitter is always empty (bytes leave at once), so the only
 * interrupt is THRI: raised when the driver enables it or writes a byte,
 * cleared when the driver reads IIR and sees it (8250 semantics).
 */
static void update_irq(struct vmm_serial *s)
{
	int level = (s->ier & IER_THRI) && s->thri;
	struct kvm_irq_level il = { .irq = s->irq, .level = (uint32_t)level };

	if (level == s->line)
		return;
	s->line = level;
	if (s->vm_fd >= 0)
		ioctl(s->vm_fd, KVM_IRQ_LINE, &il);
}

/* Loopback mode (used by the driver's probe): modem status mirrors control. */
static uint8_t msr(const struct vmm_serial *s)
{
	uint8_t m = s->mcr, v = 0;

	if (!(m & MCR_LOOP))
		return 0xb0;                 /* DCD, DSR, CTS: a cable is there */
	if (m & 0x01) v |= 0x20;         /* DTR -> DSR */
	if (m & 0x02) v |= 0x10;         /* RTS -> CTS */
	if (m & 0x04) v |= 0x40;         /* OUT1 -> RI */
	if (m & 0x08) v |= 0x80;         /* OUT2 -> DCD */
	return v;
}

void vmm_serial_io(struct vmm_serial *s, unsigned off, uint8_t *data, bool is_write)
{
	bool dlab = s->lcr & LCR_DLAB;

	if (is_write) {
		uint8_t v = *data;

		switch (off) {
		case RBR_THR:
			if (dlab) {
				s->dll = v;
			} else {
				char ch = (char)v;

				if (!(s->mcr & MCR_LOOP) && s->out)
					s->out(s->data, &ch, 1);
				s->thri = true;
			}
			break;
		case IER:
			if (dlab) {
				s->dlm = v;
			} else {
				if ((v & IER_THRI) && !(s->ier & IER_THRI))
					s->thri = true;
				s->ier = v & 0x0f;
			}
			break;
		case IIR_FCR: s->fcr = v; break;
		case LCR: s->lcr = v; break;
		case MCR: s->mcr = v & 0x1f; break;
		case SCR: s->scr = v; break;
		default: break;
		}
	} else {
		uint8_t v = 0;

		switch (off) {
		case RBR_THR: v = dlab ? s->dll : 0; break;
		case IER: v = dlab ? s->dlm : s->ier; break;
		case IIR_FCR:
			v = (s->fcr & 1) ? IIR_FIFO : 0;
			if ((s->ier & IER_THRI) && s->thri) {
				v |= IIR_THRI;
				s->thri = false;
			} else {
				v |= IIR_NONE;
			}
			break;
		case LCR: v = s->lcr; break;
		case MCR: v = s->mcr; break;
		case LSR: v = LSR_THRE | LSR_TEMT; break;
		case MSR: v = msr(s); break;
		case SCR: v = s->scr; break;
		default: break;
		}
		*data = v;
	}
	update_irq(s);
}
