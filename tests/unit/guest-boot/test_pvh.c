/* ELF/PVH loading through boot_load with synthetic ELF files: segment
 * copy and bss, hvm_start_info, module list and memory map, and the
 * errors for a missing note and bad program headers. */
#include <check.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "kvmini/boot.h"
#include "kvmini/layout.h"
#include "../check_main.h"
#include "test_util.h"

#define SI(vm, off) ((vm)->mem + LAYOUT_PVH_START_INFO + (off))

/* The ELF that @o describes, booted by content (BOOT_AUTO) on two vCPUs. */
static void case_init(struct test_boot *c, const struct test_elf_opts *o, size_t mem)
{
	size_t len;
	uint8_t *img = test_make_elf(o, &len);

	test_boot_init(c, "vmlinux", img, len, mem);
	free(img);
	c->cfg.ncpus = 2;
}

static void check_segment(const struct test_boot *c, uint64_t paddr, uint64_t filesz,
			  uint64_t memsz)
{
	for (uint64_t i = 0; i < filesz; i++)
		ck_assert_uint_eq(c->vm.mem[paddr + i], (uint8_t)(0x11 + TEST_ELF_SEG_OFF + i));
	for (uint64_t i = filesz; i < memsz; i++)
		ck_assert_uint_eq(c->vm.mem[paddr + i], 0);
}

START_TEST(valid_elf64)
{
	struct test_elf_opts o = { 0 };
	struct test_boot c;
	uint8_t initrd[8192];
	uint64_t mod, mm;

	memset(initrd, 0x5c, sizeof(initrd));
	memcpy(initrd, "070701", 6); /* a cpio magic, or boot_load refuses it */
	case_init(&c, &o, 64 * MiB);
	/* Stale bytes where bss goes: the loader must clear them. */
	memset(c.vm.mem + 16 * MiB, 0xee, 0x10000);
	test_write_file(c.initrd, initrd, sizeof(initrd));
	c.cfg.initrd_path = c.initrd;
	ck_assert_int_eq(test_boot_load(&c), 0);

	ck_assert_int_eq(c.entry.kind, ENTRY_PVH32);
	ck_assert_uint_eq(c.entry.rip, 16 * MiB + 0x100);
	ck_assert_uint_eq(c.entry.boot_info, LAYOUT_PVH_START_INFO);
	check_segment(&c, 16 * MiB, 0x2000, 0x5000);
	ck_assert_uint_eq(c.vm.mem[16 * MiB + 0x5000], 0xee); /* past memsz: untouched */

	ck_assert_uint_eq(test_get32(SI(&c.vm, 0)), 0x336ec578);
	ck_assert_uint_eq(test_get32(SI(&c.vm, 4)), 1);
	ck_assert_uint_eq(test_get32(SI(&c.vm, 8)), 0);
	ck_assert_uint_eq(test_get32(SI(&c.vm, 12)), 1);
	ck_assert_uint_eq(test_get64(SI(&c.vm, 16)), LAYOUT_PVH_MODLIST);
	ck_assert_uint_eq(test_get64(SI(&c.vm, 24)), LAYOUT_CMDLINE);
	ck_assert_uint_eq(test_get64(SI(&c.vm, 32)), LAYOUT_ACPI_RSDP);
	ck_assert_uint_eq(test_get64(SI(&c.vm, 40)), LAYOUT_PVH_MEMMAP);
	ck_assert_uint_eq(test_get32(SI(&c.vm, 48)), 3);
	ck_assert_str_eq((const char *)c.vm.mem + LAYOUT_CMDLINE, "console=ttyS0");

	mod = test_get64(c.vm.mem + LAYOUT_PVH_MODLIST);
	ck_assert_uint_eq(mod, 64 * MiB - sizeof(initrd));
	ck_assert_uint_eq(test_get64(c.vm.mem + LAYOUT_PVH_MODLIST + 8), sizeof(initrd));
	ck_assert_mem_eq(c.vm.mem + mod, initrd, sizeof(initrd));

	mm = LAYOUT_PVH_MEMMAP + 2 * 24; /* third entry: RAM from 1 MiB */
	ck_assert_uint_eq(test_get64(c.vm.mem + mm), MiB);
	ck_assert_uint_eq(test_get64(c.vm.mem + mm + 8), 63 * MiB);
	ck_assert_uint_eq(test_get32(c.vm.mem + mm + 16), E820_RAM);
	ck_assert_uint_eq(test_get32(c.vm.mem + LAYOUT_PVH_MEMMAP + 24 + 16), E820_RESERVED);

	/* GDT for the 32-bit entry, and ACPI for rsdp_paddr. */
	ck_assert_uint_eq(test_get64(c.vm.mem + LAYOUT_GDT + GDT_SEL_CODE32), 0x00cf9b000000ffffULL);
	ck_assert_mem_eq(c.vm.mem + LAYOUT_ACPI_RSDP, "RSD PTR ", 8);
	test_boot_fini(&c);
}
END_TEST

