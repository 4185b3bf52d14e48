#include <check.h>
#include <string.h>

#include "fakes.h"

static int fake_set_level(void *ctx, unsigned gsi, int level)
{
	struct fake_irq *f = ctx;

	f->gsi = gsi;
	/* The device promises to report changes only. */
	ck_assert_int_ne(level, f->level);
	f->level = level;
	if (level)
		f->raises++;
	else
		f->lowers++;
	return 0;
}

struct irq_sink fake_irq_sink(struct fake_irq *f)
{
	memset(f, 0, sizeof(*f));
	return (struct irq_sink){ fake_set_level, f };
}

static void fake_request_stop(void *ctx, enum vm_stop_cause why)
{
	struct fake_stop *f = ctx;

	if (why == STOP_RESET)
		f->resets++;
	else
		f->poweroffs++;
}

struct vm_stopper fake_stopper(struct fake_stop *f)
{
	memset(f, 0, sizeof(*f));
	return (struct vm_stopper){ fake_request_stop, f };
}

uint8_t pio_inb(struct bus *pio, uint16_t port)
{
	uint8_t v = 0;

	ck_assert_int_eq(bus_dispatch(pio, port, &v, 1, false), 0);
	return v;
}

void pio_outb(struct bus *pio, uint16_t port, uint8_t v)
{
	ck_assert_int_eq(bus_dispatch(pio, port, &v, 1, true), 0);
}
