/* vmm/bus.c: registration rules, sorted dispatch, offsets, what
 * unclaimed and straddling accesses do, unregistering, and the seal that
 * freezes the table while vCPUs dispatch. */
#include <check.h>
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

#include "kvmini/bus.h"
#include "../../check_main.h"

/* A device that records its last access. */
struct recorder {
	int reads, writes;
	uint64_t off;
	unsigned len;
	uint8_t data[8];
	uint8_t fill;     /* what reads return */
};

static void rec_read(void *opaque, uint64_t off, void *data, unsigned len)
{
	struct recorder *r = opaque;

	r->reads++;
	r->off = off;
	r->len = len;
	memset(data, r->fill, len);
}

static void rec_write(void *opaque, uint64_t off, const void *data, unsigned len)
{
	struct recorder *r = opaque;

	r->writes++;
	r->off = off;
	r->len = len;
	memcpy(r->data, data, len);
}

static const struct bus_ops rec_ops = { .read = rec_read, .write = rec_write };
static const struct bus_ops read_only_ops = { .read = rec_read };
static const struct bus_ops no_ops = { 0 };

static struct bus bus;
static struct recorder rec[8];
static struct kv_err err;

static void setup_pio(void)
{
	bus_init(&bus, BUS_PIO);
	memset(rec, 0, sizeof(rec));
	memset(&err, 0, sizeof(err));
}

static void teardown(void)
{
	bus_destroy(&bus);
}

static int reg(uint64_t base, uint64_t len, int i)
{
	return bus_register(&bus, base, len, &rec_ops, &rec[i], "dev", &err);
}

START_TEST(rejects_zero_length)
{
	ck_assert_int_eq(reg(0x100, 0, 0), -EINVAL);
	ck_assert_int_eq(err.code, -EINVAL);
	ck_assert_ptr_nonnull(strstr(err.msg, "empty"));
	ck_assert_uint_eq(bus.nr_ranges, 0);
}
END_TEST

START_TEST(rejects_wraparound)
{
	bus_destroy(&bus);
	bus_init(&bus, BUS_MMIO);
	ck_assert_int_eq(reg(UINT64_MAX - 0xff, 0x200, 0), -EINVAL);
	ck_assert_int_eq(reg(UINT64_MAX, 2, 0), -EINVAL);
	ck_assert_int_eq(reg(1, UINT64_MAX, 0), 0);       /* ends exactly at the top */
	ck_assert_int_eq(reg(0, 1, 1), 0);
	ck_assert_uint_eq(bus.nr_ranges, 2);
}
END_TEST

START_TEST(rejects_pio_above_0xffff)
{
	ck_assert_int_eq(reg(0xffff, 1, 0), 0);
	ck_assert_int_eq(reg(0xfff0, 0x11, 1), -EINVAL);
	ck_assert_int_eq(reg(0x10000, 1, 1), -EINVAL);
	ck_assert_int_eq(reg(0x1234, 0x10000, 1), -EINVAL);
	ck_assert_uint_eq(bus.nr_ranges, 1);
	/* MMIO has no such limit. */
	bus_destroy(&bus);
	bus_init(&bus, BUS_MMIO);
	ck_assert_int_eq(reg(0xfee00000, 0x1000, 0), 0);
}
END_TEST

START_TEST(rejects_missing_handlers)
{
	ck_assert_int_eq(bus_register(&bus, 0x10, 1, NULL, NULL, "x", &err), -EINVAL);
	ck_assert_int_eq(bus_register(&bus, 0x10, 1, &no_ops, NULL, "x", &err), -EINVAL);
	ck_assert_int_eq(bus_register(&bus, 0x10, 1, &no_ops, NULL, "x", NULL), -EINVAL);
	ck_assert_uint_eq(bus.nr_ranges, 0);
}
END_TEST

