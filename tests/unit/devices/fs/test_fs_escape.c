/* Escape attempts against the FUSE server, and read-only shares. The
 * share sits beside an "outside" folder holding a secret file and
 * directory; after every test the outside folder must be exactly as it
 * was (names, types, modes, sizes, link counts, mtimes, ctimes,
 * contents, xattrs). Each test runs with openat2 and without it (the
 * O_NOFOLLOW fallback). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "../../check_main.h"
#include "fuse_client.h"

static char top[64], share[96], outside[96];
static char before[8192];
static struct fc c;

/* A listing of the tree at @dir that changes when anything in it does. */
static void snapshot_of(const char *dir, char *out, size_t n)
{
	char cmd[512];
	FILE *p;
	size_t got;

	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && find . -printf '%%p %%y %%m %%s %%n %%T@ %%C@ %%l\\n' | sort && "
		 "find . -type f -exec sha256sum {} + | sort", dir);
	p = popen(cmd, "r");
	ck_assert_ptr_nonnull(p);
	got = fread(out, 1, n - 1, p);
	out[got] = 0;
	pclose(p);
	ck_assert_uint_gt(got, 0);
	/* The xattrs of the files the tests aim at. */
	const char *names[] = { ".", "secret", "dir", "dir/inner" };

	for (unsigned i = 0; i < 4; i++) {
		char path[256], list[512], val[64];
		ssize_t l;

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		l = llistxattr(path, list, sizeof(list));
		for (ssize_t at = 0; at < l; at += (ssize_t)strlen(list + at) + 1) {
			ssize_t v = lgetxattr(path, list + at, val, sizeof(val) - 1);

			val[v < 0 ? 0 : v] = 0;
			snprintf(out + strlen(out), n - strlen(out), "%s %s=%s\n", names[i],
				 list + at, val);
		}
	}
}

static void snapshot(char *out, size_t n)
{
	snapshot_of(outside, out, n);
}

static void begin(unsigned disable, bool ro)
{
	struct fuse_server_cfg cfg = { .host_disable = disable, .readonly = ro };
	char cmd[1024];

	umask(0);
	fc_tmpdir(top, sizeof(top), "fsesc");
	snprintf(share, sizeof(share), "%s/share", top);
	snprintf(outside, sizeof(outside), "%s/outside", top);
	snprintf(cmd, sizeof(cmd),
		 "set -e; cd '%s'; mkdir share outside outside/dir; "
		 "echo secret > outside/secret; echo inner > outside/dir/inner; "
		 "chmod 0600 outside/secret; "
		 "ln -s '%s/outside/secret' share/abs; ln -s ../outside share/rel; "
		 "ln -s /proc/self/root share/magic; mkdir share/sub; echo in > share/sub/f; "
		 "touch -d @1000000 outside/secret outside/dir outside", top, top);
	ck_assert_int_eq(system(cmd), 0);
	snprintf(cmd, sizeof(cmd), "%s/secret", outside);
	ck_assert_int_eq(setxattr(cmd, "user.tag", "keep", 4, 0), 0);
	snapshot(before, sizeof(before));
	ck_assert_ptr_nonnull(strstr(before, "secret user.tag=keep"));
	fc_start(&c, share, &cfg);
}

#define BEGIN() begin(_i ? FUSE_HOST_NO_OPENAT2 : 0, false)

static void teardown(void)
{
	char after[8192];

	if (!c.s)
		return;
	fc_stop(&c);
	snapshot(after, sizeof(after));
	ck_assert_str_eq(after, before);
	fc_rmrf(top);
}

static uint64_t lookup_ok(uint64_t parent, const char *name)
{
	struct fuse_entry_out e;

	ck_assert_int_eq(fc_lookup(&c, parent, name, &e), 0);
	return e.nodeid;
}

/* Every operation on a symlink that points outside acts on the link,
 * or fails: the host never follows it. */
