/* kmods: load order from a synthetic module tree (dependencies, soft
 * dependencies through an alias, built-in modules, '-' vs '_'), the same
 * order with and without depmod's index, every error naming the module
 * and the tree, vermagic checks, and module files read plain, xz and
 * zstd. */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kvmini/kmods.h"
#include "../check_main.h"
#include "fake_kmods.h"
#include "test_util.h"

#define VM "vermagic=" FAKE_RELEASE " SMP preempt mod_unload"

struct fixture {
	char *base, *tree;
	uint8_t *elf[3];
	size_t len[3];
};

static void make_tree(struct fixture *f)
{
	size_t n;

	f->tree = fake_tree_new(&f->base);
	f->elf[0] = fake_ko_write(f->tree, "kernel/fs/aa.ko", FAKE_KO_PLAIN, &f->len[0],
				  "depends=bb,cc-dash", "softdep=pre: crypto-zz post: qq", VM, "name=aa", NULL);
	f->elf[1] = fake_ko_write(f->tree, "kernel/fs/bb.ko", FAKE_KO_XZ, &f->len[1],
				  "depends=cc_dash", VM, "name=bb", NULL);
	f->elf[2] = fake_ko_write(f->tree, "kernel/lib/cc-dash.ko", FAKE_KO_ZSTD, &f->len[2],
				  "depends=", VM, "name=cc_dash", NULL);
	free(fake_ko_write(f->tree, "kernel/crypto/zz_generic.ko", FAKE_KO_PLAIN, &n,
			   "alias=crypto-zz", "depends=", VM, NULL));
	free(fake_ko_write(f->tree, "kernel/fs/opt.ko", FAKE_KO_PLAIN, &n,
			   "depends=nothere", VM, NULL));
	free(fake_ko_write(f->tree, "kernel/fs/oldver.ko", FAKE_KO_PLAIN, &n,
			   "depends=", "vermagic=1.2.3-old SMP", NULL));
	char *builtin = test_path(f->tree, "modules.builtin");
	test_write_file(builtin, "kernel/fs/bi.ko\n", 16);
	free(builtin);
}

static void free_tree(struct fixture *f)
{
	for (int i = 0; i < 3; i++)
		free(f->elf[i]);
	free(f->tree);
	test_tmpdir_remove(f->base);
}

static void assert_order(const struct kmods *m, const char *const *names, unsigned n)
{
	char got[512] = "";

	for (unsigned i = 0; i < m->n; i++)
		snprintf(got + strlen(got), sizeof(got) - strlen(got), "%s ", m->v[i].name);
	ck_assert_msg(m->n == n, "order: %s", got);
	for (unsigned i = 0; i < n; i++)
		ck_assert_msg(!strcmp(m->v[i].name, names[i]), "position %u: %s, expected %s (order: %s)",
			      i, m->v[i].name, names[i], got);
}

static void check_order(bool indexed)
{
	static const char *const want_order[] = { "zz_generic", "cc_dash", "bb", "aa" };
	struct kmod_want want[] = { { "aa", true, "test" }, { "bb", true, "test" } };
	struct fixture f = { 0 };
	struct kv_err e = { 0 };
	struct kmods m;

	make_tree(&f);
	if (indexed)
		fake_tree_depmod(f.base);
	ck_assert_int_eq(kmods_resolve(f.tree, FAKE_RELEASE, want, 2, &m, &e), 0);
	ck_assert_int_eq(m.indexed, indexed);
	assert_order(&m, want_order, 4);
	ck_assert(strstr(m.v[1].path, "kernel/lib/cc-dash.ko.zst"));
	ck_assert(strstr(m.v[2].path, "kernel/fs/bb.ko.xz"));
	kmods_free(&m);
	free_tree(&f);
}

START_TEST(order_walked_tree)
{
	check_order(false);
}
END_TEST

START_TEST(order_depmod_index)
{
	check_order(true);
}
END_TEST

START_TEST(builtin_and_optional)
{
	struct kmod_want want[] = { { "bi", true, "built in" }, { "opt", false, NULL },
				    { "absent", false, NULL }, { "cc-dash", true, "x" } };
	struct fixture f = { 0 };
	struct kv_err e = { 0 };
	struct kmods m;

	make_tree(&f);
	ck_assert_int_eq(kmods_resolve(f.tree, FAKE_RELEASE, want, 4, &m, &e), 0);
	ck_assert_uint_eq(m.builtin, 1);
	/* opt's dependency is missing: opt is skipped, not an error. */
	ck_assert_uint_eq(m.n, 1);
	ck_assert_str_eq(m.v[0].name, "cc_dash");
	kmods_free(&m);
	free_tree(&f);
}
END_TEST