START_TEST(rejects_overlap_on_both_sides)
{
	ck_assert_int_eq(reg(0x100, 0x10, 0), 0);           /* 0x100-0x10f */
	ck_assert_int_eq(reg(0xf8, 0x09, 1), -EEXIST);      /* ends on the first byte */
	ck_assert_int_eq(reg(0x10f, 0x08, 1), -EEXIST);     /* starts on the last byte */
	ck_assert_int_eq(reg(0x100, 0x10, 1), -EEXIST);     /* identical */
	ck_assert_int_eq(reg(0x104, 0x02, 1), -EEXIST);     /* inside */
	ck_assert_int_eq(reg(0x0f0, 0x40, 1), -EEXIST);     /* covering */
	ck_assert_ptr_nonnull(strstr(err.msg, "overlaps"));
	ck_assert_int_eq(reg(0xf0, 0x10, 1), 0);            /* adjacent below */
	ck_assert_int_eq(reg(0x110, 0x10, 2), 0);           /* adjacent above */
	/* And against a neighbour on each side at once. */
	ck_assert_int_eq(reg(0x200, 0x10, 3), 0);
	ck_assert_int_eq(reg(0x11f, 0xe2, 4), -EEXIST);
	ck_assert_int_eq(reg(0x120, 0xe1, 4), -EEXIST);
	ck_assert_int_eq(reg(0x120, 0xe0, 4), 0);           /* fills the gap exactly */
	ck_assert_uint_eq(bus.nr_ranges, 5);
}
END_TEST

START_TEST(sorted_dispatch_and_offsets)
{
	static const uint64_t bases[] = { 0x3f8, 0x60, 0xcf8, 0x70, 0x600, 0x20, 0x80, 0x64 };
	static const uint64_t lens[] = { 8, 1, 8, 2, 2, 2, 1, 1 };

	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(reg(bases[i], lens[i], i), 0);
	for (unsigned i = 1; i < bus.nr_ranges; i++)
		ck_assert_uint_lt(bus.ranges[i - 1].base, bus.ranges[i].base);
	for (int i = 0; i < 8; i++) {
		for (uint64_t off = 0; off < lens[i]; off++) {
			uint8_t v = (uint8_t)(i * 16 + off);

			ck_assert_int_eq(bus_dispatch(&bus, bases[i] + off, &v, 1, true), 0);
			ck_assert_uint_eq(rec[i].off, off);
			ck_assert_uint_eq(rec[i].len, 1);
			ck_assert_uint_eq(rec[i].data[0], v);
		}
		ck_assert_int_eq(rec[i].writes, (int)lens[i]);
	}
	for (int i = 0; i < 8; i++)
		ck_assert_int_eq(rec[i].reads, 0);
	ck_assert_uint_eq(bus.unclaimed, 0);
}
END_TEST

START_TEST(many_ranges_grow_the_table)
{
	static struct recorder many[300];

	for (int i = 299; i >= 0; i--)
		ck_assert_int_eq(bus_register(&bus, (uint64_t)i * 4, 2, &rec_ops, &many[i], "m", &err), 0);
	ck_assert_uint_eq(bus.nr_ranges, 300);
	for (int i = 0; i < 300; i++) {
		uint16_t v = 0;

		many[i].fill = (uint8_t)i;
		ck_assert_int_eq(bus_dispatch(&bus, (uint64_t)i * 4, &v, 2, false), 0);
		ck_assert_uint_eq(v, (uint16_t)((uint8_t)i * 0x0101));
		ck_assert_int_eq(bus_dispatch(&bus, (uint64_t)i * 4 + 2, &v, 1, false), -ENOENT);
	}
	ck_assert_uint_eq(bus.unclaimed, 300);
}
END_TEST

START_TEST(access_sizes_and_data)
{
	uint64_t v = 0x1122334455667788ULL;

	bus_destroy(&bus);
	bus_init(&bus, BUS_MMIO);
	ck_assert_int_eq(reg(0xd0000000, 0x1000, 0), 0);
	ck_assert_int_eq(bus_dispatch(&bus, 0xd0000ff8, &v, 8, true), 0);
	ck_assert_uint_eq(rec[0].off, 0xff8);
	ck_assert_uint_eq(rec[0].len, 8);
	ck_assert_mem_eq(rec[0].data, &v, 8);
	rec[0].fill = 0xab;
	v = 0;
	ck_assert_int_eq(bus_dispatch(&bus, 0xd0000002, &v, 2, false), 0);
	ck_assert_uint_eq(v, 0xabab);
	ck_assert_uint_eq(rec[0].off, 2);
	/* Lengths outside 1..8 are nobody's. */
	ck_assert_int_eq(bus_dispatch(&bus, 0xd0000000, &v, 0, false), -ENOENT);
	ck_assert_int_eq(bus_dispatch(&bus, 0xd0000000, &v, 16, true), -ENOENT);
	ck_assert_int_eq(rec[0].reads + rec[0].writes, 2);
}
END_TEST

