/* boot_build_e820: the memory map for small guests, a guest whose RAM
 * ends exactly at the PCI hole, and one with RAM above 4 GiB. The map is
 * computed from region descriptions only, so the regions can claim
 * gigabytes while pointing at one small buffer. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>

#include "kvmini/boot.h"
#include "kvmini/layout.h"
#include "../check_main.h"
#include "test_util.h"

static uint8_t dummy[64];

static void expect(const struct e820_entry *e, uint64_t addr, uint64_t size, uint32_t type)
{
	ck_assert_uint_eq(e->addr, addr);
	ck_assert_uint_eq(e->size, size);
	ck_assert_uint_eq(e->type, type);
}

START_TEST(small_ram)
{
	struct guest_mem gm = { 0 };
	struct e820_entry map[E820_MAX];

	ck_assert_int_eq(gm_add_region(&gm, 0, 16 * MiB, dummy), 0);
	ck_assert_int_eq(boot_build_e820(&gm, map, E820_MAX), 3);
	expect(&map[0], 0, LAYOUT_EBDA, E820_RAM);
	expect(&map[1], LAYOUT_EBDA, MiB - LAYOUT_EBDA, E820_RESERVED);
	expect(&map[2], MiB, 15 * MiB, E820_RAM);
}
END_TEST

START_TEST(ram_exactly_at_hole)
{
	struct guest_mem gm = { 0 };
	struct e820_entry map[E820_MAX];

	ck_assert_int_eq(gm_add_region(&gm, 0, LAYOUT_MMIO_HOLE_START, dummy), 0);
	ck_assert_int_eq(boot_build_e820(&gm, map, E820_MAX), 3);
	expect(&map[2], MiB, LAYOUT_MMIO_HOLE_START - MiB, E820_RAM);
}
END_TEST

START_TEST(ram_above_4g)
{
	struct guest_mem gm = { 0 };
	struct e820_entry map[E820_MAX];

	/* Added high region first: the map must still come out sorted. */
	ck_assert_int_eq(gm_add_region(&gm, LAYOUT_MMIO_HOLE_END, 3 * GiB, dummy), 0);
	ck_assert_int_eq(gm_add_region(&gm, 0, LAYOUT_MMIO_HOLE_START, dummy), 0);
	ck_assert_int_eq(boot_build_e820(&gm, map, E820_MAX), 4);
	expect(&map[0], 0, LAYOUT_EBDA, E820_RAM);
	expect(&map[1], LAYOUT_EBDA, MiB - LAYOUT_EBDA, E820_RESERVED);
	expect(&map[2], MiB, LAYOUT_MMIO_HOLE_START - MiB, E820_RAM);
	expect(&map[3], 4 * GiB, 3 * GiB, E820_RAM);
}
END_TEST

START_TEST(region_into_hole_is_clipped)
{
	struct guest_mem gm = { 0 };
	struct e820_entry map[E820_MAX];

	/* Whatever a caller describes, the hole never shows up as RAM. */
	ck_assert_int_eq(gm_add_region(&gm, 0, LAYOUT_MMIO_HOLE_START + GiB, dummy), 0);
	ck_assert_int_eq(boot_build_e820(&gm, map, E820_MAX), 3);
	expect(&map[2], MiB, LAYOUT_MMIO_HOLE_START - MiB, E820_RAM);
}
END_TEST

START_TEST(too_small_map)
{
	struct guest_mem gm = { 0 };
	struct e820_entry map[2];

	ck_assert_int_eq(gm_add_region(&gm, 0, 64 * MiB, dummy), 0);
	ck_assert_int_eq(boot_build_e820(&gm, map, 2), -ENOSPC);
}
END_TEST

START_TEST(no_ram)
{
	struct guest_mem gm = { 0 };
	struct e820_entry map[E820_MAX];

	ck_assert_int_lt(boot_build_e820(&gm, map, E820_MAX), 0);
}
END_TEST

static Suite *e820_suite(void)
{
	Suite *s = suite_create("e820");
	TCase *tc = tcase_create("map");

	tcase_add_test(tc, small_ram);
	tcase_add_test(tc, ram_exactly_at_hole);
	tcase_add_test(tc, ram_above_4g);
	tcase_add_test(tc, region_into_hole_is_clipped);
	tcase_add_test(tc, too_small_map);
	tcase_add_test(tc, no_ram);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(e820_suite());
}
