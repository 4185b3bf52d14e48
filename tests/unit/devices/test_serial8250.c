/* serial8250: driven through the PIO bus the way Linux's 8250 driver
 * drives it, with a fake irq_sink and a pipe as the terminal. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "../check_main.h"
#include "serial_fixture.h"

START_TEST(scratch_register)
{
	for (unsigned v = 0; v < 256; v++) {
		outb(SCR, (uint8_t)v);
		ck_assert_uint_eq(inb(SCR), v);
	}
}
END_TEST

START_TEST(divisor_latch_round_trip)
{
	outb(IER, 0x05);
	outb(LCR, 0x83);
	outb(RBR, 0x34);
	outb(IER, 0x12);
	ck_assert_uint_eq(inb(RBR), 0x34);
	ck_assert_uint_eq(inb(IER), 0x12);
	ck_assert_uint_eq(inb(LCR), 0x83);
	outb(LCR, 0x03);
	ck_assert_uint_eq(inb(IER), 0x05); /* the real IER is back */
	outb(LCR, 0x83);
	ck_assert_uint_eq(inb(RBR), 0x34);
	ck_assert_uint_eq(inb(IER), 0x12);
}
END_TEST

START_TEST(thr_bytes_reach_out_fd)
{
	const char *msg = "Linux version 6.1\r\n";
	char buf[64];

	for (const char *p = msg; *p; p++)
		outb(THR, (uint8_t)*p);
	ck_assert_uint_eq(drain(buf, sizeof(buf)), strlen(msg));
	ck_assert_mem_eq(buf, msg, strlen(msg));
	ck_assert_int_eq(fx.first_calls, 1);
}
END_TEST

START_TEST(lsr_bits)
{
	uint8_t b = 'a';

	ck_assert_uint_eq(inb(LSR), 0x60); /* THRE | TEMT, no data */
	outb(THR, 'x');
	ck_assert_uint_eq(inb(LSR), 0x60); /* transmission is instantaneous */
	ck_assert_uint_eq(serial8250_receive(fx.s, &b, 1), 1);
	ck_assert_uint_eq(inb(LSR), 0x61);
	ck_assert_uint_eq(inb(RBR), 'a');
	ck_assert_uint_eq(inb(LSR), 0x60);
	outb(LSR, 0x00);                   /* read-only: ignored */
	ck_assert_uint_eq(inb(LSR), 0x60);
}
END_TEST

START_TEST(msr_without_loopback)
{
	ck_assert_uint_eq(inb(MSR), 0xb0); /* DCD | DSR | CTS, no deltas */
	outb(MSR, 0x00);
	ck_assert_uint_eq(inb(MSR), 0xb0);
}
END_TEST

START_TEST(thre_interrupt)
{
	outb(IER, 0x02);                    /* THRI without OUT2: no line */
	ck_assert_int_eq(fx.irq.level, 0);
	ck_assert_uint_eq(inb(IIR) & 0x0f, 0x02);
	ck_assert_uint_eq(inb(IIR) & 0x0f, 0x01); /* IIR read acknowledged it */
	outb(IER, 0x00);

	outb(MCR, 0x0b);                    /* DTR | RTS | OUT2, as Linux */
	ck_assert_int_eq(fx.irq.level, 0);
	outb(IER, 0x02);
	ck_assert_int_eq(fx.irq.level, 1);
	ck_assert_uint_eq(fx.irq.gsi, GSI_COM1);
	ck_assert_uint_eq(inb(IIR), 0x02);  /* no FIFO yet: bits 7:6 clear */
	ck_assert_int_eq(fx.irq.level, 0);
	ck_assert_uint_eq(inb(IIR), 0x01);

	/* Each byte written re-arms THRE: the line toggles, one edge per byte. */
	int raises = fx.irq.raises;
	outb(THR, 'a');
	ck_assert_int_eq(fx.irq.level, 1);
	outb(THR, 'b');
	ck_assert_int_eq(fx.irq.raises, raises + 2);
	ck_assert_int_eq(fx.irq.level, 1);

	outb(IER, 0x00);
	ck_assert_int_eq(fx.irq.level, 0);
	outb(MCR, 0x03);                    /* OUT2 off gates the line */
	outb(IER, 0x02);
	ck_assert_int_eq(fx.irq.level, 0);
	outb(MCR, 0x0b);
	ck_assert_int_eq(fx.irq.level, 1);
}
END_TEST

/* serial8250_do_startup's check that THRE is re-asserted after an
 * IER toggle; failing it makes Linux fall back to a polling timer. */