START_TEST(valid_elf32_no_initrd)
{
	struct test_elf_opts o = { .elf32 = true, .paddr = 2 * MiB, .entry = 2 * MiB + 0x40 };
	struct test_boot c;

	case_init(&c, &o, 16 * MiB);
	c.cfg.mode = BOOT_PVH;
	ck_assert_int_eq(test_boot_load(&c), 0);
	ck_assert_int_eq(c.entry.kind, ENTRY_PVH32);
	ck_assert_uint_eq(c.entry.rip, 2 * MiB + 0x40);
	check_segment(&c, 2 * MiB, 0x2000, 0x5000);
	ck_assert_uint_eq(test_get32(SI(&c.vm, 12)), 0);
	ck_assert_uint_eq(test_get64(SI(&c.vm, 16)), 0);
	test_boot_fini(&c);
}
END_TEST

START_TEST(initrd_avoids_segments)
{
	/* Segment memory reaches the top of RAM: the initrd goes below it. */
	struct test_elf_opts o = { .paddr = 8 * MiB, .memsz = 8 * MiB };
	struct test_boot c;

	case_init(&c, &o, 16 * MiB);
	test_write_sparse(c.initrd, MiB + 1);
	c.cfg.initrd_path = c.initrd;
	ck_assert_int_eq(test_boot_load(&c), 0);
	ck_assert_uint_eq(test_get64(c.vm.mem + LAYOUT_PVH_MODLIST), 7 * MiB - 4096);
	test_boot_fini(&c);
}
END_TEST

struct bad_elf {
	const char *name;
	struct test_elf_opts o;
	const char *want1;
	const char *want2;
};

static const struct bad_elf bad_elfs[] = {
	{ "no note", { .no_note = true }, "has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)",
	  "CONFIG_PVH=y or boot the bzImage" },
	{ "truncated segment", { .filesz = 0x10000, .memsz = 0x10000 }, "segment 0",
	  "past the end of the file" },
	{ "offset past end", { .offset = 0x100000 }, "segment 0", "past the end of the file" },
	{ "outside RAM", { .paddr = 128 * MiB }, "segment 0", "outside guest RAM" },
	{ "straddles RAM end", { .paddr = 64 * MiB - 0x1000 }, "outside guest RAM",
	  "raise --memory" },
	{ "below 1 MiB", { .paddr = 0x10000 }, "segment 0", "below 1 MiB" },
	{ "filesz > memsz", { .memsz = 0x1000 }, "segment 0", "exceeds memory size" },
	{ "overflow", { .paddr = 0xfffffffffffff000ULL, .memsz = 0x2000, .entry = 0x1000000 },
	  "segment 0", "overflows" },
	{ "not ET_EXEC", { .type = ET_DYN }, "not an executable", "ET_EXEC" },
	{ "entry outside", { .entry = 32 * MiB }, "PVH entry 0x2000000", "no loaded segment" },
};