START_TEST(symlinks_to_outside)
{
	const char *links[] = { "abs", "rel", "magic" };
	struct fuse_setattr_in sa = { 0 };
	struct fuse_entry_out e;
	struct fuse_attr a;
	char target[256];
	uint64_t fh;

	BEGIN();
	for (unsigned i = 0; i < 3; i++) {
		uint64_t l = lookup_ok(FUSE_ROOT_ID, links[i]);

		ck_assert_int_eq(fc_getattr(&c, l, &a), 0);
		ck_assert(S_ISLNK(a.mode));
		ck_assert_int_eq(fc_readlink(&c, l, target, sizeof(target)), 0);
		ck_assert_int_eq(fc_open(&c, l, O_RDONLY, &fh), -ELOOP);
		ck_assert_int_eq(fc_open(&c, l, O_WRONLY | O_TRUNC, &fh), -ELOOP);
		ck_assert_int_eq(fc_opendir(&c, l, &fh), -ENOTDIR);
		ck_assert_int_eq(fc_lookup(&c, l, "secret", &e), -ENOTDIR);
		ck_assert_int_eq(fc_lookup(&c, l, "etc", &e), -ENOTDIR);
		ck_assert_int_eq(fc_create(&c, l, "new", O_RDWR, 0644, &e, &fh), -ENOTDIR);
		ck_assert_int_eq(fc_mkdir(&c, l, "new", 0755, &e), -ENOTDIR);
		sa.valid = FATTR_MODE;
		sa.mode = 0777;
		ck_assert_int_eq(fc_setattr(&c, l, &sa, &a), -EOPNOTSUPP);
		sa.valid = FATTR_SIZE;
		sa.size = 0;
		ck_assert_int_eq(fc_setattr(&c, l, &sa, &a), -EINVAL);
		ck_assert_int_eq(fc_setxattr(&c, l, "user.tag", "x", 1, 0), -EPERM);
		/* Setting the times of the link touches the link only. */
		sa.valid = FATTR_MTIME;
		sa.mtime = 5;
		ck_assert_int_eq(fc_setattr(&c, l, &sa, &a), 0);
		ck_assert_uint_eq(a.mtime, 5);
		/* A hard link to the symlink is another symlink. */
		ck_assert_int_eq(fc_link(&c, l, FUSE_ROOT_ID, "hard", &e), 0);
		ck_assert(S_ISLNK(e.attr.mode));
		ck_assert_int_eq(fc_unlink(&c, FUSE_ROOT_ID, "hard"), 0);
	}
	/* Names that are paths never reach the host. */
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, "../outside", &e), -EINVAL);
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, "rel/secret", &e), -EINVAL);
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, "/etc", &e), -EINVAL);
}
END_TEST

START_TEST(symlinks_with_fallbacks)
{
	struct fuse_setattr_in sa = { .valid = FATTR_MODE, .mode = 0777 };
	struct fuse_attr a;
	char v[16];
	uint64_t l;

	/* The /proc/self/fd paths (chmod, xattrs, link) on a link. */
	begin(FUSE_HOST_NO_OPENAT2 | FUSE_HOST_NO_FCHMODAT2 | FUSE_HOST_NO_FACCESSAT2 |
	      FUSE_HOST_NO_LINK_EMPTY, false);
	l = lookup_ok(FUSE_ROOT_ID, "abs");
	ck_assert_int_eq(fc_setattr(&c, l, &sa, &a), -EOPNOTSUPP);
	ck_assert_int_eq(fc_getxattr(&c, l, "user.tag", v, sizeof(v)), -ENODATA);
	ck_assert_int_eq(fc_setxattr(&c, l, "user.tag", "x", 1, 0), -EPERM);
	ck_assert_int_eq(fc_call(&c, FUSE_REMOVEXATTR, l, NULL, 0, "user.tag", 9, 0), -EPERM);
	struct fuse_entry_out e;

	ck_assert_int_eq(fc_link(&c, l, FUSE_ROOT_ID, "hard", &e), 0);
	ck_assert(S_ISLNK(e.attr.mode));
}
END_TEST

START_TEST(dotdot_stays_inside)
{
	struct fuse_entry_out e;
	uint64_t sub;
	char from[200], to[200];

	BEGIN();
	/* ".." of the root is the root. */
	ck_assert_int_eq(fc_lookup(&c, FUSE_ROOT_ID, "..", &e), 0);
	ck_assert_uint_eq(e.nodeid, FUSE_ROOT_ID);
	ck_assert_int_eq(fc_lookup(&c, e.nodeid, "..", &e), 0);
	ck_assert_uint_eq(e.nodeid, FUSE_ROOT_ID);
	/* ".." below the root goes up, inside. */
	sub = lookup_ok(FUSE_ROOT_ID, "sub");
	ck_assert_int_eq(fc_lookup(&c, sub, "..", &e), 0);
	ck_assert_uint_eq(e.nodeid, FUSE_ROOT_ID);
	/* A directory the host moved out: its ".." is outside, refused. */
	snprintf(from, sizeof(from), "%s/sub", share);
	snprintf(to, sizeof(to), "%s/moved", top);
	ck_assert_int_eq(rename(from, to), 0);
	ck_assert_int_eq(fc_lookup(&c, sub, "..", &e), -EACCES);
	ck_assert_int_eq(rename(to, from), 0);
	ck_assert_int_eq(fc_lookup(&c, sub, "..", &e), 0);
	ck_assert_uint_eq(e.nodeid, FUSE_ROOT_ID);
}
END_TEST

/* The guest looked "d" up as a directory; then a symlink to the outside
 * takes its name. Its old nodeid keeps meaning the old directory; a new
 * lookup finds the link, which leads nowhere. */
