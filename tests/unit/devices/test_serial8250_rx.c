/* serial8250, second half: receive path, loopback, modem and line status
 * interrupts, hostile accesses and concurrency. Same fixture as
 * test_serial8250.c (serial_fixture.c): a fake irq_sink and a pipe as
 * the terminal. */
#include <check.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

#include "../check_main.h"
#include "serial_fixture.h"

START_TEST(rx_fifo_fill_and_overflow)
{
	uint8_t in[200];

	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)i;
	/* FIFO off: a single holding byte, and no overrun: the rest waits. */
	ck_assert_uint_eq(serial8250_rx_space(fx.s), 1);
	ck_assert_uint_eq(serial8250_receive(fx.s, in, 5), 1);
	ck_assert_uint_eq(serial8250_rx_space(fx.s), 0);
	ck_assert_uint_eq(inb(RBR), 0);
	ck_assert_uint_eq(inb(LSR) & 0x03, 0);

	outb(FCR, 0x07);
	size_t cap = serial8250_rx_space(fx.s);
	ck_assert_uint_ge(cap, 16);
	ck_assert_uint_eq(serial8250_receive(fx.s, in, sizeof(in)), cap);
	ck_assert_uint_eq(serial8250_rx_space(fx.s), 0);
	ck_assert_uint_eq(serial8250_receive(fx.s, in, 1), 0);
	for (unsigned i = 0; i < cap; i++) {
		ck_assert_uint_eq(inb(LSR) & 0x03, 0x01); /* DR, never OE */
		ck_assert_uint_eq(inb(RBR), i);
	}
	ck_assert_uint_eq(inb(LSR) & 0x01, 0);
	ck_assert_uint_eq(inb(RBR), cap - 1);    /* empty: last byte again */
	ck_assert_uint_eq(serial8250_rx_space(fx.s), cap);

	ck_assert_uint_eq(serial8250_receive(fx.s, in, 10), 10);
	outb(FCR, 0x03);                          /* clear RX FIFO */
	ck_assert_uint_eq(inb(LSR) & 0x01, 0);
}
END_TEST

/* The guest turns the FIFO off with more queued than a 16450 holds
 * (issue 9 item 6): no room, not 4 billion bytes of it; the queued bytes
 * still drain in order. */
START_TEST(fifo_off_with_bytes_queued)
{
	uint8_t in[20];

	for (unsigned i = 0; i < sizeof(in); i++)
		in[i] = (uint8_t)(0x40 + i);
	outb(FCR, 0x01);
	ck_assert_uint_eq(serial8250_receive(fx.s, in, sizeof(in)), sizeof(in));
	outb(FCR, 0x00);                          /* FIFO off, no clear */
	ck_assert_uint_eq(serial8250_rx_space(fx.s), 0);
	ck_assert_uint_eq(serial8250_receive(fx.s, in, 1), 0);
	for (unsigned i = 0; i < sizeof(in); i++)
		ck_assert_uint_eq(inb(RBR), 0x40 + i);
	ck_assert_uint_eq(serial8250_rx_space(fx.s), 1);
}
END_TEST

/* Linux's open sequence: clear FIFOs (explicit bits), RX interrupt on,
 * then FIFO enable. A byte that arrived in between must survive. */
START_TEST(typeahead_survives_fifo_enable)
{
	uint8_t c = 'e';

	outb(FCR, 0x07);                  /* enable + clear both */
	outb(FCR, 0x00);                  /* FIFO off: room for one byte */
	outb(MCR, 0x0b);
	outb(IER, 0x05);                  /* set_termios: RDI | RLSI ... */
	ck_assert(!serial8250_rx_ready(fx.s));
	outb(LCR, 0x83);                  /* ... then LCR and the divisor */
	ck_assert(serial8250_rx_ready(fx.s));
	outb(LCR, 0x03);
	ck_assert_uint_eq(serial8250_receive(fx.s, &c, 1), 1);
	outb(FCR, 0x01);                  /* FIFO on */
	outb(FCR, 0x81);                  /* trigger level 8 */
	ck_assert_uint_eq(inb(LSR) & 0x01, 0x01);
	ck_assert_uint_eq(inb(RBR), 'e');
	outb(FCR, 0x83);                  /* the explicit clear still clears */
	ck_assert_uint_eq(serial8250_receive(fx.s, &c, 1), 1);
	outb(FCR, 0x83);
	ck_assert_uint_eq(inb(LSR) & 0x01, 0);
}
END_TEST

/* Linux's probe writes IER 0x0f between two reads of IER, then clears the
 * FIFO and reads RBR: a byte handed over in that window would be lost, so
 * the receiver must not count as open. Console writes that save IER, clear
 * it and restore it only pause input; a FIFO clear (close) ends it. */
