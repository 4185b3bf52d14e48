/* bzImage loading through boot_load with synthetic bzImages written to a
 * temp dir: the zero page, kernel copy, initrd placement and command
 * line of a valid image, and one precise error per malformed input. */
#include <check.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kvmini/boot.h"
#include "kvmini/layout.h"
#include "../check_main.h"
#include "test_util.h"

#define ZP(vm, off) ((vm)->mem + LAYOUT_ZERO_PAGE + (off))

/* Every case boots with --boot bzimage. */
static void case_init(struct test_boot *c, size_t mem, const uint8_t *img, size_t len)
{
	test_boot_init(c, "vmlinuz", img, len, mem);
	c->cfg.mode = BOOT_BZIMAGE;
}

static uint8_t *default_image(size_t *len)
{
	struct test_bz_opts o = { 0 };

	return test_make_bzimage(&o, len);
}

START_TEST(valid_image)
{
	const char *cmdline = "console=ttyS0 panic=-1 quiet";
	struct test_boot c;
	uint8_t initrd[100 * 1024];
	size_t len;
	uint8_t *img = default_image(&len);
	uint32_t rd;

	for (size_t i = 0; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i * 7);
	memcpy(initrd, "070701", 6); /* a cpio magic, or boot_load refuses it */
	case_init(&c, 64 * MiB, img, len);
	test_write_file(c.initrd, initrd, sizeof(initrd));
	c.cfg.initrd_path = c.initrd;
	c.cfg.cmdline = cmdline;
	ck_assert_int_eq(test_boot_load(&c), 0);

	ck_assert_int_eq(c.entry.kind, ENTRY_LINUX64);
	ck_assert_uint_eq(c.entry.rip, 16 * MiB + 0x200);
	ck_assert_uint_eq(c.entry.boot_info, LAYOUT_ZERO_PAGE);
	ck_assert_mem_eq(c.vm.mem + 16 * MiB, img + TEST_BZ_PM_OFFSET, len - TEST_BZ_PM_OFFSET);

	/* Header copied from the file, then the loader's fields. */
	ck_assert_mem_eq(ZP(&c.vm, 0x202), "HdrS", 4);
	ck_assert_uint_eq(test_get16(ZP(&c.vm, 0x206)), 0x020f);
	ck_assert_uint_eq(*ZP(&c.vm, 0x1f1), TEST_BZ_SETUP_SECTS);
	ck_assert_uint_eq(*ZP(&c.vm, 0x1ef), 0); /* sentinel */
	ck_assert_uint_eq(*ZP(&c.vm, 0x210), 0xff);
	ck_assert_uint_eq(*ZP(&c.vm, 0x211), 0x81);
	ck_assert_uint_eq(test_get16(ZP(&c.vm, 0x224)), 0xfe00);
	ck_assert_uint_eq(test_get16(ZP(&c.vm, 0x1fa)), 0xffff);
	ck_assert_uint_eq(test_get32(ZP(&c.vm, 0x228)), LAYOUT_CMDLINE);
	ck_assert_uint_eq(test_get32(ZP(&c.vm, 0x0c8)), 0);
	ck_assert_uint_eq(test_get64(ZP(&c.vm, 0x070)), LAYOUT_ACPI_RSDP);
	ck_assert_str_eq((const char *)c.vm.mem + LAYOUT_CMDLINE, cmdline);

	/* Initrd: highest page-aligned spot below the top of RAM. */
	rd = test_get32(ZP(&c.vm, 0x218));
	ck_assert_uint_eq(test_get32(ZP(&c.vm, 0x21c)), sizeof(initrd));
	ck_assert_uint_eq(test_get32(ZP(&c.vm, 0x0c0)), 0);
	ck_assert_uint_eq(test_get32(ZP(&c.vm, 0x0c4)), 0);
	ck_assert_uint_eq(rd % 4096, 0);
	ck_assert_uint_eq(rd, (64 * MiB - sizeof(initrd)) & ~4095ULL);
	ck_assert_mem_eq(c.vm.mem + rd, initrd, sizeof(initrd));

	/* e820 in the zero page. */
	ck_assert_uint_eq(*ZP(&c.vm, 0x1e8), 3);
	ck_assert_uint_eq(test_get64(ZP(&c.vm, 0x2d0 + 40)), MiB);
	ck_assert_uint_eq(test_get64(ZP(&c.vm, 0x2d0 + 48)), 63 * MiB);
	ck_assert_uint_eq(test_get32(ZP(&c.vm, 0x2d0 + 56)), E820_RAM);
	ck_assert_uint_eq(test_get32(ZP(&c.vm, 0x2d0 + 36)), E820_RESERVED);

	/* boot_load also wrote the page tables and the ACPI tables. */
	ck_assert_uint_eq(test_get64(c.vm.mem + LAYOUT_PML4), LAYOUT_PDPT | 3);
	ck_assert_mem_eq(c.vm.mem + LAYOUT_ACPI_RSDP, "RSD PTR ", 8);
	free(img);
	test_boot_fini(&c);
}
END_TEST

