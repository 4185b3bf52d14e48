/* legacy_misc, plus all legacy devices together on one bus, as the VM
 * builds them. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/acpi_pm.h"
#include "kvmini/cmos_rtc.h"
#include "kvmini/i8042.h"
#include "kvmini/legacy_misc.h"
#include "kvmini/pci_root.h"
#include "kvmini/serial8250.h"
#include "kvmini/layout.h"
#include "../check_main.h"
#include "fakes.h"

START_TEST(delay_ports_swallowed)
{
	static const uint16_t ports[] = { PORT_POST, 0xed };
	struct legacy_misc *m;
	struct kv_err e = { 0 };
	struct bus pio;

	bus_init(&pio, BUS_PIO);
	ck_assert_int_eq(legacy_misc_create(&pio, &m, &e), 0);
	for (unsigned i = 0; i < 2; i++) {
		for (unsigned v = 0; v < 256; v++) {
			uint8_t b = (uint8_t)v;
			ck_assert_int_eq(bus_dispatch(&pio, ports[i], &b, 1, true), 0);
			ck_assert_int_eq(bus_dispatch(&pio, ports[i], &b, 1, false), 0);
			ck_assert_uint_eq(b, 0xff);
		}
		/* Wider accesses run into ports that are not ours. */
		uint64_t q = 0;
		ck_assert_int_eq(bus_dispatch(&pio, ports[i], &q, 2, true), -ENOENT);
		ck_assert_int_eq(bus_dispatch(&pio, ports[i], &q, 8, false), -ENOENT);
	}
	ck_assert_uint_eq(pio.unclaimed, 4);
	legacy_misc_destroy(m);
	bus_destroy(&pio);
}
END_TEST

START_TEST(in_kernel_ports_left_alone)
{
	/* KVM_CREATE_IRQCHIP / KVM_CREATE_PIT2 own these; 0x87 must read
	 * 0xff so Linux's i8237 probe sees no DMA controller. */
	static const uint16_t ports[] = { 0x20, 0x21, 0xa0, 0xa1, 0x4d0, 0x4d1,
					  0x40, 0x41, 0x42, 0x43, 0x61, 0x87 };
	struct legacy_misc *m;
	struct bus pio;

	bus_init(&pio, BUS_PIO);
	ck_assert_int_eq(legacy_misc_create(&pio, &m, NULL), 0);
	for (unsigned i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
		uint8_t b = 0;
		ck_assert_int_eq(bus_dispatch(&pio, ports[i], &b, 1, false), -ENOENT);
		ck_assert_uint_eq(b, 0xff);
	}
	legacy_misc_destroy(m);
	bus_destroy(&pio);
}
END_TEST

/* Every device registers on one bus without overlap, and a second
 * instance of any of them is refused with -EEXIST and a message. */