START_TEST(rx_open_only_after_driver_open)
{
	uint8_t c = 'e';

	ck_assert_uint_eq(inb(IER), 0);
	outb(IER, 0x0f);                   /* autoconfig's IER test */
	ck_assert(!serial8250_rx_ready(fx.s));
	ck_assert_uint_eq(inb(IER), 0x0f);
	ck_assert(!serial8250_rx_ready(fx.s));
	outb(IER, 0x00);
	outb(FCR, 0x07);                   /* its clear_fifos, RBR read */
	inb(RBR);
	ck_assert(!serial8250_rx_ready(fx.s));

	outb(IER, 0x05);                   /* set_termios at open */
	outb(LCR, 0x03);
	ck_assert(serial8250_rx_ready(fx.s));
	outb(IER, 0x00);                   /* console write: paused */
	ck_assert(!serial8250_rx_ready(fx.s));
	ck_assert_uint_eq(serial8250_receive(fx.s, &c, 1), 1); /* still kept */
	outb(IER, 0x05);                   /* restored: open again at once */
	ck_assert(serial8250_rx_ready(fx.s));
	ck_assert_uint_eq(inb(RBR), 'e');

	outb(IER, 0x00);                   /* shutdown: IER off, FIFOs cleared */
	outb(FCR, 0x07);
	outb(IER, 0x05);
	ck_assert(!serial8250_rx_ready(fx.s));
	inb(LSR);
	ck_assert(serial8250_rx_ready(fx.s));
}
END_TEST

START_TEST(rx_interrupt)
{
	uint8_t in[8] = "abcdefgh";

	outb(MCR, 0x0b);
	ck_assert(!serial8250_rx_ready(fx.s)); /* no driver has opened the port */
	outb(IER, 0x01);
	outb(LCR, 0x03);
	ck_assert(serial8250_rx_ready(fx.s));
	ck_assert_int_eq(fx.irq.level, 0);
	ck_assert_uint_eq(serial8250_receive(fx.s, in, 1), 1);
	ck_assert_int_eq(fx.irq.level, 1);
	ck_assert_uint_eq(inb(IIR), 0x04);
	ck_assert_uint_eq(inb(RBR), 'a');
	ck_assert_int_eq(fx.irq.level, 0);
	ck_assert_uint_eq(inb(IIR), 0x01);

	/* Trigger level 8: fewer bytes show as a character timeout. */
	outb(FCR, 0x81);
	ck_assert_uint_eq(serial8250_receive(fx.s, in, 3), 3);
	ck_assert_int_eq(fx.irq.level, 1);
	ck_assert_uint_eq(inb(IIR), 0xcc);
	ck_assert_uint_eq(serial8250_receive(fx.s, in, 5), 5);
	ck_assert_uint_eq(inb(IIR), 0xc4);
	for (int i = 0; i < 8; i++)
		inb(RBR);
	ck_assert_int_eq(fx.irq.level, 0);

	/* Received data outranks THRE. */
	outb(IER, 0x03);
	ck_assert_uint_eq(serial8250_receive(fx.s, in, 1), 1);
	ck_assert_uint_eq(inb(IIR), 0xcc);
	inb(RBR);
	ck_assert_uint_eq(inb(IIR), 0xc2);
}
END_TEST

START_TEST(loopback)
{
	ck_assert(!serial8250_rx_ready(fx.s));
	char buf[8];

	outb(MCR, 0x10);
	ck_assert_uint_eq(inb(MSR), 0x0b);  /* deltas: CTS, DSR, DCD dropped */
	ck_assert_uint_eq(inb(MSR), 0x00);
	outb(MCR, 0x1f);                    /* all outputs -> all inputs */
	ck_assert_uint_eq(inb(MSR) & 0xf0, 0xf0);
	outb(THR, 'L');
	ck_assert_uint_eq(drain(buf, sizeof(buf)), 0);
	ck_assert_int_eq(fx.first_calls, 0);
	ck_assert_uint_eq(inb(LSR) & 0x01, 0x01);
	ck_assert_uint_eq(inb(RBR), 'L');
	/* The line is disconnected: host input waits. */
	ck_assert_uint_eq(serial8250_rx_space(fx.s), 0);
	ck_assert_uint_eq(serial8250_receive(fx.s, (const uint8_t *)"x", 1), 0);
	/* Overrun with the FIFO off: the second byte sets OE. */
	outb(THR, '1');
	outb(THR, '2');
	ck_assert_uint_eq(inb(LSR) & 0x03, 0x03);
	ck_assert_uint_eq(inb(LSR) & 0x03, 0x01); /* OE cleared by the read */
	ck_assert_uint_eq(inb(RBR), '1');
	outb(MCR, 0x03);
	ck_assert_uint_eq(inb(MSR) & 0xf0, 0xb0);
	outb(THR, 'o');
	ck_assert_uint_eq(drain(buf, sizeof(buf)), 1);
	ck_assert_int_eq(fx.first_calls, 1);
}
END_TEST