START_TEST(symlink_swapped_for_directory)
{
	struct fuse_entry_out e;
	uint64_t d, l, fh;
	char p[200], q[200];

	BEGIN();
	snprintf(p, sizeof(p), "%s/d", share);
	ck_assert_int_eq(mkdir(p, 0755), 0);
	d = lookup_ok(FUSE_ROOT_ID, "d");
	snprintf(q, sizeof(q), "%s/d.old", share);
	ck_assert_int_eq(rename(p, q), 0);
	snprintf(q, sizeof(q), "%s/outside/dir", top);
	ck_assert_int_eq(symlink(q, p), 0);
	ck_assert_int_eq(fc_lookup(&c, d, "inner", &e), -ENOENT);
	ck_assert_int_eq(fc_create(&c, d, "inner", O_RDWR, 0644, &e, &fh), 0);
	ck_assert_int_eq(fc_release(&c, e.nodeid, fh), 0);
	snprintf(q, sizeof(q), "%s/d.old/inner", share);
	ck_assert_int_eq(access(q, F_OK), 0); /* it went to the old directory */
	l = lookup_ok(FUSE_ROOT_ID, "d");
	ck_assert_uint_ne(l, d);
	ck_assert_int_eq(fc_lookup(&c, l, "inner", &e), -ENOTDIR);
	ck_assert_int_eq(fc_unlink(&c, l, "inner"), -ENOTDIR);
	ck_assert_int_eq(fc_rename(&c, FUSE_ROOT_ID, "sub", l, "x", 0), -ENOTDIR);
	ck_assert_int_eq(fc_symlink(&c, l, "x", "y", &e), -ENOTDIR);
}
END_TEST

/* A share that holds /proc magic links: each is an object of its own,
 * never the thing it points at. */
START_TEST(proc_magic_links)
{
	struct fuse_server_cfg cfg = { .host_disable = _i ? FUSE_HOST_NO_OPENAT2 : 0 };
	const char *links[] = { "root", "cwd", "exe" };
	struct fuse_entry_out e;
	struct fuse_attr a;
	uint64_t fd_dir, fh, n;
	char target[256], names[8192];
	int r;

	BEGIN();
	fc_stop(&c);
	fc_start(&c, "/proc/self", &cfg);
	for (unsigned i = 0; i < 3; i++) {
		uint64_t l = lookup_ok(FUSE_ROOT_ID, links[i]);

		ck_assert_int_eq(fc_getattr(&c, l, &a), 0);
		ck_assert(S_ISLNK(a.mode));
		ck_assert_int_eq(fc_open(&c, l, O_RDONLY, &fh), -ELOOP);
		ck_assert_int_eq(fc_opendir(&c, l, &fh), -ENOTDIR);
		ck_assert_int_eq(fc_lookup(&c, l, "etc", &e), -ENOTDIR);
	}
	/* /proc/self/fd/N: links too, to our own fds. */
	fd_dir = lookup_ok(FUSE_ROOT_ID, "fd");
	ck_assert_int_eq(fc_lookup(&c, fd_dir, "0", &e), 0);
	ck_assert(S_ISLNK(e.attr.mode));
	ck_assert_int_eq(fc_open(&c, e.nodeid, O_RDWR, &fh), -ELOOP);
	ck_assert_int_eq(fc_readlink(&c, e.nodeid, target, sizeof(target)), 0);
	ck_assert_int_eq(fc_opendir(&c, fd_dir, &fh), 0);
	r = fc_readdir(&c, fd_dir, fh, true, 0, names, sizeof(names), &n);
	ck_assert_int_gt(r, 3);
	ck_assert_int_eq(fc_release(&c, fd_dir, fh), 0);
	fc_stop(&c);
	c.s = NULL;
	fc_start(&c, share, NULL);
}
END_TEST

START_TEST(no_devices_no_setuid)
{
	struct fuse_entry_out e;
	struct stat st;
	char p[200];
	uint64_t fh;

	BEGIN();
	ck_assert_int_eq(fc_mknod(&c, FUSE_ROOT_ID, "null", S_IFCHR | 0666, &e), -EPERM);
	ck_assert_int_eq(fc_create(&c, FUSE_ROOT_ID, "suid", O_RDWR, S_IFREG | 06777, &e, &fh), 0);
	snprintf(p, sizeof(p), "%s/suid", share);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 0777);
	ck_assert_int_eq(fc_mkdir(&c, FUSE_ROOT_ID, "sgid", 07777, &e), 0);
	snprintf(p, sizeof(p), "%s/sgid", share);
	ck_assert_int_eq(stat(p, &st), 0);
	ck_assert_uint_eq(st.st_mode & 07777, 01777);
	ck_assert_int_eq(fc_mknod(&c, FUSE_ROOT_ID, "f", S_IFREG | 04755, &e), 0);
	ck_assert_uint_eq(e.attr.mode & 07777, 0755);
	ck_assert_int_eq(fc_release(&c, 0, fh), 0);
}
END_TEST

