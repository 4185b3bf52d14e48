/* --boot pvh with a bzImage: the XZ payload (made here with liblzma's
 * encoder) is unpacked to the ELF vmlinux, booted through PVH, and
 * cached; other compressions are refused with a hint. */
#include <check.h>
#include <dirent.h>
#include <errno.h>
#include <lzma.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "kvmini/boot.h"
#include "kvmini/layout.h"
#include "../../../guest-boot/bzimage.h"
#include "../../../guest-boot/elf_pvh.h"
#include "../../../guest-boot/kernel_cache.h"
#include "../../../guest-boot/unpack_xz.h"
#include "../check_main.h"
#include "test_util.h"

/* XZ stream of @elf followed by Kbuild's 4-byte size trailer. */
static uint8_t *xz_payload(const uint8_t *elf, size_t elf_len, size_t *out_len)
{
	size_t cap = lzma_stream_buffer_bound(elf_len) + 4, pos = 0;
	uint8_t *buf = malloc(cap);

	ck_assert_ptr_nonnull(buf);
	ck_assert_int_eq(lzma_easy_buffer_encode(1, LZMA_CHECK_CRC32, NULL, elf, elf_len,
						 buf, &pos, cap), LZMA_OK);
	test_put32(buf + pos, (uint32_t)elf_len);
	*out_len = pos + 4;
	return buf;
}

/* A bzImage whose payload is the XZ'd ELF with PVH entry @entry. */
static uint8_t *packed_bzimage(uint64_t entry, size_t *len)
{
	struct test_elf_opts eo = { .entry = entry };
	size_t elf_len, xz_len;
	uint8_t *elf = test_make_elf(&eo, &elf_len);
	uint8_t *xz = xz_payload(elf, elf_len, &xz_len);
	struct test_bz_opts bo = { .pm_size = 0x8000, .payload = xz, .payload_len = xz_len };
	uint8_t *img = test_make_bzimage(&bo, len);

	free(elf);
	free(xz);
	return img;
}

/* --boot pvh of @img with a cache dir that does not exist yet. */
static void case_init(struct test_boot *c, const uint8_t *img, size_t len)
{
	test_boot_init(c, "vmlinuz", img, len, 64 * MiB);
	c->cfg.cmdline = "quiet";
	c->cfg.mode = BOOT_PVH;
	c->cfg.cache_dir = c->cache;
}

/* Each load starts from zeroed guest RAM. */
static int case_load(struct test_boot *c)
{
	memset(c->vm.mem, 0, c->vm.size);
	return test_boot_load(c);
}

/* The one vmlinux-* file in the cache dir (malloc'd path), or NULL. */
static char *cache_file(const struct test_boot *c)
{
	DIR *d = opendir(c->cache);
	struct dirent *de;
	char *found = NULL;

	if (!d)
		return NULL;
	while ((de = readdir(d)) != NULL) {
		if (strncmp(de->d_name, "vmlinux-", 8) != 0)
			continue;
		ck_assert_ptr_null(found);
		ck_assert_ptr_null(strstr(de->d_name, "tmp")); /* no temp file left */
		found = test_path(c->cache, de->d_name);
	}
	closedir(d);
	return found;
}

START_TEST(unpack_boots_pvh_and_caches)
{
	struct test_boot c;
	size_t len, elf_len;
	uint8_t *img = packed_bzimage(16 * MiB + 0x100, &len);
	struct test_elf_opts other = { .entry = 16 * MiB + 0x180 };
	uint8_t *elf2;
	char *cached;

	case_init(&c, img, len);
	ck_assert_int_eq(case_load(&c), 0);
	ck_assert_int_eq(c.entry.kind, ENTRY_PVH32);
	ck_assert_uint_eq(c.entry.rip, 16 * MiB + 0x100);
	ck_assert_uint_eq(c.vm.mem[16 * MiB], (uint8_t)(0x11 + TEST_ELF_SEG_OFF));
	ck_assert_uint_eq(test_get32(c.vm.mem + LAYOUT_PVH_START_INFO), 0x336ec578);

	cached = cache_file(&c);
	ck_assert_ptr_nonnull(cached);
	/* Swap the cached vmlinux for one with another entry: a second boot
	 * that reports that entry has read the cache, not the payload. */
	elf2 = test_make_elf(&other, &elf_len);
	test_write_file(cached, elf2, elf_len);
	ck_assert_int_eq(case_load(&c), 0);
	ck_assert_uint_eq(c.entry.rip, 16 * MiB + 0x180);

	/* A cache entry that is not ELF is ignored and rewritten. */
	test_write_file(cached, "garbage", 7);
	ck_assert_int_eq(case_load(&c), 0);
	ck_assert_uint_eq(c.entry.rip, 16 * MiB + 0x100);
	free(cached);
	cached = cache_file(&c);
	ck_assert_ptr_nonnull(cached);
	{
		struct stat st;

		ck_assert_int_eq(stat(cached, &st), 0);
		ck_assert_uint_eq((uint64_t)st.st_size, elf_len);
	}
	free(cached);
	free(elf2);
	free(img);
	test_boot_fini(&c);
}
END_TEST

