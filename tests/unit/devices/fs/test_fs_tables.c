/* The inode and handle tables: lookup counting, FORGET really closing
 * the O_PATH fd, stale nodeids refused, references keeping a forgotten
 * inode alive until the request ends, the ENFILE limit, and handles the
 * same way. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "kvmini/fs_tables.h"
#include "../../check_main.h"
#include "fuse_client.h"

static char dir[64];
static struct fs_inode_table t;
static unsigned fds_before;

static int open_path(const char *name)
{
	char p[128];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	return fd;
}

static void touch(const char *name)
{
	char p[128];
	int fd;

	snprintf(p, sizeof(p), "%s/%s", dir, name);
	fd = open(p, O_CREAT | O_WRONLY, 0644);
	ck_assert_int_ge(fd, 0);
	close(fd);
}

/* One lookup of @name: the nodeid. */
static uint64_t add(const char *name)
{
	int fd = open_path(name);
	struct stat st;
	uint64_t id;

	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(fs_itab_add_lookup(&t, fd, &st, &id), 0);
	return id;
}

static void setup_cap(uint32_t cap)
{
	struct kv_err e = { 0 };
	struct stat st;
	int root;

	fc_tmpdir(dir, sizeof(dir), "tables");
	touch("a");
	touch("b");
	touch("c");
	fds_before = fc_count_fds();
	root = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	ck_assert_int_ge(root, 0);
	ck_assert_int_eq(fstat(root, &st), 0);
	ck_assert_int_eq(fs_itab_init(&t, cap, root, &st, &e), 0);
}

static void setup(void)
{
	setup_cap(4);
}

static void teardown(void)
{
	fs_itab_fini(&t);
	ck_assert_uint_eq(fc_count_fds(), fds_before);
	fc_rmrf(dir);
}

START_TEST(root_is_one)
{
	struct fs_iref ref;

	ck_assert_int_eq(fs_itab_get(&t, FUSE_ROOT_ID, &ref), 0);
	ck_assert(S_ISDIR(ref.mode));
	fs_itab_put(&t, &ref);
	/* The root is never forgotten. */
	fs_itab_forget(&t, FUSE_ROOT_ID, 1000);
	fs_itab_forget_all(&t);
	ck_assert_int_eq(fs_itab_get(&t, FUSE_ROOT_ID, &ref), 0);
	fs_itab_put(&t, &ref);
	ck_assert_uint_eq(fs_itab_live(&t), 1);
}
END_TEST

START_TEST(lookup_counting_and_forget)
{
	uint64_t a = add("a"), a2, b;
	struct fs_iref ref;
	unsigned fds = fc_count_fds();

	ck_assert_uint_ne(a, FUSE_ROOT_ID);
	/* The same inode again: the same nodeid, no new fd kept. */
	a2 = add("a");
	ck_assert_uint_eq(a2, a);
	ck_assert_uint_eq(fc_count_fds(), fds);
	b = add("b");
	ck_assert_uint_ne(b, a);
	ck_assert_uint_eq(fs_itab_live(&t), 3);
	/* Two lookups: one FORGET of 1 keeps it, the second frees it. */
	fs_itab_forget(&t, a, 1);
	ck_assert_int_eq(fs_itab_get(&t, a, &ref), 0);
	fs_itab_put(&t, &ref);
	fs_itab_forget(&t, a, 1);
	ck_assert_int_eq(fs_itab_get(&t, a, &ref), -EBADF);
	ck_assert_uint_eq(fs_itab_live(&t), 2);
	ck_assert_uint_eq(fc_count_fds(), fds); /* b's new fd minus a's: the same */
	/* Forgetting more than was looked up, or twice, is harmless. */
	fs_itab_forget(&t, b, 99);
	fs_itab_forget(&t, b, 1);
	ck_assert_uint_eq(fs_itab_live(&t), 1);
	ck_assert_uint_eq(fc_count_fds(), fds - 1);
}
END_TEST

START_TEST(stale_and_bogus_nodeids)
{
	uint64_t a = add("a"), b;
	struct fs_iref ref;

	fs_itab_forget(&t, a, 1);
	b = add("b"); /* reuses a's slot */
	ck_assert_uint_eq((uint32_t)b, (uint32_t)a);
	ck_assert_uint_ne(b, a);
	ck_assert_int_eq(fs_itab_get(&t, a, &ref), -EBADF);
	ck_assert_int_eq(fs_itab_get(&t, 0, &ref), -EBADF);
	ck_assert_int_eq(fs_itab_get(&t, 5, &ref), -EBADF);
	ck_assert_int_eq(fs_itab_get(&t, UINT64_MAX, &ref), -EBADF);
	ck_assert_int_eq(fs_itab_get(&t, 1ull << 32 | 1, &ref), -EBADF); /* root, wrong gen */
	ck_assert_int_eq(fs_itab_get(&t, 3, &ref), -EBADF); /* free slot */
	fs_itab_forget(&t, a, 1); /* stale: ignored, b stays */
	ck_assert_int_eq(fs_itab_get(&t, b, &ref), 0);
	fs_itab_put(&t, &ref);
}
END_TEST