START_TEST(auto_mode_and_setup_sects_zero)
{
	struct test_boot c;
	size_t len;
	uint8_t *img = default_image(&len);

	img[0x1f1] = 0; /* "0 means 4" */
	case_init(&c, 64 * MiB, img, len);
	c.cfg.mode = BOOT_AUTO;
	ck_assert_int_eq(test_boot_load(&c), 0);
	ck_assert_int_eq(c.entry.kind, ENTRY_LINUX64);
	ck_assert_mem_eq(c.vm.mem + 16 * MiB, img + TEST_BZ_PM_OFFSET, len - TEST_BZ_PM_OFFSET);
	free(img);
	test_boot_fini(&c);
}
END_TEST

START_TEST(load_address_choice)
{
	struct test_boot c;
	size_t len;
	uint8_t *img = default_image(&len);

	/* A usable pref_address is honoured. */
	test_put64(img + 0x258, 32 * MiB);
	case_init(&c, 64 * MiB, img, len);
	ck_assert_int_eq(test_boot_load(&c), 0);
	ck_assert_uint_eq(c.entry.rip, 32 * MiB + 0x200);
	test_boot_fini(&c);

	/* Misaligned pref_address, relocatable: the default address. */
	test_put64(img + 0x258, 32 * MiB + 4096);
	case_init(&c, 64 * MiB, img, len);
	ck_assert_int_eq(test_boot_load(&c), 0);
	ck_assert_uint_eq(c.entry.rip, LAYOUT_KERNEL_LOAD + 0x200);
	test_boot_fini(&c);

	/* Same, not relocatable: nowhere to go. */
	img[0x234] = 0;
	case_init(&c, 64 * MiB, img, len);
	ck_assert_int_eq(test_boot_load(&c), -EINVAL);
	test_assert_msg(c.err.msg, c.kernel, "not relocatable", NULL);
	free(img);
	test_boot_fini(&c);
}
END_TEST

START_TEST(initrd_below_kernel)
{
	struct test_boot c;
	size_t len;
	uint8_t *img = default_image(&len);
	uint32_t rd;

	/* 32 MiB guest, kernel [16, 24) MiB: 10 MiB only fit below it. */
	case_init(&c, 32 * MiB, img, len);
	test_write_sparse(c.initrd, 10 * MiB);
	c.cfg.initrd_path = c.initrd;
	ck_assert_int_eq(test_boot_load(&c), 0);
	rd = test_get32(ZP(&c.vm, 0x218));
	ck_assert_uint_eq(rd, 6 * MiB);
	free(img);
	test_boot_fini(&c);
}
END_TEST

START_TEST(initrd_addr_max_respected)
{
	struct test_boot c;
	size_t len;
	uint8_t *img = default_image(&len);
	uint32_t rd;

	test_put32(img + 0x22c, 48 * MiB - 1);
	case_init(&c, 64 * MiB, img, len);
	test_write_sparse(c.initrd, 3 * MiB + 5);
	c.cfg.initrd_path = c.initrd;
	ck_assert_int_eq(test_boot_load(&c), 0);
	rd = test_get32(ZP(&c.vm, 0x218));
	ck_assert_uint_le(rd + 3 * MiB + 5, 48 * MiB);
	ck_assert_uint_eq(rd, (48 * MiB - 3 * MiB - 5) & ~4095ULL);
	free(img);
	test_boot_fini(&c);
}
END_TEST