/* The key: every field of the file's identity changes it; the same
 * status gives the same name; content names are checked before use. */
START_TEST(cache_key_names)
{
	struct stat base, st;
	char a[KCACHE_NAME_MAX], b[KCACHE_NAME_MAX], name[KCACHE_NAME_MAX];
	char *dir = test_tmpdir(), *path;

	memset(&base, 0, sizeof(base));
	base.st_dev = 0x803;
	base.st_ino = 1234567;
	base.st_size = 8247232;
	base.st_mtim = (struct timespec){ 1700000000, 123456789 };
	base.st_ctim = (struct timespec){ 1700000001, 5 };
	ck_assert_int_eq(kcache_key_name(&base, a, sizeof(a)), 0);
	st = base;
	ck_assert_int_eq(kcache_key_name(&st, b, sizeof(b)), 0);
	ck_assert_str_eq(a, b);
	for (int field = 0; field < 6; field++) {
		st = base;
		switch (field) {
		case 0: st.st_dev++; break;
		case 1: st.st_ino++; break;
		case 2: st.st_size++; break;
		case 3: st.st_mtim.tv_sec++; break;
		case 4: st.st_mtim.tv_nsec++; break;
		case 5: st.st_ctim.tv_nsec++; break;
		}
		ck_assert_int_eq(kcache_key_name(&st, b, sizeof(b)), 0);
		ck_assert_msg(strcmp(a, b), "field %d does not change the key %s", field, a);
	}
	ck_assert_int_eq(kcache_key_name(&base, a, 8), -ENAMETOOLONG);

	ck_assert_int_eq(kcache_content_name(0xdf642659f4e63026ULL, 0x8a00, name, sizeof(name)), 0);
	ck_assert_str_eq(name, "vmlinux-df642659f4e63026-8a00");
	ck_assert(kcache_content_name_ok(name));
	ck_assert(!kcache_content_name_ok("vmlinux-df642659f4e63026"));
	ck_assert(!kcache_content_name_ok("vmlinux-df642659f4e6302-8a00"));
	ck_assert(!kcache_content_name_ok("vmlinux-df642659f4e63026-8a00/../x"));
	ck_assert(!kcache_content_name_ok("../../etc/passwd"));
	ck_assert(!kcache_content_name_ok("vmlinux-DF642659F4E63026-8a00"));

	/* Records round-trip; a damaged one is refused, a missing one is ENOENT. */
	ck_assert_int_eq(kcache_key_write(dir, "key-1", name), 0);
	ck_assert_int_eq(kcache_key_read(dir, "key-1", b, sizeof(b)), 0);
	ck_assert_str_eq(b, name);
	ck_assert_int_eq(kcache_key_write(dir, "key-2", "../../etc/passwd"), -EINVAL);
	path = test_path(dir, "key-2");
	test_write_file(path, "../../etc/passwd\n", 17);
	ck_assert_int_eq(kcache_key_read(dir, "key-2", b, sizeof(b)), -EINVAL);
	ck_assert_int_eq(kcache_key_read(dir, "key-3", b, sizeof(b)), -ENOENT);
	free(path);
	test_tmpdir_remove(dir);
}
END_TEST

/* Entries in @dir whose names start with @prefix (temp files excluded). */
static unsigned count_entries(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	unsigned n = 0;

	ck_assert_ptr_nonnull(d);
	while ((de = readdir(d)) != NULL)
		if (!strncmp(de->d_name, prefix, strlen(prefix)) && !strstr(de->d_name, "tmp"))
			n++;
	closedir(d);
	return n;
}