START_TEST(unclaimed_pio_reads_all_ones)
{
	uint32_t v = 0;

	ck_assert_int_eq(reg(0x3f8, 8, 0), 0);
	ck_assert_int_eq(bus_dispatch(&bus, 0x2f8, &v, 1, false), -ENOENT);
	ck_assert_uint_eq(v, 0xff);
	ck_assert_int_eq(bus_dispatch(&bus, 0x2f8, &v, 4, false), -ENOENT);
	ck_assert_uint_eq(v, 0xffffffffu);
	v = 0x1234;
	ck_assert_int_eq(bus_dispatch(&bus, 0x2f8, &v, 2, true), -ENOENT);
	ck_assert_uint_eq(v, 0x1234);    /* a write's data is left alone */
	ck_assert_uint_eq(bus.unclaimed, 3);
	ck_assert_int_eq(rec[0].reads + rec[0].writes, 0);
}
END_TEST

START_TEST(unclaimed_mmio_reads_zeros)
{
	uint64_t v = ~0ULL;

	bus_destroy(&bus);
	bus_init(&bus, BUS_MMIO);
	ck_assert_int_eq(bus_dispatch(&bus, 0xfebf0000, &v, 8, false), -ENOENT);
	ck_assert_uint_eq(v, 0);
	v = ~0ULL;
	ck_assert_int_eq(bus_dispatch(&bus, 0xfebf0000, &v, 2, false), -ENOENT);
	ck_assert_uint_eq(v, 0xffffffffffff0000ULL); /* only len bytes touched */
	ck_assert_int_eq(bus_dispatch(&bus, 0, &v, 4, true), -ENOENT);
	ck_assert_uint_eq(bus.unclaimed, 3);
}
END_TEST

START_TEST(straddling_accesses_are_unclaimed)
{
	uint32_t v;

	ck_assert_int_eq(reg(0x100, 4, 0), 0);
	ck_assert_int_eq(reg(0x104, 4, 1), 0);
	/* Across the boundary between two devices: neither gets it. */
	v = 0;
	ck_assert_int_eq(bus_dispatch(&bus, 0x102, &v, 4, false), -ENOENT);
	ck_assert_uint_eq(v, 0xffffffffu);
	ck_assert_int_eq(bus_dispatch(&bus, 0x103, &v, 2, true), -ENOENT);
	/* Starting before a device or running past the last one. */
	ck_assert_int_eq(bus_dispatch(&bus, 0xff, &v, 2, false), -ENOENT);
	ck_assert_int_eq(bus_dispatch(&bus, 0x107, &v, 2, false), -ENOENT);
	ck_assert_int_eq(rec[0].reads + rec[0].writes + rec[1].reads + rec[1].writes, 0);
	ck_assert_uint_eq(bus.unclaimed, 4);
	/* Exactly at the end is fine. */
	ck_assert_int_eq(bus_dispatch(&bus, 0x104, &v, 4, false), 0);
	ck_assert_int_eq(bus_dispatch(&bus, 0x103, &v, 1, false), 0);
	ck_assert_uint_eq(rec[0].off, 3);
}
END_TEST

START_TEST(straddling_the_top_of_the_address_space)
{
	uint64_t v = 0;

	bus_destroy(&bus);
	bus_init(&bus, BUS_MMIO);
	ck_assert_int_eq(reg(UINT64_MAX - 0xfff, 0x1000, 0), 0);
	ck_assert_int_eq(bus_dispatch(&bus, UINT64_MAX - 3, &v, 8, false), -ENOENT);
	ck_assert_int_eq(bus_dispatch(&bus, UINT64_MAX - 7, &v, 8, false), 0);
	ck_assert_uint_eq(rec[0].off, 0xff8);
}
END_TEST

