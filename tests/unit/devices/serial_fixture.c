#include <check.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "serial_fixture.h"

struct serial_fixture fx;

static void first_byte(void *ctx)
{
	__atomic_add_fetch((int *)ctx, 1, __ATOMIC_SEQ_CST);
}

void serial_fx_setup(void)
{
	struct serial8250_cfg cfg;
	struct kv_err e = { 0 };

	memset(&fx, 0, sizeof(fx));
	bus_init(&fx.pio, BUS_PIO);
	ck_assert_int_eq(pipe2(fx.pipefd, O_NONBLOCK), 0);
	fx.sink = fake_irq_sink(&fx.irq);
	cfg = (struct serial8250_cfg){ .base = BASE, .gsi = GSI_COM1, .irq = &fx.sink,
				       .out_fd = fx.pipefd[1], .on_first_byte = first_byte,
				       .ctx = &fx.first_calls };
	ck_assert_int_eq(serial8250_create(&fx.pio, &cfg, &fx.s, &e), 0);
}

void serial_fx_teardown(void)
{
	serial8250_destroy(fx.s);
	bus_destroy(&fx.pio);
	close(fx.pipefd[0]);
	close(fx.pipefd[1]);
}

uint8_t inb(unsigned reg)
{
	return pio_inb(&fx.pio, (uint16_t)(BASE + reg));
}

void outb(unsigned reg, uint8_t v)
{
	pio_outb(&fx.pio, (uint16_t)(BASE + reg), v);
}

size_t drain(char *buf, size_t cap)
{
	ssize_t n = read(fx.pipefd[0], buf, cap);

	return n < 0 ? 0 : (size_t)n;
}