START_TEST(errors_name_module_and_tree)
{
	struct kmod_want missing[] = { { "virtio_blk", true, "the driver of --disk" } };
	struct kmod_want dep[] = { { "opt", true, "wanted" } };
	struct kmod_want old[] = { { "oldver", true, "wanted" } };
	struct fixture f = { 0 };
	struct kv_err e = { 0 };
	struct kmods m;

	make_tree(&f);
	ck_assert_int_eq(kmods_resolve(f.tree, FAKE_RELEASE, missing, 1, &m, &e), -ENOENT);
	test_assert_msg(e.msg, "virtio_blk", "the driver of --disk", f.tree, "--modules", NULL);
	ck_assert_int_eq(kmods_resolve(f.tree, FAKE_RELEASE, dep, 1, &m, &e), -ENOENT);
	test_assert_msg(e.msg, "nothere", "opt", f.tree, NULL);
	ck_assert_int_eq(kmods_resolve(f.tree, FAKE_RELEASE, old, 1, &m, &e), -EINVAL);
	test_assert_msg(e.msg, "oldver.ko", "1.2.3-old", FAKE_RELEASE, NULL);
	/* No release to check against: taken. */
	ck_assert_int_eq(kmods_resolve(f.tree, NULL, old, 1, &m, &e), 0);
	ck_assert_uint_eq(m.n, 1);
	kmods_free(&m);
	char *gone = test_path(f.base, "no-such-tree");
	ck_assert_int_eq(kmods_resolve(gone, FAKE_RELEASE, old, 1, &m, &e), -ENOENT);
	test_assert_msg(e.msg, gone, NULL);
	free(gone);
	free_tree(&f);
}
END_TEST

START_TEST(file_read_decompresses)
{
	static const char *const rel[] = { "kernel/fs/aa.ko", "kernel/fs/bb.ko.xz", "kernel/lib/cc-dash.ko.zst" };
	struct fixture f = { 0 };
	struct kv_err e = { 0 };

	make_tree(&f);
	for (int i = 0; i < 3; i++) {
		char *path = test_path(f.tree, rel[i]);
		void *data;
		size_t len;

		ck_assert_int_eq(kmod_file_read(path, &data, &len, &e), 0);
		ck_assert_uint_eq(len, f.len[i]);
		ck_assert_mem_eq(data, f.elf[i], len);
		free(data);
		free(path);
	}
	free_tree(&f);
}
END_TEST

START_TEST(file_read_rejects)
{
	char *dir = test_tmpdir(), *p = test_path(dir, "m.ko");
	uint8_t xz_head[64] = { 0xfd, '7', 'z', 'X', 'Z', 0, 0, 4 };
	uint8_t zst_head[16] = { 0x28, 0xb5, 0x2f, 0xfd, 0x24, 0x10 };
	struct kv_err e = { 0 };
	void *data;
	size_t len;

	test_write_file(p, "\x1f\x8b\x08\x00junk", 8);
	ck_assert_int_eq(kmod_file_read(p, &data, &len, &e), -EINVAL);
	test_assert_msg(e.msg, p, "gzip", NULL);
	test_write_file(p, "hello, not a module", 19);
	ck_assert_int_eq(kmod_file_read(p, &data, &len, &e), -EINVAL);
	test_assert_msg(e.msg, p, "not a kernel module", NULL);
	test_write_file(p, xz_head, sizeof(xz_head));
	ck_assert_int_eq(kmod_file_read(p, &data, &len, &e), -EINVAL);
	test_assert_msg(e.msg, p, "xz", "corrupt or truncated", NULL);
	test_write_file(p, zst_head, sizeof(zst_head));
	ck_assert_int_eq(kmod_file_read(p, &data, &len, &e), -EINVAL);
	test_assert_msg(e.msg, p, "zstd", NULL);
	test_write_file(p, "", 0);
	ck_assert_int_eq(kmod_file_read(p, &data, &len, &e), -EINVAL);
	free(p);
	test_tmpdir_remove(dir);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("kmods");
	TCase *tc = tcase_create("kmods");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, order_walked_tree);
	tcase_add_test(tc, order_depmod_index);
	tcase_add_test(tc, builtin_and_optional);
	tcase_add_test(tc, errors_name_module_and_tree);
	tcase_add_test(tc, file_read_decompresses);
	tcase_add_test(tc, file_read_rejects);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
