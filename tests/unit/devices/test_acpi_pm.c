/* acpi_pm: the byte sequences ACPICA writes for S5 and for reset. */
#include <check.h>
#include <errno.h>

#include "kvmini/acpi_pm.h"
#include "kvmini/layout.h"
#include "../check_main.h"
#include "fakes.h"

/* ACPICA's names and its expression in acpi_hw_extended_sleep. */
#define ACPI_X_WAKE_STATUS         0x80
#define ACPI_X_SLEEP_TYPE_MASK     0x1c
#define ACPI_X_SLEEP_TYPE_POSITION 0x02
#define ACPI_X_SLEEP_ENABLE        0x20
#define SLEEP_CONTROL(typ) \
	((uint8_t)((((typ) << ACPI_X_SLEEP_TYPE_POSITION) & ACPI_X_SLEEP_TYPE_MASK) | ACPI_X_SLEEP_ENABLE))

static struct bus pio;
static struct acpi_pm *pm;
static struct fake_stop stops;

static void setup(void)
{
	struct vm_stopper stop = fake_stopper(&stops);
	struct kv_err e = { 0 };

	bus_init(&pio, BUS_PIO);
	ck_assert_int_eq(acpi_pm_create(&pio, &stop, &pm, &e), 0);
}

static void teardown(void)
{
	acpi_pm_destroy(pm);
	bus_destroy(&pio);
}

static uint8_t inb(uint16_t port)
{
	return pio_inb(&pio, port);
}

static void outb(uint16_t port, uint8_t v)
{
	pio_outb(&pio, port, v);
}

START_TEST(s5_powers_off)
{
	outb(PORT_ACPI_SLEEP + 1, ACPI_X_WAKE_STATUS);
	ck_assert_int_eq(stops.poweroffs, 0);
	ck_assert_uint_eq(SLEEP_CONTROL(5), 0x34);
	outb(PORT_ACPI_SLEEP, SLEEP_CONTROL(5));
	ck_assert_int_eq(stops.poweroffs, 1);
	ck_assert_int_eq(stops.resets, 0);
	/* ACPICA then spins on WAK_STS, which never comes. */
	ck_assert_uint_eq(inb(PORT_ACPI_SLEEP + 1) & ACPI_X_WAKE_STATUS, 0);
}
END_TEST

START_TEST(other_sleep_types_ignored)
{
	for (unsigned typ = 0; typ < 8; typ++) {
		if (typ == 5)
			continue;
		outb(PORT_ACPI_SLEEP, SLEEP_CONTROL(typ));
	}
	/* SLP_TYP 5 without SLP_EN only selects the type. */
	outb(PORT_ACPI_SLEEP, 5 << ACPI_X_SLEEP_TYPE_POSITION);
	ck_assert_uint_eq(inb(PORT_ACPI_SLEEP), 5 << ACPI_X_SLEEP_TYPE_POSITION);
	/* Bits outside SLP_TYP/SLP_EN do not turn a write into S5. */
	outb(PORT_ACPI_SLEEP, 0xc3 | (4 << 2) | ACPI_X_SLEEP_ENABLE);
	ck_assert_int_eq(stops.poweroffs, 0);
	ck_assert_int_eq(stops.resets, 0);
	/* SLP_EN reads back as 0. */
	ck_assert_uint_eq(inb(PORT_ACPI_SLEEP) & ACPI_X_SLEEP_ENABLE, 0);
	outb(PORT_ACPI_SLEEP, 0xff & ~0x1c);  /* other bits around type 0 */
	outb(PORT_ACPI_SLEEP, 0xff);          /* type 7, enabled */
	ck_assert_int_eq(stops.poweroffs, 0);
}
END_TEST

START_TEST(word_write_covers_both_registers)
{
	uint16_t w = (uint16_t)(ACPI_X_WAKE_STATUS << 8 | SLEEP_CONTROL(5));

	ck_assert_int_eq(bus_dispatch(&pio, PORT_ACPI_SLEEP, &w, 2, true), 0);
	ck_assert_int_eq(stops.poweroffs, 1);
	ck_assert_int_eq(bus_dispatch(&pio, PORT_ACPI_SLEEP, &w, 2, false), 0);
	ck_assert_uint_eq(w, 5 << ACPI_X_SLEEP_TYPE_POSITION);
}
END_TEST

START_TEST(reset_register)
{
	ck_assert_uint_eq(inb(PORT_ACPI_RESET), 0);
	for (unsigned v = 0; v < 256; v++)
		if (v != ACPI_RESET_VALUE)
			outb(PORT_ACPI_RESET, (uint8_t)v);
	ck_assert_int_eq(stops.resets, 0);
	outb(PORT_ACPI_RESET, ACPI_RESET_VALUE);
	ck_assert_int_eq(stops.resets, 1);
	ck_assert_int_eq(stops.poweroffs, 0);
}
END_TEST

START_TEST(no_stopper_is_fine)
{
	struct bus b;
	struct acpi_pm *a;
	uint8_t v = SLEEP_CONTROL(5);

	bus_init(&b, BUS_PIO);
	ck_assert_int_eq(acpi_pm_create(&b, NULL, &a, NULL), 0);
	ck_assert_int_eq(bus_dispatch(&b, PORT_ACPI_SLEEP, &v, 1, true), 0);
	v = ACPI_RESET_VALUE;
	ck_assert_int_eq(bus_dispatch(&b, PORT_ACPI_RESET, &v, 1, true), 0);
	acpi_pm_destroy(a);
	bus_destroy(&b);
}
END_TEST

START_TEST(hostile_sizes_and_ports)
{
	static const unsigned sizes[] = { 1, 2, 4, 8 };

	for (uint16_t port = PORT_ACPI_SLEEP - 1; port <= PORT_ACPI_RESET + 1; port++) {
		for (unsigned i = 0; i < 4; i++) {
			uint64_t v = 0;  /* never a poweroff or reset value */
			int claimed = (port >= PORT_ACPI_SLEEP && port + sizes[i] <= PORT_ACPI_SLEEP + 2) ||
				      (port == PORT_ACPI_RESET && sizes[i] == 1);

			ck_assert_int_eq(bus_dispatch(&pio, port, &v, sizes[i], true), claimed ? 0 : -ENOENT);
			ck_assert_int_eq(bus_dispatch(&pio, port, &v, sizes[i], false), claimed ? 0 : -ENOENT);
		}
	}
	ck_assert_int_eq(stops.poweroffs + stops.resets, 0);
	outb(PORT_ACPI_SLEEP, SLEEP_CONTROL(5));
	ck_assert_int_eq(stops.poweroffs, 1);
}
END_TEST

static Suite *acpi_suite(void)
{
	Suite *s = suite_create("acpi_pm");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, s5_powers_off);
	tcase_add_test(tc, other_sleep_types_ignored);
	tcase_add_test(tc, word_write_covers_both_registers);
	tcase_add_test(tc, reset_register);
	tcase_add_test(tc, no_stopper_is_fine);
	tcase_add_test(tc, hostile_sizes_and_ports);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(acpi_suite());
}