/* A bzImage of 1 MiB (far more than the head kvmini reads up front)
 * whose payload is the XZ'd ELF with PVH entry @entry. */
static uint8_t *big_bzimage(uint64_t entry, size_t *len)
{
	struct test_elf_opts eo = { .entry = entry };
	size_t elf_len, xz_len;
	uint8_t *elf = test_make_elf(&eo, &elf_len);
	uint8_t *xz = xz_payload(elf, elf_len, &xz_len);
	struct test_bz_opts bo = { .pm_size = 1 * MiB, .payload = xz, .payload_len = xz_len };
	uint8_t *img = test_make_bzimage(&bo, len);

	free(elf);
	free(xz);
	return img;
}

/* boot_unpack_bzimage on the file at @path; returns the bytes it read
 * of the bzImage and the entry of what it gave, and whether that came
 * from a cache file (fd) rather than memory. */
static uint64_t unpack_once(const char *path, const char *cache, uint32_t *entry, bool *from_file)
{
	struct boot_file f, out;
	struct bz_info bz;
	struct kv_err e = { 0 };
	uint64_t read;

	ck_assert_msg(boot_file_open(path, &f, &e) == 0, "%s", e.msg);
	ck_assert_msg(bz_parse(&f, &bz, &e) == 0, "%s", e.msg);
	ck_assert_msg(boot_unpack_bzimage(&f, &bz, cache, &out, &e) == 0, "%s", e.msg);
	ck_assert_msg(pvh_find_entry(&out, "vmlinux", entry, &e) == 0, "%s", e.msg);
	*from_file = out.fd >= 0;
	read = f.bytes_read;
	boot_file_free(&out);
	boot_file_free(&f);
	return read;
}

/* A boot whose key record exists reads the bzImage's head and the
 * payload's first and last bytes, not the whole file (no CRC of 8 MiB
 * on every boot); a new key (the file touched, or rewritten even with
 * its mtime set back) costs one hash, and new content one unpack. */
