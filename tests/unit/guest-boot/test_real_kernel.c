/* The real distribution kernel named by KVMINI_TEST_BZIMAGE: its header
 * parses, it loads as a bzImage, and it unpacks to an ELF vmlinux with a
 * PVH note that boots through PVH. Without the variable the test is
 * skipped (exit 77), which meson reports as a skip, not a pass. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/layout.h"
#include "../../../guest-boot/elf_pvh.h"
#include "../../../guest-boot/unpack_xz.h"
#include "../check_main.h"
#include "test_util.h"

#define GUEST_MEM (512 * MiB)

static const char *kernel_path;

START_TEST(header_parses)
{
	struct boot_file f;
	struct bz_info bz;
	struct kv_err err = { 0 };

	ck_assert_msg(boot_file_open(kernel_path, &f, &err) == 0, "%s", err.msg);
	ck_assert(bz_looks_like(&f));
	ck_assert_msg(bz_parse(&f, &bz, &err) == 0, "%s", err.msg);
	ck_assert_uint_ge(bz.version, 0x020c);
	ck_assert(bz.xloadflags & XLF_KERNEL_64);
	ck_assert_uint_gt(bz.payload_length, 0);
	boot_file_free(&f);
}
END_TEST

START_TEST(loads_as_bzimage)
{
	struct boot_cfg cfg = { .kernel_path = kernel_path, .cmdline = "console=ttyS0",
				.mode = BOOT_BZIMAGE, .ncpus = 2 };
	struct boot_entry entry;
	struct kv_err err = { 0 };
	struct test_vm vm;
	struct boot_file f;
	struct bz_info bz;

	ck_assert_msg(boot_file_open(kernel_path, &f, &err) == 0, "%s", err.msg);
	ck_assert_msg(bz_parse(&f, &bz, &err) == 0, "%s", err.msg);
	test_vm_init(&vm, GUEST_MEM);
	ck_assert_msg(boot_load(&vm.gm, &cfg, &entry, &err) == 0, "%s", err.msg);
	ck_assert_int_eq(entry.kind, ENTRY_LINUX64);
	/* Distribution kernels have a usable pref_address (16 MiB). */
	ck_assert_uint_eq(entry.rip, bz.pref_address + 0x200);
	{
		uint8_t *pm = malloc(bz.pm_size);

		ck_assert_ptr_nonnull(pm);
		ck_assert_int_eq(boot_file_pread(&f, bz.pm_offset, pm, bz.pm_size), 0);
		ck_assert_mem_eq(vm.mem + bz.pref_address, pm, bz.pm_size);
		free(pm);
	}
	printf("real kernel: protocol %u.%02u, loaded at 0x%llx, init_size %u MiB\n",
	       bz.version >> 8, bz.version & 0xff, (unsigned long long)bz.pref_address,
	       bz.init_size >> 20);
	test_vm_free(&vm);
	boot_file_free(&f);
}
END_TEST

START_TEST(unpacks_to_pvh_elf)
{
	struct boot_cfg cfg = { .kernel_path = kernel_path, .cmdline = "console=ttyS0",
				.mode = BOOT_PVH, .ncpus = 2 };
	struct boot_file f, vmlinux;
	struct boot_entry entry;
	struct kv_err err = { 0 };
	struct test_vm vm;
	struct bz_info bz;
	uint32_t pvh_entry;
	char *dir = test_tmpdir();
	char *cache = test_path(dir, "cache");

	ck_assert_msg(boot_file_open(kernel_path, &f, &err) == 0, "%s", err.msg);
	ck_assert_msg(bz_parse(&f, &bz, &err) == 0, "%s", err.msg);
	ck_assert_msg(boot_unpack_bzimage(&f, &bz, NULL, &vmlinux, &err) == 0, "%s", err.msg);
	ck_assert_msg(pvh_find_entry(&vmlinux, "vmlinux", &pvh_entry, &err) == 0, "%s", err.msg);
	printf("real kernel: %llu-byte vmlinux, PVH entry 0x%x\n",
	       (unsigned long long)vmlinux.size, pvh_entry);

	/* Through boot_load twice: the second run reads the cache. */
	cfg.cache_dir = cache;
	for (int run = 0; run < 2; run++) {
		test_vm_init(&vm, GUEST_MEM);
		ck_assert_msg(boot_load(&vm.gm, &cfg, &entry, &err) == 0, "%s", err.msg);
		ck_assert_int_eq(entry.kind, ENTRY_PVH32);
		ck_assert_uint_eq(entry.rip, pvh_entry);
		test_vm_free(&vm);
	}
	boot_file_free(&vmlinux);
	boot_file_free(&f);
	free(cache);
	test_tmpdir_remove(dir);
}
END_TEST

int main(void)
{
	Suite *s;
	TCase *tc;

	kernel_path = getenv("KVMINI_TEST_BZIMAGE");
	if (!kernel_path || !*kernel_path) {
		printf("real kernel not available: skipped (set KVMINI_TEST_BZIMAGE to a vmlinuz)\n");
		return 77;
	}
	s = suite_create("real_kernel");
	tc = tcase_create("debian");
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, header_parses);
	tcase_add_test(tc, loads_as_bzimage);
	tcase_add_test(tc, unpacks_to_pvh_elf);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