START_TEST(linux_thre_retest)
{
	uint8_t iir1, iir;

	outb(MCR, 0x0b);
	outb(IER, 0x02);
	iir1 = inb(IIR);
	outb(IER, 0x00);
	outb(IER, 0x02);
	iir = inb(IIR);
	outb(IER, 0x00);
	ck_assert_uint_eq(iir1 & 0x01, 0);
	ck_assert_uint_eq(iir & 0x01, 0);
	ck_assert_int_eq(fx.irq.level, 0);
}
END_TEST

START_TEST(linux_autoconfig)
{
	outb(IER, 0x00);
	ck_assert_uint_eq(inb(IER) & 0x0f, 0x00);
	outb(IER, 0x0f);
	ck_assert_uint_eq(inb(IER) & 0x0f, 0x0f);
	outb(IER, 0x40);                    /* XScale UUE bit does not stick */
	ck_assert_uint_eq(inb(IER), 0x00);
	outb(MCR, 0x10 | 0x0a);             /* loopback with RTS and OUT2 */
	ck_assert_uint_eq(inb(MSR) & 0xf0, 0x90);
	outb(MCR, 0x00);
	outb(LCR, 0xbf);
	outb(FCR, 0x00);                    /* EFR write lands on FCR */
	outb(LCR, 0x00);
	outb(FCR, 0x01);
	ck_assert_uint_eq(inb(IIR) >> 6, 3); /* 16550A */
	outb(FCR, 0x01 | 0x20);             /* 16750 64-byte FIFO bit */
	ck_assert_uint_eq((inb(IIR) >> 5) & 1, 0);
}
END_TEST

START_TEST(iir_fifo_bits)
{
	ck_assert_uint_eq(inb(IIR), 0x01);
	outb(FCR, 0x01);
	ck_assert_uint_eq(inb(IIR), 0xc1);
	outb(FCR, 0x81);
	ck_assert_uint_eq(inb(IIR), 0xc1);
	outb(FCR, 0x00);
	ck_assert_uint_eq(inb(IIR), 0x01);
}
END_TEST

START_TEST(first_byte_callback_once)
{
	char buf[16];

	for (int i = 0; i < 10; i++)
		outb(THR, 'z');
	ck_assert_int_eq(fx.first_calls, 1);
	ck_assert_uint_eq(drain(buf, sizeof(buf)), 10);
}
END_TEST

START_TEST(output_full_or_closed_drops)
{
	char big[70000];
	size_t got = 0, n;

	/* A full non-blocking pipe: bytes are dropped, the vCPU goes on. */
	for (unsigned i = 0; i < sizeof(big); i++)
		outb(THR, 'q');
	while ((n = drain(big, sizeof(big))) > 0)
		got += n;
	ck_assert_uint_lt(got, sizeof(big));
	ck_assert_uint_gt(got, 0);
	/* A bad descriptor: logged once, then ignored. */
	close(fx.pipefd[1]);
	fx.pipefd[1] = open("/dev/null", O_RDONLY);
	outb(THR, 'a');
	outb(THR, 'b');
	ck_assert_uint_eq(inb(LSR), 0x60);
}
END_TEST

START_TEST(com2_to_com4_are_not_ours)
{
	static const uint16_t ports[] = { 0x2f8, 0x3e8, 0x2e8 };
	uint8_t v;

	for (unsigned i = 0; i < 3; i++) {
		ck_assert_int_eq(bus_dispatch(&fx.pio, ports[i] + 1, &v, 1, false), -ENOENT);
		ck_assert_uint_eq(v, 0xff);
	}
}
END_TEST

static Suite *make_suite(void)
{
	Suite *s = suite_create("serial8250");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, serial_fx_setup, serial_fx_teardown);
	tcase_add_test(tc, scratch_register);
	tcase_add_test(tc, divisor_latch_round_trip);
	tcase_add_test(tc, thr_bytes_reach_out_fd);
	tcase_add_test(tc, lsr_bits);
	tcase_add_test(tc, msr_without_loopback);
	tcase_add_test(tc, thre_interrupt);
	tcase_add_test(tc, linux_thre_retest);
	tcase_add_test(tc, linux_autoconfig);
	tcase_add_test(tc, iir_fifo_bits);
	tcase_add_test(tc, first_byte_callback_once);
	tcase_add_test(tc, output_full_or_closed_drops);
	tcase_add_test(tc, com2_to_com4_are_not_ours);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(make_suite());
}