START_TEST(reference_outlives_forget)
{
	uint64_t a = add("a"), again;
	struct fs_iref ref;
	struct stat st;

	ck_assert_int_eq(fs_itab_get(&t, a, &ref), 0);
	fs_itab_forget(&t, a, 1);
	/* Forgotten: no new request may use it, but ours still can. */
	ck_assert_int_eq(fs_itab_get(&t, a, &ref), -EBADF);
	ck_assert_int_eq(fstat(ref.fd, &st), 0);
	ck_assert_uint_eq(fs_itab_live(&t), 2);
	/* A lookup while held revives it under the same nodeid. */
	again = add("a");
	ck_assert_uint_eq(again, a);
	fs_itab_put(&t, &ref);
	ck_assert_uint_eq(fs_itab_live(&t), 2);
	fs_itab_forget(&t, a, 1);
	ck_assert_uint_eq(fs_itab_live(&t), 1);
}
END_TEST

START_TEST(full_table_is_enfile)
{
	uint64_t a = add("a"), b = add("b"), c = add("c");
	int fd = open_path("a");
	struct stat st;
	uint64_t id;
	unsigned fds = fc_count_fds();

	/* cap 4: root + a, b, c. A known inode still works... */
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(fs_itab_add_lookup(&t, fd, &st, &id), 0);
	ck_assert_uint_eq(id, a);
	/* ...a new one does not, and its fd is closed. */
	ck_assert_int_eq(mkdir("/tmp/kvmini-tables-extra-x", 0700) == 0 || errno == EEXIST, 1);
	fd = open("/tmp/kvmini-tables-extra-x", O_PATH | O_CLOEXEC);
	ck_assert_int_ge(fd, 0);
	ck_assert_int_eq(fstat(fd, &st), 0);
	ck_assert_int_eq(fs_itab_add_lookup(&t, fd, &st, &id), -ENFILE);
	ck_assert_uint_eq(fc_count_fds(), fds - 1);
	rmdir("/tmp/kvmini-tables-extra-x");
	/* FORGET makes room again. */
	fs_itab_forget(&t, b, 1);
	ck_assert_uint_ne(add("b"), 0);
	(void)c;
}
END_TEST

START_TEST(forget_all)
{
	uint64_t a = add("a");
	struct fs_iref ref;

	add("b");
	ck_assert_int_eq(fs_itab_get(&t, a, &ref), 0);
	fs_itab_forget_all(&t);
	ck_assert_uint_eq(fs_itab_live(&t), 2); /* root + a (held) */
	fs_itab_put(&t, &ref);
	ck_assert_uint_eq(fs_itab_live(&t), 1);
}
END_TEST

START_TEST(handles)
{
	struct fs_handle_table h;
	struct fs_handle *hp, *held;
	struct kv_err e = { 0 };
	uint64_t fh1, fh2, fh3;
	int fd1 = open_path("a"), fd2 = open_path("b"), fd3 = open_path("c");
	unsigned fds = fc_count_fds();

	ck_assert_int_eq(fs_htab_init(&h, 2, &e), 0);
	ck_assert_int_eq(fs_htab_add(&h, fd1, false, &fh1), 0);
	ck_assert_int_eq(fs_htab_add(&h, fd2, true, &fh2), 0);
	ck_assert_int_eq(fs_htab_add(&h, fd3, false, &fh3), -ENFILE);
	close(fd3);
	ck_assert_int_eq(fs_htab_get(&h, fh2, &held), 0);
	ck_assert(held->dir);
	ck_assert_int_eq(held->fd, fd2);
	/* Released while in use: closed when the request puts it. */
	ck_assert_int_eq(fs_htab_release(&h, fh2), 0);
	ck_assert_int_eq(fs_htab_release(&h, fh2), -EBADF);
	ck_assert_int_eq(fs_htab_get(&h, fh2, &hp), -EBADF);
	ck_assert_uint_eq(fc_count_fds(), fds - 1);
	fs_htab_put(&h, held);
	ck_assert_uint_eq(fc_count_fds(), fds - 2);
	ck_assert_uint_eq(fs_htab_live(&h), 1);
	/* Bogus and stale handles. */
	ck_assert_int_eq(fs_htab_get(&h, 0, &hp), -EBADF);
	ck_assert_int_eq(fs_htab_get(&h, 3, &hp), -EBADF);
	ck_assert_int_eq(fs_htab_get(&h, fh1 + (1ull << 32), &hp), -EBADF);
	ck_assert_int_eq(fs_htab_release(&h, UINT64_MAX), -EBADF);
	fs_htab_release_all(&h);
	ck_assert_uint_eq(fs_htab_live(&h), 0);
	ck_assert_uint_eq(fc_count_fds(), fds - 3);
	fs_htab_fini(&h);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fs_tables");
	TCase *tc = tcase_create("tables");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_add_test(tc, root_is_one);
	tcase_add_test(tc, lookup_counting_and_forget);
	tcase_add_test(tc, stale_and_bogus_nodeids);
	tcase_add_test(tc, reference_outlives_forget);
	tcase_add_test(tc, full_table_is_enfile);
	tcase_add_test(tc, forget_all);
	tcase_add_test(tc, handles);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