START_TEST(cache_keyed_by_file_identity)
{
	size_t len;
	uint8_t *img = big_bzimage(16 * MiB + 0x100, &len), *img2;
	char *dir = test_tmpdir();
	char *path = test_path(dir, "vmlinuz"), *cache = test_path(dir, "cache");
	struct timespec times[2] = { { 1600000000, 0 }, { 1600000000, 0 } };
	struct stat st;
	uint32_t entry;
	bool from_file;
	uint64_t n;
	int fd;

	test_write_file(path, img, len);
	/* First boot: unpacked (the whole file hashed, the payload read). */
	n = unpack_once(path, cache, &entry, &from_file);
	ck_assert_uint_ge(n, len);
	ck_assert(!from_file);
	ck_assert_uint_eq(entry, 16 * MiB + 0x100);
	ck_assert_uint_eq(count_entries(cache, "vmlinux-"), 1);
	ck_assert_uint_eq(count_entries(cache, "key-"), 1);

	/* Same file: found by its key, reading only the head. */
	n = unpack_once(path, cache, &entry, &from_file);
	ck_assert_msg(n <= BOOT_HEAD_MAX + 16, "a cache hit read %llu bytes of a %zu-byte bzImage",
		      (unsigned long long)n, len);
	ck_assert(from_file);
	ck_assert_uint_eq(entry, 16 * MiB + 0x100);

	/* Touched: a new key, the content hashed and found, no unpack. */
	ck_assert_int_eq(utimensat(AT_FDCWD, path, times, 0), 0);
	n = unpack_once(path, cache, &entry, &from_file);
	ck_assert_uint_ge(n, len);
	ck_assert(from_file);
	ck_assert_uint_eq(count_entries(cache, "vmlinux-"), 1);
	ck_assert_uint_eq(count_entries(cache, "key-"), 2);
	n = unpack_once(path, cache, &entry, &from_file); /* and the new key now hits */
	ck_assert_uint_le(n, BOOT_HEAD_MAX + 16);

	/* Rewritten in place, same size, mtime set back: the ctime still
	 * moved, so the new kernel is unpacked, not the old one served. */
	img2 = big_bzimage(16 * MiB + 0x180, &len);
	fd = open(path, O_WRONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(pwrite(fd, img2, len, 0), (ssize_t)len);
	ck_assert_int_eq(futimens(fd, times), 0);
	close(fd);
	ck_assert_int_eq(stat(path, &st), 0);
	ck_assert_int_eq(st.st_mtim.tv_sec, 1600000000);
	n = unpack_once(path, cache, &entry, &from_file);
	ck_assert_uint_eq(entry, 16 * MiB + 0x180);
	ck_assert(!from_file);
	ck_assert_uint_eq(count_entries(cache, "vmlinux-"), 2);

	free(img);
	free(img2);
	free(path);
	free(cache);
	test_tmpdir_remove(dir);
}
END_TEST

/* A key record whose entry was removed (or is damaged) is not trusted:
 * the content is hashed and unpacked again. */
START_TEST(cache_key_without_entry)
{
	size_t len;
	uint8_t *img = big_bzimage(16 * MiB + 0x100, &len);
	char *dir = test_tmpdir();
	char *path = test_path(dir, "vmlinuz"), *cache = test_path(dir, "cache");
	struct test_boot dummy = { .cache = cache };
	char *entry_path;
	uint32_t entry;
	bool from_file;

	test_write_file(path, img, len);
	unpack_once(path, cache, &entry, &from_file);
	entry_path = cache_file(&dummy);
	ck_assert_ptr_nonnull(entry_path);
	ck_assert_int_eq(unlink(entry_path), 0);
	unpack_once(path, cache, &entry, &from_file);
	ck_assert(!from_file);
	ck_assert_uint_eq(entry, 16 * MiB + 0x100);
	ck_assert_int_eq(access(entry_path, F_OK), 0); /* stored again */
	free(entry_path);
	free(img);
	free(path);
	free(cache);
	test_tmpdir_remove(dir);
}
END_TEST

/* The cache entry keeps the vmlinux's zero pages as holes, and both the
 * first boot (from memory) and the next (from the sparse file) give the
 * guest exactly the segment, zeros included. */
START_TEST(cache_entry_is_sparse)
{
	struct test_elf_opts eo = { .filesz = 0x2000, .memsz = 0x2000 };
	size_t elf_len, xz_len, len;
	uint8_t *elf = test_make_elf(&eo, &elf_len), *xz, *img;
	struct test_bz_opts bo = { .pm_size = 0x8000 };
	struct test_boot c;
	char *cached;
	int fd;

	memset(elf + TEST_ELF_SEG_OFF + 0x1000, 0, 0x1000); /* the segment's second page */
	xz = xz_payload(elf, elf_len, &xz_len);
	bo.payload = xz;
	bo.payload_len = xz_len;
	img = test_make_bzimage(&bo, &len);
	case_init(&c, img, len);
	for (int boot = 0; boot < 2; boot++) {
		memset(c.vm.mem, 0, c.vm.size);
		ck_assert_int_eq(test_boot_load(&c), 0);
		ck_assert_mem_eq(c.vm.mem + 16 * MiB, elf + TEST_ELF_SEG_OFF, 0x2000);
	}
	cached = cache_file(&c);
	ck_assert_ptr_nonnull(cached);
	fd = open(cached, O_RDONLY);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(lseek(fd, 0, SEEK_END), (off_t)elf_len);
	ck_assert_int_eq(lseek(fd, 0, SEEK_HOLE), TEST_ELF_SEG_OFF + 0x1000);
	close(fd);
	free(cached);
	free(img);
	free(xz);
	free(elf);
	test_boot_fini(&c);
}
END_TEST

START_TEST(no_cache_dir)
{
	struct test_boot c;
	size_t len;
	uint8_t *img = packed_bzimage(16 * MiB + 0x100, &len);

	case_init(&c, img, len);
	c.cfg.cache_dir = NULL;
	ck_assert_int_eq(case_load(&c), 0);
	ck_assert_uint_eq(c.entry.rip, 16 * MiB + 0x100);
	ck_assert_ptr_null(cache_file(&c));
	free(img);
	test_boot_fini(&c);
}
END_TEST

START_TEST(uncreatable_cache_is_a_warning)
{
	struct test_boot c;
	size_t len;
	uint8_t *img = packed_bzimage(16 * MiB + 0x100, &len);
	char *bad;

	case_init(&c, img, len);
	/* Under a regular file: mkdir must fail with ENOTDIR. */
	bad = test_path(c.kernel, "cache");
	c.cfg.cache_dir = bad;
	ck_assert_int_eq(case_load(&c), 0);
	ck_assert_int_eq(c.entry.kind, ENTRY_PVH32);
	free(bad);
	free(img);
	test_boot_fini(&c);
}
END_TEST

START_TEST(other_compressions_refused)
{
	static const struct { uint8_t magic[4]; const char *name; } fmts[] = {
		{ { 0x1f, 0x8b, 0x08, 0x00 }, "gzip" },
		{ { 0x28, 0xb5, 0x2f, 0xfd }, "zstd" },
		{ { 0x01, 0x02, 0x03, 0x04 }, "unknown compression" },
	};

	for (size_t i = 0; i < sizeof(fmts) / sizeof(fmts[0]); i++) {
		uint8_t payload[64] = { 0 };
		struct test_bz_opts bo = { .payload = payload, .payload_len = sizeof(payload) };
		struct test_boot c;
		size_t len;
		uint8_t *img;

		memcpy(payload, fmts[i].magic, 4);
		img = test_make_bzimage(&bo, &len);
		case_init(&c, img, len);
		ck_assert_int_lt(case_load(&c), 0);
		test_assert_msg(c.err.msg, c.kernel, fmts[i].name, "--boot bzimage", NULL);
		free(img);
		test_boot_fini(&c);
	}
}
END_TEST

START_TEST(corrupt_payloads)
{
	struct test_boot c;
	size_t len;
	uint8_t *img = packed_bzimage(16 * MiB + 0x100, &len);

	/* Damage the middle of the XZ stream. */
	img[TEST_BZ_PM_OFFSET + 0x200 + 40] ^= 0xff;
	case_init(&c, img, len);
	ck_assert_int_lt(case_load(&c), 0);
	test_assert_msg(c.err.msg, c.kernel, "XZ payload is corrupt", NULL);
	test_boot_fini(&c);
	free(img);

	/* Payload described past the end of the kernel. */
	img = packed_bzimage(16 * MiB + 0x100, &len);
	test_put32(img + 0x24c, 0x100000);
	case_init(&c, img, len);
	ck_assert_int_lt(case_load(&c), 0);
	test_assert_msg(c.err.msg, c.kernel, "payload", "truncated", NULL);
	test_boot_fini(&c);

	/* No payload at all. */
	test_put32(img + 0x24c, 0);
	case_init(&c, img, len);
	ck_assert_int_lt(case_load(&c), 0);
	test_assert_msg(c.err.msg, c.kernel, "no compressed payload", NULL);
	test_boot_fini(&c);
	free(img);
}
END_TEST

START_TEST(unpacked_not_elf)
{
	static const uint8_t junk[4096] = { 1, 2, 3 };
	size_t xz_len, len;
	uint8_t *xz = xz_payload(junk, sizeof(junk), &xz_len);
	struct test_bz_opts bo = { .payload = xz, .payload_len = xz_len };
	uint8_t *img = test_make_bzimage(&bo, &len);
	struct test_boot c;

	case_init(&c, img, len);
	ck_assert_int_lt(case_load(&c), 0);
	test_assert_msg(c.err.msg, c.kernel, "not an ELF vmlinux", NULL);
	ck_assert_ptr_null(cache_file(&c));
	test_boot_fini(&c);
	free(img);
	free(xz);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("unpack");
	TCase *tc = tcase_create("xz");

	/* Real files, fsync'ed cache entries, XZ both ways: seconds on a
	 * loaded machine, more than check's default 4 s per test. */
	tcase_set_timeout(tc, 30);

	tcase_add_test(tc, unpack_boots_pvh_and_caches);
	tcase_add_test(tc, cache_key_names);
	tcase_add_test(tc, cache_keyed_by_file_identity);
	tcase_add_test(tc, cache_key_without_entry);
	tcase_add_test(tc, cache_entry_is_sparse);
	tcase_add_test(tc, no_cache_dir);
	tcase_add_test(tc, uncreatable_cache_is_a_warning);
	tcase_add_test(tc, other_compressions_refused);
	tcase_add_test(tc, corrupt_payloads);
	tcase_add_test(tc, unpacked_not_elf);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