/* A read-only share refuses every change and opens read-only; the host
 * folder does not change (not even an mtime). */
START_TEST(read_only_share)
{
	struct fuse_setattr_in sa = { .valid = FATTR_MODE, .mode = 0777 };
	struct fuse_fallocate_in fa = { .length = 10 };
	struct fuse_access_in ac = { .mask = W_OK };
	struct fuse_entry_out e;
	struct fuse_attr a;
	static char shared_before[8192], shared_after[8192];
	char buf[8];
	uint64_t f, fh;

	begin(_i ? FUSE_HOST_NO_OPENAT2 : 0, true);
	snapshot_of(share, shared_before, sizeof(shared_before));
	f = lookup_ok(lookup_ok(FUSE_ROOT_ID, "sub"), "f");
	ck_assert_int_eq(fc_open(&c, f, O_RDONLY, &fh), 0);
	ck_assert_int_eq(fc_read(&c, f, fh, 0, buf, sizeof(buf)), 3);
	ck_assert_int_eq(fc_write(&c, f, fh, 0, "x", 1), -EROFS);
	fa.fh = fh;
	ck_assert_int_eq(fc_call(&c, FUSE_FALLOCATE, f, &fa, sizeof(fa), NULL, 0, 0), -EROFS);
	ck_assert_int_eq(fc_release(&c, f, fh), 0);
	ck_assert_int_eq(fc_open(&c, f, O_WRONLY, &fh), -EROFS);
	ck_assert_int_eq(fc_open(&c, f, O_RDWR, &fh), -EROFS);
	ck_assert_int_eq(fc_open(&c, f, O_RDONLY | O_TRUNC, &fh), -EROFS);
	ck_assert_int_eq(fc_create(&c, FUSE_ROOT_ID, "n", O_RDONLY, 0644, &e, &fh), -EROFS);
	ck_assert_int_eq(fc_mkdir(&c, FUSE_ROOT_ID, "n", 0755, &e), -EROFS);
	ck_assert_int_eq(fc_mknod(&c, FUSE_ROOT_ID, "n", S_IFIFO | 0644, &e), -EROFS);
	ck_assert_int_eq(fc_symlink(&c, FUSE_ROOT_ID, "n", "t", &e), -EROFS);
	ck_assert_int_eq(fc_link(&c, f, FUSE_ROOT_ID, "n", &e), -EROFS);
	ck_assert_int_eq(fc_unlink(&c, FUSE_ROOT_ID, "abs"), -EROFS);
	ck_assert_int_eq(fc_rmdir(&c, FUSE_ROOT_ID, "sub"), -EROFS);
	ck_assert_int_eq(fc_rename(&c, FUSE_ROOT_ID, "sub", FUSE_ROOT_ID, "n", 0), -EROFS);
	ck_assert_int_eq(fc_rename(&c, FUSE_ROOT_ID, "sub", FUSE_ROOT_ID, "abs", RENAME_EXCHANGE),
			 -EROFS);
	ck_assert_int_eq(fc_setattr(&c, f, &sa, &a), -EROFS);
	ck_assert_int_eq(fc_setxattr(&c, f, "user.x", "1", 1, 0), -EROFS);
	ck_assert_int_eq(fc_call(&c, FUSE_REMOVEXATTR, f, NULL, 0, "user.x", 7, 0), -EROFS);
	ck_assert_int_eq(fc_call(&c, FUSE_ACCESS, f, &ac, sizeof(ac), NULL, 0, 0), -EROFS);
	/* Reads still work. */
	ck_assert_int_eq(fc_getattr(&c, f, &a), 0);
	ck_assert_int_eq(fc_opendir(&c, FUSE_ROOT_ID, &fh), 0);
	ck_assert_int_eq(fc_release(&c, FUSE_ROOT_ID, fh), 0);
	snapshot_of(share, shared_after, sizeof(shared_after));
	ck_assert_str_eq(shared_after, shared_before);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fs_escape");
	TCase *tc = tcase_create("escape");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 30);
	tcase_add_loop_test(tc, symlinks_to_outside, 0, 2);
	tcase_add_loop_test(tc, symlinks_with_fallbacks, 0, 1);
	tcase_add_loop_test(tc, dotdot_stays_inside, 0, 2);
	tcase_add_loop_test(tc, symlink_swapped_for_directory, 0, 2);
	tcase_add_loop_test(tc, proc_magic_links, 0, 2);
	tcase_add_loop_test(tc, no_devices_no_setuid, 0, 1);
	tcase_add_loop_test(tc, read_only_share, 0, 2);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
