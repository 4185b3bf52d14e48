/* The checked guest-memory accessor: both ends, overflow, region splits. */
#include <check.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

	ck_assert_int_eq(gm_create(&gm, 512 * MiB, NULL, &e), 0);
	ck_assert_uint_eq(gm.nr_regions, 1);
	ck_assert_uint_eq(gm_low_top(&gm), 512 * MiB);
	gm_destroy(&gm);

	/* 4 GiB of RAM: 3 GiB below the hole, 1 GiB from 4 GiB up (MAP_NORESERVE:
	 * nothing is touched, so this costs no memory). */
	ck_assert_int_eq(gm_create(&gm, 4 * GiB, NULL, &e), 0);
	ck_assert_uint_eq(gm.nr_regions, 2);
	ck_assert_uint_eq(gm.regions[0].size, LAYOUT_MMIO_HOLE_START);
	ck_assert_uint_eq(gm.regions[1].gpa, LAYOUT_MMIO_HOLE_END);
	ck_assert_uint_eq(gm.regions[1].size, 4 * GiB - LAYOUT_MMIO_HOLE_START);
	ck_assert_ptr_null(gm_ptr(&gm, LAYOUT_MMIO_HOLE_START, 1));
	ck_assert_ptr_nonnull(gm_ptr(&gm, 5 * GiB - 1, 1));
	ck_assert_ptr_null(gm_ptr(&gm, 5 * GiB, 1));
	ck_assert_uint_eq(gm_low_top(&gm), LAYOUT_MMIO_HOLE_START);
	gm_destroy(&gm);

	ck_assert_int_eq(gm_create(&gm, 1 * MiB, NULL, &e), -EINVAL);
}
END_TEST

/* The VmFlags line of the mapping that starts at @addr in /proc/self/smaps. */
static bool vma_flags(const void *addr, char flags[512], size_t len)
{
	char line[512], start[32];
	bool in = false;
	FILE *f = fopen("/proc/self/smaps", "r");

	ck_assert_ptr_nonnull(f);
	snprintf(start, sizeof(start), "%lx-", (unsigned long)(uintptr_t)addr);
	while (fgets(line, sizeof(line), f)) {
		if (!strncmp(line, start, strlen(start)))
			in = true;
		else if (in && !strncmp(line, "VmFlags:", 8)) {
			snprintf(flags, len, "%s", line + 8);
			fclose(f);
			return true;
		}
	}
	fclose(f);
	return false;
}

/* KVM can map guest RAM with 2 MiB pages only when every slot's host
 * and guest addresses agree modulo 2 MiB (1 GiB for 1 GiB pages) and the
 * host backs it with huge pages: check both for sizes around each
 * boundary, and that THP was asked for (VmFlags "hg", MADV_HUGEPAGE). */
START_TEST(aligned_for_huge_pages)
{
	static const uint64_t sizes[] = { 16 * MiB, 18 * MiB + 4096, 512 * MiB, 1 * GiB - 4096,
					  1 * GiB, 3 * GiB, 4 * GiB, 5 * GiB + 2 * MiB };
	struct guest_mem gm;
	struct kv_err e;
	char flags[512];

	ck_assert_uint_eq(gm_host_align(512 * MiB), 2 * MiB);
	ck_assert_uint_eq(gm_host_align(1 * GiB - 1), 2 * MiB);
	ck_assert_uint_eq(gm_host_align(1 * GiB), 1 * GiB);
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t align = gm_host_align(sizes[i]);

		ck_assert_int_eq(gm_create(&gm, sizes[i], NULL, &e), 0);
		ck_assert_msg((uintptr_t)gm.mapping % align == 0, "size %llu: mapping %p not aligned to 0x%llx",
			      (unsigned long long)sizes[i], gm.mapping, (unsigned long long)align);
		for (unsigned r = 0; r < gm.nr_regions; r++) {
			ck_assert(gm_region_congruent(&gm.regions[r], 2 * MiB));
			ck_assert(gm_region_congruent(&gm.regions[r], align));
		}
		ck_assert(vma_flags(gm.mapping, flags, sizeof(flags)));
		ck_assert_msg(strstr(flags, " hg"), "no MADV_HUGEPAGE: VmFlags%s", flags);
		gm_destroy(&gm);
	}
}
END_TEST