START_TEST(modem_and_line_status_interrupts)
{
	outb(MCR, 0x18);                    /* loopback, OUT2 */
	inb(MSR);
	outb(IER, 0x08);
	ck_assert_int_eq(fx.irq.level, 0);
	outb(MCR, 0x19);                    /* DTR -> DSR changes */
	ck_assert_int_eq(fx.irq.level, 1);
	ck_assert_uint_eq(inb(IIR), 0x00);
	ck_assert_uint_eq(inb(MSR) & 0x0f, 0x02);
	ck_assert_int_eq(fx.irq.level, 0);

	outb(IER, 0x04);
	outb(THR, 1);
	outb(THR, 2);                       /* overrun */
	ck_assert_int_eq(fx.irq.level, 1);
	ck_assert_uint_eq(inb(IIR), 0x06);
	inb(LSR);
	ck_assert_int_eq(fx.irq.level, 0);
}
END_TEST

START_TEST(odd_access_sizes)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };
	uint64_t v;

	for (unsigned off = 0; off < 8; off++) {
		for (unsigned i = 0; i < 4; i++) {
			unsigned len = sizes[i];
			int want = off + len <= 8 ? 0 : -ENOENT;

			v = 0x5a5a5a5a5a5a5a5aULL;
			ck_assert_int_eq(bus_dispatch(&fx.pio, BASE + off, &v, len, true), want);
			ck_assert_int_eq(bus_dispatch(&fx.pio, BASE + off, &v, len, false), want);
		}
	}
	/* A word write at LCR sets LCR and MCR, as two byte writes would. */
	uint16_t w = 0x0b03;
	ck_assert_int_eq(bus_dispatch(&fx.pio, BASE + LCR, &w, 2, true), 0);
	ck_assert_uint_eq(inb(LCR), 0x03);
	ck_assert_uint_eq(inb(MCR), 0x0b);
	outb(SCR, 0x42);
	ck_assert_uint_eq(inb(SCR), 0x42);
	ck_assert_uint_eq(inb(LSR) & 0x60, 0x60);
}
END_TEST

START_TEST(hostile_register_storm)
{
	uint8_t junk[16];
	unsigned seed = 12345;

	for (int i = 0; i < 200000; i++) {
		unsigned reg = (unsigned)rand_r(&seed) % 8;
		uint8_t v = (uint8_t)rand_r(&seed);

		if (rand_r(&seed) & 1)
			outb(reg, v);
		else
			inb(reg);
		if (i % 97 == 0)
			serial8250_receive(fx.s, junk, (size_t)(rand_r(&seed) % 16));
	}
	while (drain((char *)junk, sizeof(junk)) > 0)
		;
	/* The device still behaves. */
	outb(LCR, 0x03);
	outb(MCR, 0x0b);
	outb(FCR, 0x07);
	outb(SCR, 0x99);
	ck_assert_uint_eq(inb(SCR), 0x99);
	ck_assert_uint_eq(inb(LSR) & 0x61, 0x60);
	ck_assert_uint_le(serial8250_rx_space(fx.s), 64);
}
END_TEST

static void *writer(void *arg)
{
	for (int i = 0; i < 20000; i++)
		outb(THR, (uint8_t)'0' + (uint8_t)(uintptr_t)arg);
	return NULL;
}

/* Two vCPUs writing while the terminal thread feeds input: every byte
 * arrives once, and the callback still fires exactly once. */
START_TEST(concurrent_vcpus_and_terminal)
{
	pthread_t t[2];
	uint8_t in[16] = { 0 };
	char buf[4096];
	size_t got = 0, n;

	outb(MCR, 0x0b);
	outb(IER, 0x03);
	outb(FCR, 0x01);
	for (uintptr_t i = 0; i < 2; i++)
		ck_assert_int_eq(pthread_create(&t[i], NULL, writer, (void *)i), 0);
	for (int i = 0; i < 20000; i++) {
		serial8250_receive(fx.s, in, sizeof(in));
		inb(RBR);
		inb(IIR);
	}
	for (int i = 0; i < 2; i++)
		pthread_join(t[i], NULL);
	while ((n = drain(buf, sizeof(buf))) > 0)
		got += n;
	ck_assert_uint_eq(got, 40000);
	ck_assert_int_eq(fx.first_calls, 1);
}
END_TEST

static Suite *make_suite(void)
{
	Suite *s = suite_create("serial8250_rx");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, serial_fx_setup, serial_fx_teardown);
	tcase_add_test(tc, rx_fifo_fill_and_overflow);
	tcase_add_test(tc, fifo_off_with_bytes_queued);
	tcase_add_test(tc, typeahead_survives_fifo_enable);
	tcase_add_test(tc, rx_open_only_after_driver_open);
	tcase_add_test(tc, rx_interrupt);
	tcase_add_test(tc, loopback);
	tcase_add_test(tc, modem_and_line_status_interrupts);
	tcase_add_test(tc, odd_access_sizes);
	tcase_add_test(tc, hostile_register_storm);
	tcase_add_test(tc, concurrent_vcpus_and_terminal);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(make_suite());
}