START_TEST(cmdline_limit)
{
	struct test_boot c;
	char line[300];
	size_t len;
	uint8_t *img = default_image(&len);

	memset(line, 'a', sizeof(line));
	line[255] = '\0'; /* exactly cmdline_size characters: accepted */
	case_init(&c, 64 * MiB, img, len);
	c.cfg.cmdline = line;
	ck_assert_int_eq(test_boot_load(&c), 0);
	ck_assert_str_eq((const char *)c.vm.mem + LAYOUT_CMDLINE, line);
	test_boot_fini(&c);

	line[255] = 'a';
	line[256] = '\0';
	case_init(&c, 64 * MiB, img, len);
	c.cfg.cmdline = line;
	ck_assert_int_eq(test_boot_load(&c), -EINVAL);
	test_assert_msg(c.err.msg, c.kernel, "command line is 256 bytes",
			"this kernel accepts at most 255", NULL);
	free(img);
	test_boot_fini(&c);
}
END_TEST

/* Malformed images: each mutation and the words its error must contain
 * (besides the file name). */
struct bad_case {
	const char *name;
	void (*mutate)(uint8_t *img, size_t *len);
	const char *want1;
	const char *want2;
};

static void cut_pm(uint8_t *img, size_t *len)
{
	*len = TEST_BZ_PM_OFFSET + 0x100;
}

static void cut_tiny(uint8_t *img, size_t *len)
{
	*len = 0x300;
}

static void cut_setup(uint8_t *img, size_t *len)
{
	img[0x1f1] = 60; /* setup would end past the file */
}

static void bad_flag(uint8_t *img, size_t *len)
{
	test_put16(img + 0x1fe, 0x1234);
}

static void bad_hdrs(uint8_t *img, size_t *len)
{
	memcpy(img + 0x202, "HdrX", 4);
}

static void old_version(uint8_t *img, size_t *len)
{
	test_put16(img + 0x206, 0x020b);
}

static void no_64bit(uint8_t *img, size_t *len)
{
	test_put16(img + 0x236, 0x7e);
}

static void no_syssize(uint8_t *img, size_t *len)
{
	test_put32(img + 0x1f4, 0);
}

static void huge_init_size(uint8_t *img, size_t *len)
{
	test_put32(img + 0x260, 64 * MiB);
}

static void neither(uint8_t *img, size_t *len)
{
	memset(img, 0x42, 0x300);
}

static const struct bad_case bad_cases[] = {
	{ "truncated pm", cut_pm, "truncated", "protected-mode kernel" },
	{ "truncated tiny", cut_tiny, "truncated", "too small" },
	{ "truncated setup", cut_setup, "truncated", "setup code" },
	{ "boot_flag", bad_flag, "bad boot_flag 0x1234", "not a bzImage" },
	{ "HdrS", bad_hdrs, "no \"HdrS\" setup header", "not a bzImage" },
	{ "version", old_version, "boot protocol 2.11 too old", "need 2.12" },
	{ "64-bit", no_64bit, "no 64-bit entry point", "XLF_KERNEL_64" },
	{ "syssize", no_syssize, "no protected-mode kernel", "syssize" },
	{ "too big", huge_init_size, "kernel needs 64 MiB from 0x1000000",
	  "guest has only 64 MiB: raise --memory" },
	{ "neither", neither, "neither a bzImage", "nor an ELF vmlinux" },
};

START_TEST(malformed_image)
{
	const struct bad_case *bc = &bad_cases[_i];
	struct test_boot c;
	size_t len;
	uint8_t *img = default_image(&len);

	bc->mutate(img, &len);
	for (int mode = BOOT_AUTO; mode <= BOOT_BZIMAGE; mode++) {
		case_init(&c, 64 * MiB, img, len);
		c.cfg.mode = (enum boot_mode)mode;
		ck_assert_msg(test_boot_load(&c) < 0, "%s: accepted", bc->name);
		ck_assert_int_lt(c.err.code, 0);
		test_assert_msg(c.err.msg, c.kernel, bc->want1, bc->want2, NULL);
		test_boot_fini(&c);
	}
	free(img);
}
END_TEST