START_TEST(one_direction_handlers)
{
	uint8_t v = 0x5a;

	ck_assert_int_eq(bus_register(&bus, 0x40, 4, &read_only_ops, &rec[0], "ro", &err), 0);
	ck_assert_int_eq(bus_dispatch(&bus, 0x40, &v, 1, true), -ENOENT);
	ck_assert_int_eq(bus_dispatch(&bus, 0x40, &v, 1, false), 0);
	ck_assert_int_eq(rec[0].reads, 1);
	ck_assert_uint_eq(bus.unclaimed, 1);
}
END_TEST

START_TEST(destroy_and_reinit)
{
	uint8_t v;

	ck_assert_int_eq(reg(0x10, 1, 0), 0);
	bus_destroy(&bus);
	ck_assert_uint_eq(bus.nr_ranges, 0);
	ck_assert_int_eq(bus_dispatch(&bus, 0x10, &v, 1, false), -ENOENT);
	bus_destroy(&bus);                /* twice is harmless */
	bus_init(&bus, BUS_PIO);
	ck_assert_int_eq(reg(0x10, 1, 0), 0);
}
END_TEST

START_TEST(unregister_by_base_and_owner)
{
	uint8_t v = 0x5a;

	ck_assert_int_eq(reg(0x60, 1, 0), 0);
	ck_assert_int_eq(reg(0x64, 1, 1), 0);
	ck_assert_int_eq(reg(0x70, 2, 2), 0);
	/* Another owner's base, or a base inside a range, is not a match. */
	ck_assert_int_eq(bus_unregister(&bus, 0x60, &rec[1]), -ENOENT);
	ck_assert_int_eq(bus_unregister(&bus, 0x71, &rec[2]), -ENOENT);
	ck_assert_uint_eq(bus.nr_ranges, 3);
	ck_assert_int_eq(bus_unregister(&bus, 0x64, &rec[1]), 0);
	ck_assert_uint_eq(bus.nr_ranges, 2);
	/* Gone: the port is unclaimed, its neighbours still dispatch. */
	ck_assert_int_eq(bus_dispatch(&bus, 0x64, &v, 1, true), -ENOENT);
	ck_assert_int_eq(rec[1].writes, 0);
	ck_assert_int_eq(bus_dispatch(&bus, 0x60, &v, 1, true), 0);
	ck_assert_int_eq(bus_dispatch(&bus, 0x71, &v, 1, true), 0);
	ck_assert_int_eq(rec[0].writes, 1);
	ck_assert_int_eq(rec[2].writes, 1);
	for (unsigned i = 1; i < bus.nr_ranges; i++)
		ck_assert_uint_lt(bus.ranges[i - 1].base, bus.ranges[i].base);
	ck_assert_int_eq(bus_unregister(&bus, 0x64, &rec[1]), -ENOENT); /* twice */
	/* The range is free again: someone else may take it. */
	ck_assert_int_eq(reg(0x63, 2, 3), 0);
}
END_TEST

START_TEST(unregister_all_of_one_owner)
{
	uint8_t v = 0;

	ck_assert_int_eq(reg(0x20, 2, 0), 0);
	ck_assert_int_eq(reg(0x40, 4, 1), 0);
	ck_assert_int_eq(bus_register(&bus, 0x80, 1, &rec_ops, &rec[0], "dev", &err), 0);
	ck_assert_int_eq(bus_register(&bus, 0xed, 1, &rec_ops, &rec[0], "dev", &err), 0);
	ck_assert_uint_eq(bus_unregister_all(&bus, &rec[0]), 3);
	ck_assert_uint_eq(bus.nr_ranges, 1);
	ck_assert_uint_eq(bus.ranges[0].base, 0x40);
	ck_assert_int_eq(bus_dispatch(&bus, 0x80, &v, 1, false), -ENOENT);
	ck_assert_int_eq(bus_dispatch(&bus, 0x41, &v, 1, false), 0);
	ck_assert_uint_eq(bus_unregister_all(&bus, &rec[0]), 0);
	ck_assert_uint_eq(bus_unregister_all(&bus, &rec[1]), 1);
	ck_assert_uint_eq(bus.nr_ranges, 0);
}
END_TEST

