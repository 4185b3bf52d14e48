/* cpio writer: exact bytes of the newc format, -ENOSPC and bad names, a
 * round trip through the system's `cpio -i`, and boot_load appending the
 * archive to an initrd (4-aligned, the size covering both). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini/cpio.h"
#include "kvmini/layout.h"
#include "../check_main.h"
#include "test_util.h"

/* Quotes, a newline, UTF-8 (e acute, check mark), a tab and a backslash. */
static const char cmd[] = "echo \"a 'b'\"\nprintf '%s\\n' 'h\xc3\xa9llo \xe2\x9c\x93'\t# \\ end\n";

static size_t build(uint8_t *buf, size_t cap)
{
	struct cpio_writer w;

	cpio_init(&w, buf, cap);
	ck_assert_int_eq(cpio_add_dir(&w, "kvmini", 0755), 0);
	ck_assert_int_eq(cpio_add_file(&w, "kvmini/exec", 0644, cmd, strlen(cmd)), 0);
	ck_assert_int_eq(cpio_finish(&w), 0);
	return w.len;
}

START_TEST(layout_and_sizes)
{
	uint8_t buf[1024];
	size_t len = build(buf, sizeof(buf));
	size_t want = cpio_entry_size("kvmini", 0) + cpio_entry_size("kvmini/exec", strlen(cmd)) +
		      cpio_trailer_size();

	ck_assert_uint_eq(len, want);
	ck_assert_uint_eq(len % 4, 0);
	ck_assert_mem_eq(buf, "070701", 6);
	/* mode of the first entry: directory 0755 */
	ck_assert_mem_eq(buf + 14, "000041ED", 8);
	/* namesize of "kvmini" with its NUL */
	ck_assert_mem_eq(buf + 94, "00000007", 8);
	ck_assert_mem_eq(buf + 110, "kvmini", 7);
	ck_assert(memmem(buf, len, "TRAILER!!!", 11));
	ck_assert(memmem(buf, len, cmd, strlen(cmd)));
}
END_TEST

START_TEST(errors)
{
	uint8_t buf[200];
	struct cpio_writer w;

	cpio_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(cpio_add_dir(&w, "/abs", 0755), -EINVAL);
	cpio_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(cpio_add_dir(&w, "", 0755), -EINVAL);
	cpio_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(cpio_add_file(&w, "f", 0100644, "x", 1), -EINVAL); /* type bits */
	cpio_init(&w, buf, sizeof(buf));
	ck_assert_int_eq(cpio_add_file(&w, "f", 0644, NULL, 1), -EINVAL);
	/* Too small: fails, writes nothing past cap, and stays failed. */
	cpio_init(&w, buf, 120);
	ck_assert_int_eq(cpio_add_file(&w, "file", 0644, "0123456789", 10), -ENOSPC);
	ck_assert_uint_eq(w.len, 0);
	ck_assert_int_eq(cpio_finish(&w), -ENOSPC);
}
END_TEST

START_TEST(round_trip_through_cpio)
{
	uint8_t buf[1024], got[1024];
	char *dir, *archive, *command, *path;
	struct stat st;
	size_t len;
	FILE *f;
	int rc;

	if (system("command -v cpio >/dev/null 2>&1") != 0)
		ck_abort_msg("cpio is not installed (tools/install-deps installs it)");
	len = build(buf, sizeof(buf));
	dir = test_tmpdir();
	archive = test_path(dir, "extra.cpio");
	test_write_file(archive, buf, len);
	ck_assert_int_ne(asprintf(&command, "cd '%s' && mkdir out && cd out && "
				  "cpio -i --quiet -d --no-absolute-filenames < ../extra.cpio", dir), -1);
	rc = system(command);
	ck_assert_int_eq(rc, 0);
	path = test_path(dir, "out/kvmini");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISDIR(st.st_mode));
	free(path);
	path = test_path(dir, "out/kvmini/exec");
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert(S_ISREG(st.st_mode));
	ck_assert_uint_eq(st.st_mode & 07777, 0644);
	f = fopen(path, "rb");
	ck_assert_ptr_nonnull(f);
	ck_assert_uint_eq(fread(got, 1, sizeof(got), f), strlen(cmd));
	fclose(f);
	ck_assert_mem_eq(got, cmd, strlen(cmd));
	free(path);
	free(command);
	free(archive);
	test_tmpdir_remove(dir);
}
END_TEST