START_TEST(bad_files)
{
	struct test_boot c;
	size_t len;
	uint8_t *img = default_image(&len);

	/* Missing kernel. */
	case_init(&c, 64 * MiB, NULL, 0);
	ck_assert_int_eq(test_boot_load(&c), -ENOENT);
	test_assert_msg(c.err.msg, c.kernel, "cannot open kernel", "No such file", NULL);
	/* A directory. */
	c.cfg.kernel_path = c.dir;
	ck_assert_int_eq(test_boot_load(&c), -EISDIR);
	test_assert_msg(c.err.msg, c.dir, "is a directory", NULL);
	/* Empty. */
	test_write_file(c.kernel, "", 0);
	c.cfg.kernel_path = c.kernel;
	ck_assert_int_eq(test_boot_load(&c), -EINVAL);
	test_assert_msg(c.err.msg, c.kernel, "empty", NULL);
	/* Missing initrd. */
	test_write_file(c.kernel, img, len);
	c.cfg.initrd_path = c.initrd;
	ck_assert_int_eq(test_boot_load(&c), -ENOENT);
	test_assert_msg(c.err.msg, c.initrd, "cannot open initrd", NULL);
	/* Initrd that is a directory. */
	c.cfg.initrd_path = c.dir;
	ck_assert_int_eq(test_boot_load(&c), -EISDIR);
	test_assert_msg(c.err.msg, c.dir, "is a directory", NULL);
	/* Initrd that is no cpio and no compressed data Linux knows. */
	test_write_file(c.initrd, "PK\3\4 a zip file", 15);
	c.cfg.initrd_path = c.initrd;
	ck_assert_int_eq(test_boot_load(&c), -EINVAL);
	test_assert_msg(c.err.msg, c.initrd, "not an initramfs", NULL);
	/* Zero padding, then zstd: accepted. */
	test_write_file(c.initrd, "\0\0\0\0\x28\xb5\x2f\xfd", 8);
	ck_assert_int_eq(test_boot_load(&c), 0);
	free(img);
	test_boot_fini(&c);
}
END_TEST

START_TEST(initrd_too_big)
{
	struct test_boot c;
	size_t len;
	uint8_t *img = default_image(&len);

	/* 32 MiB guest, kernel [16, 24) MiB: 15 MiB below, 8 above. */
	case_init(&c, 32 * MiB, img, len);
	test_write_sparse(c.initrd, 16 * MiB);
	c.cfg.initrd_path = c.initrd;
	ck_assert_int_lt(test_boot_load(&c), 0);
	test_assert_msg(c.err.msg, c.initrd, "initrd is 16 MiB", "does not fit",
			"raise --memory", NULL);
	free(img);
	test_boot_fini(&c);
}
END_TEST

START_TEST(elf_given_as_bzimage)
{
	struct test_elf_opts o = { 0 };
	struct test_boot c;
	size_t len;
	uint8_t *elf = test_make_elf(&o, &len);

	case_init(&c, 64 * MiB, elf, len);
	ck_assert_int_eq(test_boot_load(&c), -EINVAL);
	test_assert_msg(c.err.msg, c.kernel, "is an ELF vmlinux, not a bzImage", NULL);
	free(elf);
	test_boot_fini(&c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("bzimage");
	TCase *ok = tcase_create("valid");
	TCase *bad = tcase_create("malformed");

	tcase_add_test(ok, valid_image);
	tcase_add_test(ok, auto_mode_and_setup_sects_zero);
	tcase_add_test(ok, load_address_choice);
	tcase_add_test(ok, initrd_below_kernel);
	tcase_add_test(ok, initrd_addr_max_respected);
	tcase_add_test(ok, cmdline_limit);
	tcase_add_loop_test(bad, malformed_image, 0, sizeof(bad_cases) / sizeof(bad_cases[0]));
	tcase_add_test(bad, bad_files);
	tcase_add_test(bad, initrd_too_big);
	tcase_add_test(bad, elf_given_as_bzimage);
	suite_add_tcase(s, ok);
	suite_add_tcase(s, bad);
	return check_run_suite(s);
}