START_TEST(register_ranges_all_or_none)
{
	const struct bus_range ok[] = {
		{ 0x60, 1, &rec_ops, &rec[0], "data" },
		{ 0x64, 1, &rec_ops, &rec[0], "command" },
	};
	const struct bus_range clash[] = {
		{ 0x80, 1, &rec_ops, &rec[1], "post" },
		{ 0xed, 1, &rec_ops, &rec[1], "delay" },
		{ 0x63, 2, &rec_ops, &rec[1], "overlaps 0x64" },
	};
	uint8_t v = 0;

	ck_assert_int_eq(bus_register_ranges(&bus, ok, 2, &err), 0);
	ck_assert_uint_eq(bus.nr_ranges, 2);
	ck_assert_int_eq(bus_register_ranges(&bus, clash, 3, &err), -EEXIST);
	ck_assert_ptr_nonnull(strstr(err.msg, "overlaps 0x64"));
	/* The two that did register were taken back. */
	ck_assert_uint_eq(bus.nr_ranges, 2);
	ck_assert_int_eq(bus_dispatch(&bus, 0x80, &v, 1, true), -ENOENT);
	ck_assert_int_eq(rec[1].writes, 0);
	ck_assert_int_eq(bus_dispatch(&bus, 0x64, &v, 1, true), 0);
}
END_TEST

START_TEST(seal_keeps_dispatch)
{
	uint8_t v = 0;

	ck_assert_int_eq(reg(0x20, 2, 0), 0);
	bus_seal(&bus);
	ck_assert_int_eq(bus_dispatch(&bus, 0x21, &v, 1, true), 0);
	bus_unseal(&bus);
	ck_assert_int_eq(bus_unregister(&bus, 0x20, &rec[0]), 0);
}
END_TEST

#ifndef NDEBUG
/* Changing the table under running vCPUs is a bug kvmini catches. */
START_TEST(sealed_unregister_aborts)
{
	ck_assert_int_eq(reg(0x20, 2, 0), 0);
	bus_seal(&bus);
	bus_unregister(&bus, 0x20, &rec[0]);
}
END_TEST

START_TEST(sealed_register_aborts)
{
	bus_seal(&bus);
	reg(0x20, 2, 0);
}
END_TEST
#endif

static Suite *bus_suite(void)
{
	Suite *s = suite_create("bus");
	TCase *tc = tcase_create("core");

	tcase_add_checked_fixture(tc, setup_pio, teardown);
	tcase_add_test(tc, rejects_zero_length);
	tcase_add_test(tc, rejects_wraparound);
	tcase_add_test(tc, rejects_pio_above_0xffff);
	tcase_add_test(tc, rejects_missing_handlers);
	tcase_add_test(tc, rejects_overlap_on_both_sides);
	tcase_add_test(tc, sorted_dispatch_and_offsets);
	tcase_add_test(tc, many_ranges_grow_the_table);
	tcase_add_test(tc, access_sizes_and_data);
	tcase_add_test(tc, unclaimed_pio_reads_all_ones);
	tcase_add_test(tc, unclaimed_mmio_reads_zeros);
	tcase_add_test(tc, straddling_accesses_are_unclaimed);
	tcase_add_test(tc, straddling_the_top_of_the_address_space);
	tcase_add_test(tc, one_direction_handlers);
	tcase_add_test(tc, destroy_and_reinit);
	tcase_add_test(tc, unregister_by_base_and_owner);
	tcase_add_test(tc, unregister_all_of_one_owner);
	tcase_add_test(tc, register_ranges_all_or_none);
	tcase_add_test(tc, seal_keeps_dispatch);
#ifndef NDEBUG
	tcase_add_test_raise_signal(tc, sealed_unregister_aborts, SIGABRT);
	tcase_add_test_raise_signal(tc, sealed_register_aborts, SIGABRT);
#endif
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(bus_suite());
}