/* Issue 9 item 3: guest RAM must own a copy of the kernel. Loaded into
 * memory from gm_create (what kvmini runs with), then the file is
 * rewritten in place and truncated, as `cp new vmlinux` and a failed
 * build would do under a running guest: guest memory must keep the
 * bytes that were loaded, and reading it must not fault (a mapping of
 * the file would show the new bytes, then SIGBUS past the new end). */
START_TEST(guest_owns_its_kernel)
{
	struct test_elf_opts o = { 0 };
	struct guest_mem gm;
	struct test_boot c;
	struct kv_err e;
	uint8_t *seg, *junk;
	size_t len;
	int fd;

	case_init(&c, &o, 16 * MiB);
	ck_assert_int_eq(gm_create(&gm, 64 * MiB, NULL, &e), 0);
	ck_assert_int_eq(boot_load(&gm, &c.cfg, &c.entry, &c.err), 0);
	seg = gm_ptr(&gm, 16 * MiB, 0x2000);
	ck_assert_ptr_nonnull(seg);
	for (size_t i = 0; i < 0x2000; i++)
		ck_assert_uint_eq(seg[i], (uint8_t)(0x11 + TEST_ELF_SEG_OFF + i));

	fd = open(c.kernel, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	len = TEST_ELF_SEG_OFF + 0x2000;
	junk = malloc(len);
	ck_assert_ptr_nonnull(junk);
	memset(junk, 0xa5, len);
	ck_assert_int_eq(pwrite(fd, junk, len, 0), (ssize_t)len); /* rewritten in place */
	for (size_t i = 0; i < 0x2000; i++)
		ck_assert_uint_eq(seg[i], (uint8_t)(0x11 + TEST_ELF_SEG_OFF + i));
	ck_assert_int_eq(ftruncate(fd, 0), 0);                   /* and truncated */
	for (size_t i = 0; i < 0x2000; i++)
		ck_assert_uint_eq(seg[i], (uint8_t)(0x11 + TEST_ELF_SEG_OFF + i));
	close(fd);
	free(junk);
	gm_destroy(&gm);
	test_boot_fini(&c);
}
END_TEST

START_TEST(malformed_elf)
{
	const struct bad_elf *b = &bad_elfs[_i];
	struct test_boot c;

	case_init(&c, &b->o, 64 * MiB);
	ck_assert_msg(test_boot_load(&c) < 0, "%s: accepted", b->name);
	test_assert_msg(c.err.msg, c.kernel, b->want1, b->want2, NULL);
	test_boot_fini(&c);
}
END_TEST

START_TEST(truncated_headers)
{
	struct test_elf_opts o = { 0 };
	struct test_boot c;
	size_t len;
	uint8_t *img = test_make_elf(&o, &len);

	case_init(&c, &o, 64 * MiB);
	/* ELF header only: the program headers are missing. */
	test_write_file(c.kernel, img, sizeof(Elf64_Ehdr));
	ck_assert_int_lt(test_boot_load(&c), 0);
	test_assert_msg(c.err.msg, c.kernel, "program header", NULL);
	/* Not even a whole ELF header. */
	test_write_file(c.kernel, img, 20);
	ck_assert_int_lt(test_boot_load(&c), 0);
	test_assert_msg(c.err.msg, c.kernel, "ELF header", NULL);
	free(img);
	test_boot_fini(&c);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("pvh");
	TCase *ok = tcase_create("valid");
	TCase *bad = tcase_create("malformed");

	tcase_add_test(ok, valid_elf64);
	tcase_add_test(ok, valid_elf32_no_initrd);
	tcase_add_test(ok, initrd_avoids_segments);
	tcase_add_test(ok, guest_owns_its_kernel);
	tcase_add_loop_test(bad, malformed_elf, 0, sizeof(bad_elfs) / sizeof(bad_elfs[0]));
	tcase_add_test(bad, truncated_headers);
	suite_add_tcase(s, ok);
	suite_add_tcase(s, bad);
	return check_run_suite(s);
}
