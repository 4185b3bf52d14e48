/* The checked guest-memory accessor: both ends, overflow, region splits. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <unistd.h>

#include "kvmini/guest_mem.h"
#include "kvmini/layout.h"
#include "../../check_main.h"

START_TEST(bounds)
{
	static uint8_t low[4096], high[4096];
	struct guest_mem gm = { 0 };
	uint8_t b[8] = { 0 };

	ck_assert_int_eq(gm_add_region(&gm, 0, sizeof(low), low), 0);
	ck_assert_int_eq(gm_add_region(&gm, 1ULL << 32, sizeof(high), high), 0);
	ck_assert_ptr_eq(gm_ptr(&gm, 0, 4096), low);
	ck_assert_ptr_eq(gm_ptr(&gm, 4095, 1), low + 4095);
	ck_assert_ptr_null(gm_ptr(&gm, 4095, 2));         /* crosses the end */
	ck_assert_ptr_null(gm_ptr(&gm, 4096, 1));         /* just past */
	ck_assert_ptr_null(gm_ptr(&gm, UINT64_MAX, 2));   /* wraps */
	ck_assert_ptr_null(gm_ptr(&gm, 8, UINT64_MAX));   /* wraps */
	ck_assert_ptr_eq(gm_ptr(&gm, (1ULL << 32) + 8, 8), high + 8);
	ck_assert_ptr_null(gm_ptr(&gm, (1ULL << 32) - 4, 8)); /* spans the gap */
	ck_assert_int_eq(gm_write(&gm, 100, "abcdefgh", 8), 0);
	ck_assert_int_eq(gm_read(&gm, 100, b, 8), 0);
	ck_assert_mem_eq(b, "abcdefgh", 8);
	ck_assert_int_eq(gm_read(&gm, 4092, b, 8), -EFAULT);
	ck_assert_int_eq(gm_write(&gm, 8192, b, 1), -EFAULT);
	ck_assert_uint_eq(gm_low_top(&gm), 4096);
	ck_assert_int_eq(gm_add_region(&gm, UINT64_MAX - 10, 100, low), -EINVAL);
}
END_TEST

START_TEST(layout_around_hole)
{
	struct guest_mem gm;
	struct kv_err e;

	ck_assert_int_eq(gm_create(&gm, 512 * MiB, &e), 0);
	ck_assert_uint_eq(gm.nr_regions, 1);
	ck_assert_uint_eq(gm_low_top(&gm), 512 * MiB);
	gm_destroy(&gm);

	/* 4 GiB of RAM: 3 GiB below the hole, 1 GiB from 4 GiB up (MAP_NORESERVE:
	 * nothing is touched, so this costs no memory). */
	ck_assert_int_eq(gm_create(&gm, 4 * GiB, &e), 0);
	ck_assert_uint_eq(gm.nr_regions, 2);
	ck_assert_uint_eq(gm.regions[0].size, LAYOUT_MMIO_HOLE_START);
	ck_assert_uint_eq(gm.regions[1].gpa, LAYOUT_MMIO_HOLE_END);
	ck_assert_uint_eq(gm.regions[1].size, 4 * GiB - LAYOUT_MMIO_HOLE_START);
	ck_assert_ptr_null(gm_ptr(&gm, LAYOUT_MMIO_HOLE_START, 1));
	ck_assert_ptr_nonnull(gm_ptr(&gm, 5 * GiB - 1, 1));
	ck_assert_ptr_null(gm_ptr(&gm, 5 * GiB, 1));
	ck_assert_uint_eq(gm_low_top(&gm), LAYOUT_MMIO_HOLE_START);
	gm_destroy(&gm);

	ck_assert_int_eq(gm_create(&gm, 1 * MiB, &e), -EINVAL);
}
END_TEST

/* File pages mapped copy-on-write into guest RAM: visible to the guest,
 * guest writes never reach the file. */
START_TEST(map_file_cow)
{
	char path[] = "/tmp/kvmini-gm-XXXXXX";
	static uint8_t page[8192], small[4096];
	struct guest_mem gm, test_mem = { 0 };
	struct kv_err e;
	uint8_t *g, back[8192];
	int fd = mkstemp(path);

	ck_assert_int_ge(fd, 0);
	for (size_t i = 0; i < sizeof(page); i++)
		page[i] = (uint8_t)(i * 7);
	ck_assert_int_eq(write(fd, page, sizeof(page)), (ssize_t)sizeof(page));
	ck_assert_int_eq(gm_create(&gm, 16 * MiB, &e), 0);

	ck_assert_int_eq(gm_map_file(&gm, 0x200000, fd, 0, 8192), 0);
	g = gm_ptr(&gm, 0x200000, 8192);
	ck_assert_mem_eq(g, page, sizeof(page));
	g[0] ^= 0xff;                         /* private to the guest */
	ck_assert_int_eq(pread(fd, back, sizeof(back), 0), (ssize_t)sizeof(back));
	ck_assert_mem_eq(back, page, sizeof(page));

	ck_assert_int_eq(gm_map_file(&gm, 0x200001, fd, 0, 4096), -EINVAL); /* unaligned */
	ck_assert_int_eq(gm_map_file(&gm, 0x200000, fd, 1, 4096), -EINVAL);
	ck_assert_int_eq(gm_map_file(&gm, 16 * MiB - 4096, fd, 0, 8192), -EINVAL); /* past RAM */
	ck_assert_int_eq(gm_add_region(&test_mem, 0, sizeof(small), small), 0);
	ck_assert_int_eq(gm_map_file(&test_mem, 0, fd, 0, 4096), -ENOTSUP); /* not ours to remap */
	gm_destroy(&gm);
	close(fd);
	unlink(path);
}
END_TEST

static Suite *gm_suite(void)
{
	Suite *s = suite_create("guest_mem");
	TCase *tc = tcase_create("accessors");

	tcase_add_test(tc, bounds);
	tcase_add_test(tc, layout_around_hole);
	tcase_add_test(tc, map_file_cow);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(gm_suite());
}