START_TEST(congruence)
{
	static uint8_t buf[8192] __attribute__((aligned(4096)));
	struct gm_region r = { .gpa = 0x200000, .size = 4096, .host = buf };

	/* a static buffer is 4 KiB-aligned, not 2 MiB-aligned (unless by luck) */
	ck_assert(gm_region_congruent(&r, 4096));
	r.gpa = (uintptr_t)buf & (2 * MiB - 1);
	ck_assert(gm_region_congruent(&r, 2 * MiB));
	r.gpa += 4096;
	ck_assert(!gm_region_congruent(&r, 2 * MiB));
	ck_assert(gm_region_congruent(&r, 4096));
}
END_TEST

/* prefault allocates every page at start; by default nothing is resident
 * until touched. */
START_TEST(prefault_and_resident)
{
	struct gm_opts pre = { .prefault = true };
	struct guest_mem gm;
	struct kv_err e;

	ck_assert_int_eq(gm_create(&gm, 16 * MiB, NULL, &e), 0);
	ck_assert_uint_eq(gm_resident_bytes(&gm), 0);
	ck_assert_int_eq(gm_write(&gm, 5 * MiB, "x", 1), 0);
	ck_assert_uint_ge(gm_resident_bytes(&gm), 4096);
	ck_assert_uint_le(gm_resident_bytes(&gm), 2 * MiB);
	gm_destroy(&gm);

	ck_assert_int_eq(gm_create(&gm, 16 * MiB, &pre, &e), 0);
	ck_assert_uint_eq(gm_resident_bytes(&gm), 16 * MiB);
	gm_destroy(&gm);

	struct guest_mem test_mem = { 0 };
	static uint8_t small[4096];
	ck_assert_int_eq(gm_add_region(&test_mem, 0, sizeof(small), small), 0);
	ck_assert_uint_eq(gm_resident_bytes(&test_mem), 0); /* not ours to count */
}
END_TEST

static long meminfo(const char *key)
{
	char line[128];
	long v = -1;
	size_t n = strlen(key);
	FILE *f = fopen("/proc/meminfo", "r");

	ck_assert_ptr_nonnull(f);
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, key, n) && line[n] == ':')
			v = strtol(line + n + 1, NULL, 10);
	fclose(f);
	return v;
}

/* hugetlb: with enough free huge pages the guest gets them (and they are
 * not counted as resident RSS-style memory); without, a clear error that
 * says how to reserve them, not a SIGBUS later. */
START_TEST(hugetlb)
{
	struct gm_opts huge = { .hugetlb = true };
	struct guest_mem gm;
	struct kv_err e = { 0 };
	long free_pages = meminfo("HugePages_Free");
	int r;

	ck_assert_int_eq(gm_create(&gm, 17 * MiB, &huge, &e), -EINVAL);
	ck_assert_ptr_nonnull(strstr(e.msg, "multiple of 2 MiB"));
	r = gm_create(&gm, 16 * MiB, &huge, &e);
	if (free_pages >= 8 && meminfo("Hugepagesize") == 2048) {
		ck_assert_int_eq(r, 0);
		ck_assert(gm.hugetlb);
		ck_assert(gm_region_congruent(&gm.regions[0], 2 * MiB));
		ck_assert_int_eq(gm_write(&gm, 15 * MiB, "x", 1), 0);
		gm_destroy(&gm);
	} else {
		ck_assert_int_eq(r, -ENOMEM);
		ck_assert_msg(strstr(e.msg, "needs 8 free 2 MiB huge pages") &&
			      strstr(e.msg, "/proc/sys/vm/nr_hugepages"), "message: %s", e.msg);
	}
}
END_TEST

static Suite *gm_suite(void)
{
	Suite *s = suite_create("guest_mem");
	TCase *tc = tcase_create("accessors");

	tcase_add_test(tc, bounds);
	tcase_add_test(tc, layout_around_hole);
	tcase_add_test(tc, aligned_for_huge_pages);
	tcase_add_test(tc, congruence);
	tcase_add_test(tc, prefault_and_resident);
	tcase_add_test(tc, hugetlb);
	suite_add_tcase(s, tc);
	return s;
}

int main(void)
{
	return check_run_suite(gm_suite());
}
