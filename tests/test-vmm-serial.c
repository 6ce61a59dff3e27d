/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * vmm/'s 16550A console UART (serial.c) without KVM: the register
 * semantics Linux's 8250 driver relies on to find and use it (its
 * autoconfig probe: IER, loopback, the FIFO bits of IIR, the scratch
 * register), the THR-empty interrupt's level, the divisor latch, and the
 * output reaching the callback, byte for byte, except in loopback.
 */
#include "config.h"

#include <glib.h>
#include <string.h>

#include "vmm/serial.h"

enum { THR = 0, IER = 1, IIR = 2, FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

struct out {
	GString *s;
	unsigned calls;
};

static void out_fn(void *data, const char *buf, size_t len)
{
	struct out *o = data;

	g_string_append_len(o->s, buf, (gssize)len);
	o->calls++;
}

static uint8_t rd(struct vmm_serial *s, unsigned off)
{
	uint8_t v = 0x5a;

	vmm_serial_io(s, off, &v, false);
	return v;
}

static void wr(struct vmm_serial *s, unsigned off, uint8_t v)
{
	vmm_serial_io(s, off, &v, true);
}

static void open_uart(struct vmm_serial *s, struct out *o)
{
	o->s = g_string_new("");
	o->calls = 0;
	vmm_serial_init(s, 0x3f8, 4, -1, out_fn, o);    /* no VM: the level is only recorded */
}

/* What drivers/tty/serial/8250/8250_port.c autoconfig() does, and must conclude: a 16550A. */
static void test_probe(void)
{
	struct vmm_serial s;
	struct out o;

	open_uart(&s, &o);
	/* IER: the low nibble holds what is written. */
	wr(&s, IER, 0);
	g_assert_cmphex(rd(&s, IER) & 0x0f, ==, 0);
	wr(&s, IER, 0x0f);
	g_assert_cmphex(rd(&s, IER) & 0x0f, ==, 0x0f);
	wr(&s, IER, 0xff);
	g_assert_cmphex(rd(&s, IER), ==, 0x0f);
	wr(&s, IER, 0);
	/* Loopback: MCR's RTS and OUT2 come back as CTS and DCD. */
	wr(&s, MCR, 0x10 | 0x0a);
	g_assert_cmphex(rd(&s, MSR) & 0xf0, ==, 0x90);
	wr(&s, MCR, 0x10 | 0x05);                        /* DTR, OUT1 -> DSR, RI */
	g_assert_cmphex(rd(&s, MSR) & 0xf0, ==, 0x60);
	wr(&s, MCR, 0);
	g_assert_cmphex(rd(&s, MSR), ==, 0xb0);          /* a cable: DCD, DSR, CTS */
	/* FIFOs enabled: IIR's top bits read 3, a 16550A. */
	wr(&s, FCR, 0x01);
	g_assert_cmphex(rd(&s, IIR) >> 6, ==, 3);
	wr(&s, FCR, 0);
	g_assert_cmphex(rd(&s, IIR) >> 6, ==, 0);
	/* The scratch register holds a byte. */
	for (unsigned v = 0; v < 256; v += 0x55) {
		wr(&s, SCR, (uint8_t)v);
		g_assert_cmphex(rd(&s, SCR), ==, v);
	}
	/* The transmitter is always empty. */
	g_assert_cmphex(rd(&s, LSR), ==, 0x60);
	g_assert_cmpuint(o.calls, ==, 0);
	g_string_free(o.s, TRUE);
}

/* Bytes written to THR leave at once, in order; in loopback mode none do. */
static void test_output(void)
{
	const char *msg = "Linux version 6.12\r\nMC: end\n";
	struct vmm_serial s;
	struct out o;

	open_uart(&s, &o);
	for (const char *p = msg; *p; p++) {
		g_assert_cmphex(rd(&s, LSR) & 0x20, ==, 0x20);
		wr(&s, THR, (uint8_t)*p);
	}
	g_assert_cmpstr(o.s->str, ==, msg);
	wr(&s, MCR, 0x10);
	wr(&s, THR, 'x');
	wr(&s, MCR, 0);
	wr(&s, THR, 0);                          /* a NUL is a byte too */
	g_assert_cmpuint(o.s->len, ==, strlen(msg) + 1);
	g_assert_cmpuint(o.s->str[strlen(msg)], ==, 0);
	/* Reads of the receive buffer: nothing ever arrives. */
	g_assert_cmphex(rd(&s, THR), ==, 0);
	g_assert_cmphex(rd(&s, LSR) & 0x01, ==, 0);
	g_string_free(o.s, TRUE);
}

/* With DLAB set, offsets 0 and 1 are the divisor; THR writes set it and print nothing. */
static void test_divisor_latch(void)
{
	struct vmm_serial s;
	struct out o;

	open_uart(&s, &o);
	wr(&s, IER, 0x05);
	wr(&s, LCR, 0x83);                       /* DLAB, 8 bits */
	wr(&s, THR, 0x01);                       /* 115200 baud */
	wr(&s, IER, 0x00);
	g_assert_cmphex(rd(&s, THR), ==, 0x01);
	g_assert_cmphex(rd(&s, IER), ==, 0x00);
	g_assert_cmphex(rd(&s, LCR), ==, 0x83);
	wr(&s, LCR, 0x03);
	g_assert_cmphex(rd(&s, IER), ==, 0x05);  /* IER was kept apart */
	g_assert_cmpuint(o.calls, ==, 0);
	wr(&s, LCR, 0x83);
	g_assert_cmphex(rd(&s, THR), ==, 0x01);  /* and the divisor */
	g_string_free(o.s, TRUE);
}

/*
 * THRI: raised when the driver enables it or writes a byte, the line level
 * following IER; cleared when the driver reads IIR and sees it.
 */
static void test_thr_interrupt(void)
{
	struct vmm_serial s;
	struct out o;

	open_uart(&s, &o);
	wr(&s, FCR, 0x01);
	g_assert_cmphex(rd(&s, IIR), ==, 0xc1);          /* nothing pending */
	g_assert_cmpint(s.line, ==, 0);
	wr(&s, IER, 0x02);                               /* enable THRI: the THR is empty */
	g_assert_cmpint(s.line, ==, 1);
	g_assert_cmphex(rd(&s, IIR), ==, 0xc2);          /* THRI, and the read clears it */
	g_assert_cmpint(s.line, ==, 0);
	g_assert_cmphex(rd(&s, IIR), ==, 0xc1);
	wr(&s, THR, 'a');                                /* the byte left: empty again */
	g_assert_cmpint(s.line, ==, 1);
	wr(&s, IER, 0);                                  /* masked: the line drops, still pending */
	g_assert_cmpint(s.line, ==, 0);
	g_assert_cmphex(rd(&s, IIR), ==, 0xc1);
	wr(&s, IER, 0x02);
	g_assert_cmpint(s.line, ==, 1);
	g_assert_cmphex(rd(&s, IIR), ==, 0xc2);
	wr(&s, IER, 0x02);                               /* enabled already: no new edge */
	g_assert_cmpint(s.line, ==, 0);
	g_assert_cmphex(rd(&s, IIR), ==, 0xc1);
	g_string_free(o.s, TRUE);
}

/* Offsets past the eight registers: reads give 0, writes change nothing. */
static void test_bad_offsets(void)
{
	struct vmm_serial s, before;
	struct out o;

	open_uart(&s, &o);
	wr(&s, SCR, 0x42);
	memcpy(&before, &s, sizeof(s));
	for (unsigned off = 8; off < 300; off += 7) {
		g_assert_cmphex(rd(&s, off), ==, 0);
		wr(&s, off, 0xff);
	}
	g_assert_cmpint(memcmp(&s, &before, sizeof(s)), ==, 0);
	g_assert_cmpuint(o.calls, ==, 0);
	g_string_free(o.s, TRUE);
}

int main(int argc, char **argv)
{
	g_test_init(&argc, &argv, NULL);
	g_test_add_func("/vmm/serial/probe", test_probe);
	g_test_add_func("/vmm/serial/output", test_output);
	g_test_add_func("/vmm/serial/divisor-latch", test_divisor_latch);
	g_test_add_func("/vmm/serial/thr-interrupt", test_thr_interrupt);
	g_test_add_func("/vmm/serial/bad-offsets", test_bad_offsets);
	return g_test_run();
}
