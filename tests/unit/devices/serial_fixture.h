/* The fixture of both serial8250 suites (test_serial8250.c and
 * test_serial8250_rx.c): COM1 on a PIO bus of its own, a fake irq_sink,
 * and a non-blocking pipe as the terminal. */
#ifndef KVMINI_TEST_SERIAL_FIXTURE_H
#define KVMINI_TEST_SERIAL_FIXTURE_H

#include <stddef.h>
#include <stdint.h>

#include "kvmini/serial8250.h"
#include "kvmini/layout.h"
#include "fakes.h"

#define BASE PORT_COM1
enum { RBR, IER, IIR, LCR, MCR, LSR, MSR, SCR };
#define FCR IIR
#define THR RBR

struct serial_fixture {
	struct bus pio;
	struct serial8250 *s;
	struct fake_irq irq;
	struct irq_sink sink;
	int pipefd[2];          /* [1] is the device's out_fd */
	int first_calls;        /* on_first_byte callbacks so far */
};

/* Set up afresh for each test by serial_fx_setup (in the test's forked
 * child, as tcase_add_checked_fixture runs it). */
extern struct serial_fixture fx;

void serial_fx_setup(void);
void serial_fx_teardown(void);

/* One-byte IN/OUT of UART register @reg; each asserts the port is claimed. */
uint8_t inb(unsigned reg);
void outb(unsigned reg, uint8_t v);
/* Reads what the device wrote to the terminal so far (up to @cap bytes). */
size_t drain(char *buf, size_t cap);

#endif
