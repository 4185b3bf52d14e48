/* control_port (and the pvpanic port): the events and the exit status count once each, at their
 * offsets, as one-byte writes; everything else the guest writes is
 * ignored. */
#include <check.h>
#include <stdint.h>

#include "kvmini/control_port.h"
#include "kvmini/layout.h"
#include "../check_main.h"
#include "fakes.h"

static struct bus pio;
static struct control_port *cp;
static int events[4], last_status = -1;

static void on_event(void *ctx, enum control_event ev, int status)
{
	ck_assert_ptr_eq(ctx, &pio);
	events[ev]++;
	if (ev == CONTROL_CMD_DONE)
		last_status = status;
}

static void setup(void)
{
	struct control_port_cfg cfg = { .on_event = on_event, .ctx = &pio };
	struct kv_err e = { 0 };

	bus_init(&pio, BUS_PIO);
	events[0] = events[1] = events[2] = events[3] = 0;
	last_status = -1;
	ck_assert_int_eq(control_port_create(&pio, &cfg, &cp, &e), 0);
}

static void teardown(void)
{
	control_port_destroy(cp);
	bus_destroy(&pio);
}

START_TEST(normal_sequence)
{
	int st = -1;

	ck_assert(!control_port_status(cp, &st));
	pio_outb(&pio, PORT_CONTROL + CONTROL_REG_EVENT, CONTROL_EV_USERSPACE_UP);
	pio_outb(&pio, PORT_CONTROL + CONTROL_REG_EVENT, CONTROL_EV_CMD_STARTED);
	pio_outb(&pio, PORT_CONTROL + CONTROL_REG_STATUS, 42);
	ck_assert_int_eq(events[CONTROL_USERSPACE_UP], 1);
	ck_assert_int_eq(events[CONTROL_CMD_STARTED], 1);
	ck_assert_int_eq(events[CONTROL_CMD_DONE], 1);
	ck_assert_int_eq(last_status, 42);
	ck_assert(control_port_status(cp, &st));
	ck_assert_int_eq(st, 42);
	ck_assert_uint_eq(pio_inb(&pio, PORT_CONTROL), 0);
}
END_TEST

START_TEST(statuses_0_and_255)
{
	int st = -1;

	pio_outb(&pio, PORT_CONTROL + CONTROL_REG_STATUS, 0);
	ck_assert(control_port_status(cp, &st));
	ck_assert_int_eq(st, 0);
	teardown();
	setup();
	pio_outb(&pio, PORT_CONTROL + CONTROL_REG_STATUS, 255);
	ck_assert(control_port_status(cp, &st));
	ck_assert_int_eq(st, 255);
}
END_TEST

START_TEST(hostile_writes_ignored)
{
	uint16_t word = 0x0101;
	int st = -1;

	/* Unknown event values, other offsets, a 2-byte write. */
	pio_outb(&pio, PORT_CONTROL + CONTROL_REG_EVENT, 0);
	pio_outb(&pio, PORT_CONTROL + CONTROL_REG_EVENT, 0xff);
	for (unsigned off = 2; off < PORT_CONTROL_LEN; off++)
		pio_outb(&pio, (uint16_t)(PORT_CONTROL + off), 7);
	ck_assert_int_eq(bus_dispatch(&pio, PORT_CONTROL, &word, 2, true), 0);
	ck_assert_int_eq(events[0] + events[1] + events[2], 0);
	ck_assert(!control_port_status(cp, &st));
	/* Repeats: the first event and the first status win. */
	pio_outb(&pio, PORT_CONTROL + CONTROL_REG_EVENT, CONTROL_EV_USERSPACE_UP);
	pio_outb(&pio, PORT_CONTROL + CONTROL_REG_EVENT, CONTROL_EV_USERSPACE_UP);
	pio_outb(&pio, PORT_CONTROL + CONTROL_REG_STATUS, 3);
	pio_outb(&pio, PORT_CONTROL + CONTROL_REG_STATUS, 0);
	ck_assert_int_eq(events[CONTROL_USERSPACE_UP], 1);
	ck_assert_int_eq(events[CONTROL_CMD_DONE], 1);
	ck_assert(control_port_status(cp, &st));
	ck_assert_int_eq(st, 3);
	/* A status before any event still counts (init may skip events). */
	ck_assert_int_eq(events[CONTROL_CMD_STARTED], 0);
}
END_TEST

/* pvpanic: reads offer the PANICKED event; only bit 0 written counts, once. */
START_TEST(pvpanic)
{
	ck_assert_uint_eq(pio_inb(&pio, PORT_PVPANIC), PVPANIC_PANICKED);
	pio_outb(&pio, PORT_PVPANIC, 0);
	pio_outb(&pio, PORT_PVPANIC, 2); /* crash kernel loaded: not a panic */
	ck_assert_int_eq(events[CONTROL_GUEST_PANIC], 0);
	pio_outb(&pio, PORT_PVPANIC, PVPANIC_PANICKED);
	pio_outb(&pio, PORT_PVPANIC, 3);
	ck_assert_int_eq(events[CONTROL_GUEST_PANIC], 1);
	ck_assert_int_eq(events[CONTROL_CMD_DONE], 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("control_port");
	TCase *tc = tcase_create("events");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, normal_sequence);
	tcase_add_test(tc, statuses_0_and_255);
	tcase_add_test(tc, hostile_writes_ignored);
	tcase_add_test(tc, pvpanic);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
