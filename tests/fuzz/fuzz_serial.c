/* Fuzz target: the 8250/16550A register interface (devices/serial8250.c)
 * through the real PIO bus: a sequence of port reads and writes (any
 * width, including the unclaimed neighbours) interleaved with input from
 * the terminal side. The interrupt sink checks the device's promise to
 * report level changes only. */
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "kvmini/serial8250.h"
#include "kvmini/layout.h"
#include "fuzz_common.h"

#define BASE PORT_COM1

static int devnull = -1;
static int level;

static int sink_set_level(void *ctx, unsigned gsi, int l)
{
	FUZZ_CHECK(l == 0 || l == 1);
	FUZZ_CHECK(l != level);
	level = l;
	return 0;
}

static const struct irq_sink sink = { sink_set_level, NULL };

void fuzz_init(void)
{
	devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (devnull < 0)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz f = { data, size };
	struct serial8250_cfg cfg = { .base = BASE, .gsi = GSI_COM1, .irq = &sink,
				      .out_fd = devnull };
	struct kv_err e = { 0 };
	struct serial8250 *s;
	struct bus pio;

	level = 0;
	bus_init(&pio, BUS_PIO);
	if (serial8250_create(&pio, &cfg, &s, &e))
		abort();
	for (unsigned steps = 0; !fz_empty(&f) && steps < 4096; steps++) {
		uint8_t op = fz_u8(&f);
		unsigned len = 1u << (op >> 2 & 3);   /* 1, 2, 4, 8 */
		uint64_t port = BASE - 1 + fz_u8(&f) % 10;
		uint64_t v = 0;

		switch (op & 3) {
		case 0:
			bus_dispatch(&pio, port, &v, len, false);
			break;
		case 1:
			v = fz_u8(&f);
			bus_dispatch(&pio, port, &v, len, true);
			break;
		case 2: {
			uint8_t in[80];
			size_t n = fz_bytes(&f, in, fz_u8(&f) % sizeof(in));
			size_t space = serial8250_rx_space(s);
			size_t took = serial8250_receive(s, in, n);

			/* 64: the 16550A's FIFO, the most a UART ever holds. */
			FUZZ_CHECK(space <= 64);
			FUZZ_CHECK(took <= n && took <= space);
			break;
		}
		case 3:
			serial8250_rx_ready(s);
			break;
		}
	}
	serial8250_destroy(s);
	bus_destroy(&pio);
	return 0;
}

void fuzz_write_seeds(const char *dir)
{
	/* Linux's probe and console setup: LCR DLAB, divisor, 8N1, FIFO on,
	 * IER, a few bytes out, input in, reads of IIR/LSR/RBR. */
	static const uint8_t init[] = {
		1, 4, 0x80,   1, 1, 0x01,   1, 2, 0x00,   1, 4, 0x03,
		1, 3, 0xc7,   1, 5, 0x0b,   1, 2, 0x0f,
		1, 1, 'h',    1, 1, 'i',    0, 6,   0, 3,
		2, 0, 5, 'a', 'b', 'c', 'd', 'e',
		0, 3,  0, 6,  0, 1,  0, 1,  0, 6,  0, 3,  3, 0,
		1, 5, 0x1b,   1, 1, 'x',   0, 1,  0, 7,
	};
	static const uint8_t scratch[] = { 1, 8, 0x5a, 0, 8, 4, 8, 0, 9 };

	fuzz_seed(dir, "linux_init", init, sizeof(init));
	fuzz_seed(dir, "scratch", scratch, sizeof(scratch));
}