/* The initrd (odd size) then the archive at the next 4-aligned offset,
 * zeros between, and the zero page's ramdisk_size covering both. */
START_TEST(appended_to_initrd)
{
	struct test_boot c;
	uint8_t archive[1024], initrd[1001];
	size_t alen = build(archive, sizeof(archive));
	size_t img_len;
	uint8_t *img = test_make_bzimage(&(struct test_bz_opts){ 0 }, &img_len);
	uint64_t rd, size;

	/* The loader wants an initramfs magic (cpio newc) at the start. */
	memcpy(initrd, "070701", 6);
	for (size_t i = 6; i < sizeof(initrd); i++)
		initrd[i] = (uint8_t)(i * 7 + 1);
	test_boot_init(&c, "bzImage", img, img_len, 64 * MiB);
	test_write_file(c.initrd, initrd, sizeof(initrd));
	c.cfg.initrd_path = c.initrd;
	c.cfg.initrd_extra = archive;
	c.cfg.initrd_extra_len = alen;
	ck_assert_msg(test_boot_load(&c) == 0, "%s", c.err.msg);
	rd = test_get32(c.vm.mem + LAYOUT_ZERO_PAGE + 0x218);
	size = test_get32(c.vm.mem + LAYOUT_ZERO_PAGE + 0x21c);
	ck_assert_uint_eq(size, 1004 + alen);
	ck_assert_mem_eq(c.vm.mem + rd, initrd, sizeof(initrd));
	ck_assert_mem_eq(c.vm.mem + rd + 1001, "\0\0\0", 3);
	ck_assert_mem_eq(c.vm.mem + rd + 1004, archive, alen);
	test_boot_fini(&c);
	free(img);
}
END_TEST

/* The same through PVH: the module list entry covers initrd + archive. */
START_TEST(appended_to_initrd_pvh)
{
	struct test_boot c;
	uint8_t archive[1024], initrd[1001];
	size_t alen = build(archive, sizeof(archive));
	size_t img_len;
	uint8_t *img = test_make_elf(&(struct test_elf_opts){ 0 }, &img_len);
	uint64_t rd, size;

	memset(initrd, 0x5a, sizeof(initrd));
	memcpy(initrd, "070701", 6); /* an initramfs magic, as the loader wants */
	test_boot_init(&c, "vmlinux", img, img_len, 64 * MiB);
	test_write_file(c.initrd, initrd, sizeof(initrd));
	c.cfg.initrd_path = c.initrd;
	c.cfg.initrd_extra = archive;
	c.cfg.initrd_extra_len = alen;
	ck_assert_msg(test_boot_load(&c) == 0, "%s", c.err.msg);
	ck_assert_int_eq(c.entry.kind, ENTRY_PVH32);
	rd = test_get64(c.vm.mem + LAYOUT_PVH_MODLIST);
	size = test_get64(c.vm.mem + LAYOUT_PVH_MODLIST + 8);
	ck_assert_uint_eq(size, 1004 + alen);
	ck_assert_mem_eq(c.vm.mem + rd, initrd, sizeof(initrd));
	ck_assert_mem_eq(c.vm.mem + rd + 1004, archive, alen);
	test_boot_fini(&c);
	free(img);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("cpio");
	TCase *tc = tcase_create("writer");

	tcase_add_test(tc, layout_and_sizes);
	tcase_add_test(tc, errors);
	tcase_add_test(tc, round_trip_through_cpio);
	tcase_add_test(tc, appended_to_initrd);
	tcase_add_test(tc, appended_to_initrd_pvh);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
