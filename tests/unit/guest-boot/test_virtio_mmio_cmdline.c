/* boot_virtio_mmio_cmdline: the exact entries for one and for all
 * devices, the size written as memparse reads it, and buffers too small
 * by one byte. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "kvmini/boot.h"
#include "kvmini/layout.h"
#include "../check_main.h"

START_TEST(none)
{
	char buf[8] = "junk";

	ck_assert_int_eq(boot_virtio_mmio_cmdline(0, buf, sizeof(buf)), 0);
	ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(two_devices)
{
	static const char want[] =
		"virtio_mmio.device=4K@0xd0000000:5 virtio_mmio.device=4K@0xd0001000:6";
	char buf[256];

	ck_assert_int_eq(boot_virtio_mmio_cmdline(2, buf, sizeof(buf)), (int)strlen(want));
	ck_assert_str_eq(buf, want);
}
END_TEST

START_TEST(all_devices_follow_layout)
{
	static const unsigned gsis[] = LAYOUT_VIRTIO_MMIO_GSIS;
	char buf[1024], want[1024] = "";
	int n;

	for (unsigned i = 0; i < LAYOUT_VIRTIO_MMIO_MAX; i++) {
		char one[64];

		snprintf(one, sizeof(one), "%svirtio_mmio.device=4K@0x%llx:%u", i ? " " : "",
			 (unsigned long long)LAYOUT_VIRTIO_MMIO(i), gsis[i]);
		strcat(want, one);
	}
	n = boot_virtio_mmio_cmdline(LAYOUT_VIRTIO_MMIO_MAX, buf, sizeof(buf));
	ck_assert_int_eq(n, (int)strlen(want));
	ck_assert_str_eq(buf, want);
	ck_assert_ptr_nonnull(strstr(buf, "virtio_mmio.device=4K@0xd0007000:15"));
}
END_TEST

START_TEST(too_many_devices)
{
	char buf[1024];

	ck_assert_int_eq(boot_virtio_mmio_cmdline(LAYOUT_VIRTIO_MMIO_MAX + 1, buf, sizeof(buf)),
			 -EINVAL);
}
END_TEST

START_TEST(buffer_exact_and_one_short)
{
	char full[256], buf[256];
	int n = boot_virtio_mmio_cmdline(3, full, sizeof(full));

	ck_assert_int_gt(n, 0);
	/* Exactly the length plus the NUL fits. */
	ck_assert_int_eq(boot_virtio_mmio_cmdline(3, buf, (size_t)n + 1), n);
	ck_assert_str_eq(buf, full);
	/* One byte short: an error, and no half entry in the buffer. */
	memset(buf, 'x', sizeof(buf));
	ck_assert_int_eq(boot_virtio_mmio_cmdline(3, buf, (size_t)n), -ENAMETOOLONG);
	ck_assert_ptr_nonnull(memchr(buf, '\0', (size_t)n));
	ck_assert_int_eq(strncmp(buf, full, strlen(buf)), 0);
	ck_assert_int_eq((int)strlen(buf), (int)(strrchr(full, ' ') - full));
	/* No room even for the NUL. */
	ck_assert_int_eq(boot_virtio_mmio_cmdline(0, buf, 0), -ENAMETOOLONG);
	ck_assert_int_eq(boot_virtio_mmio_cmdline(1, NULL, 0), -ENAMETOOLONG);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("virtio_mmio_cmdline");
	TCase *tc = tcase_create("core");

	tcase_add_test(tc, none);
	tcase_add_test(tc, two_devices);
	tcase_add_test(tc, all_devices_follow_layout);
	tcase_add_test(tc, too_many_devices);
	tcase_add_test(tc, buffer_exact_and_one_short);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