START_TEST(all_devices_on_one_bus)
{
	struct fake_stop stops;
	struct vm_stopper stop = fake_stopper(&stops);
	struct serial8250_cfg cfg = { .base = PORT_COM1, .gsi = GSI_COM1, .out_fd = -1 };
	struct serial8250 *s, *s2;
	struct i8042 *k, *k2;
	struct cmos_rtc *r, *r2;
	struct legacy_misc *m, *m2;
	struct pci_root *p, *p2;
	struct acpi_pm *a, *a2;
	struct kv_err e = { 0 };
	struct bus pio;

	bus_init(&pio, BUS_PIO);
	ck_assert_int_eq(serial8250_create(&pio, &cfg, &s, &e), 0);
	ck_assert_int_eq(i8042_create(&pio, &stop, &k, &e), 0);
	ck_assert_int_eq(cmos_rtc_create(&pio, 256 * MiB, &r, &e), 0);
	ck_assert_int_eq(legacy_misc_create(&pio, &m, &e), 0);
	ck_assert_int_eq(pci_root_create(&pio, &p, &e), 0);
	ck_assert_int_eq(acpi_pm_create(&pio, &stop, &a, &e), 0);
	ck_assert_uint_eq(pio.nr_ranges, 9);
	for (unsigned i = 1; i < pio.nr_ranges; i++)
		ck_assert_uint_lt(pio.ranges[i - 1].base + pio.ranges[i - 1].len - 1,
				  pio.ranges[i].base);

	/* Duplicates fail cleanly (their state is freed; the ranges that
	 * were registered first belong to the originals). */
	ck_assert_int_eq(serial8250_create(&pio, &cfg, &s2, &e), -EEXIST);
	ck_assert_ptr_nonnull(strstr(e.msg, "overlaps"));
	ck_assert_int_eq(cmos_rtc_create(&pio, 0, &r2, &e), -EEXIST);
	ck_assert_int_eq(pci_root_create(&pio, &p2, &e), -EEXIST);
	ck_assert_int_eq(i8042_create(&pio, &stop, &k2, &e), -EEXIST);
	ck_assert_int_eq(legacy_misc_create(&pio, &m2, &e), -EEXIST);
	ck_assert_int_eq(acpi_pm_create(&pio, &stop, &a2, &e), -EEXIST);
	ck_assert_uint_eq(pio.nr_ranges, 9);
	ck_assert_int_eq(stops.resets + stops.poweroffs, 0);

	serial8250_destroy(s);
	i8042_destroy(k);
	cmos_rtc_destroy(r);
	legacy_misc_destroy(m);
	pci_root_destroy(p);
	acpi_pm_destroy(a);
	/* Every device took all its ports with it. */
	ck_assert_uint_eq(pio.nr_ranges, 0);
	serial8250_destroy(NULL);
	i8042_destroy(NULL);
	cmos_rtc_destroy(NULL);
	legacy_misc_destroy(NULL);
	pci_root_destroy(NULL);
	acpi_pm_destroy(NULL);
	bus_destroy(&pio);
}
END_TEST

static void swallow(void *opaque, uint64_t off, const void *data, unsigned len)
{
}

static const struct bus_ops taken_ops = { .write = swallow };

/* A device whose second port is taken fails without keeping its first:
 * the bus is usable afterwards, and the port the device did get is free
 * for the next one. */
START_TEST(failed_create_leaves_no_port)
{
	struct fake_stop stops;
	struct vm_stopper stop = fake_stopper(&stops);
	struct i8042 *k = NULL;
	struct legacy_misc *m = NULL;
	struct acpi_pm *a = NULL;
	struct kv_err e = { 0 };
	struct bus pio;
	int owner;
	uint8_t b = 0;

	bus_init(&pio, BUS_PIO);
	ck_assert_int_eq(bus_register(&pio, PORT_I8042_CMD, 1, &taken_ops, &owner, "taken", &e), 0);
	ck_assert_int_eq(bus_register(&pio, 0xed, 1, &taken_ops, &owner, "taken", &e), 0);
	ck_assert_int_eq(bus_register(&pio, PORT_ACPI_RESET, 1, &taken_ops, &owner, "taken", &e), 0);
	ck_assert_int_eq(i8042_create(&pio, &stop, &k, &e), -EEXIST);
	ck_assert_int_eq(legacy_misc_create(&pio, &m, &e), -EEXIST);
	ck_assert_int_eq(acpi_pm_create(&pio, &stop, &a, &e), -EEXIST);
	ck_assert_uint_eq(pio.nr_ranges, 3);
	ck_assert_int_eq(bus_dispatch(&pio, PORT_I8042_DATA, &b, 1, false), -ENOENT);
	ck_assert_int_eq(bus_dispatch(&pio, PORT_POST, &b, 1, false), -ENOENT);
	ck_assert_int_eq(bus_dispatch(&pio, PORT_ACPI_SLEEP, &b, 1, false), -ENOENT);
	ck_assert_uint_eq(bus_unregister_all(&pio, &owner), 3);
	ck_assert_int_eq(i8042_create(&pio, &stop, &k, &e), 0);
	i8042_destroy(k);
	ck_assert_uint_eq(pio.nr_ranges, 0);
	bus_destroy(&pio);
}
END_TEST

static Suite *misc_suite(void)
{
	Suite *s = suite_create("legacy_misc");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, delay_ports_swallowed);
	tcase_add_test(tc, in_kernel_ports_left_alone);
	tcase_add_test(tc, all_devices_on_one_bus);
	tcase_add_test(tc, failed_create_leaves_no_port);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(misc_suite());
}
