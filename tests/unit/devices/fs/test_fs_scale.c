/* The FUSE server at the scale of a source tree: 20,000 files created,
 * written and attributed as `tar -x` does through Linux's FUSE client
 * (LOOKUP of the new name, CREATE, WRITE, RELEASE, SETATTR of mode and
 * times), the guest keeping every inode (no FORGET), then listed and
 * removed as `rm -rf` does (OPENDIR, READDIRPLUS to the end, UNLINK each
 * name, RMDIR): every call succeeds, the inode count follows, and the
 * host folder is empty at the end. A second pass with a server whose
 * inode table is smaller than the tree checks that a full table fails
 * only the calls that need a new inode (ENFILE), and that forgetting
 * makes room again. And rm -rf on a file system whose directory offsets
 * count entries (ramfs; tmpfs before Linux 6.6, as in the nested L1). */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sched.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../check_main.h"
#include "fuse_client.h"

#define DIRS 100
#define FILES_PER_DIR 100

static char top[64], share[96];
static struct fc c;

static void start(unsigned max_inodes)
{
	struct fuse_server_cfg cfg = { .max_inodes = max_inodes };
	struct rlimit rl;

	/* As kvmini does when it shares a folder: the tables follow it. */
	ck_assert_int_eq(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max < 12000)
		ck_abort_msg("RLIMIT_NOFILE's hard limit is %lu: this test needs 12,000 fds",
			     (unsigned long)rl.rlim_max);
	rl.rlim_cur = rl.rlim_max;
	ck_assert_int_eq(setrlimit(RLIMIT_NOFILE, &rl), 0);

	umask(0);
	fc_tmpdir(top, sizeof(top), "fsscale");
	snprintf(share, sizeof(share), "%s/share", top);
	ck_assert_int_eq(mkdir(share, 0755), 0);
	fc_start(&c, share, &cfg);
}

static void teardown(void)
{
	if (!c.s)
		return;
	fc_stop(&c);
	fc_rmrf(top);
}

/* One file as tar -x makes it; returns CREATE's error. */
static int tar_one_file(uint64_t dir, const char *name, unsigned size)
{
	static char data[4096];
	struct fuse_setattr_in sa = { .valid = FATTR_MODE | FATTR_MTIME | FATTR_ATIME,
				      .mode = S_IFREG | 0644, .mtime = 1700000000,
				      .atime = 1700000000 };
	struct fuse_entry_out e;
	struct fuse_attr a;
	uint64_t fh;
	int r;

	memset(data, 'k', sizeof(data));
	ck_assert_int_eq(fc_lookup(&c, dir, name, &e), -ENOENT);
	r = fc_create(&c, dir, name, O_WRONLY | O_EXCL, S_IFREG | 0644, &e, &fh);
	if (r)
		return r;
	ck_assert_int_eq(fc_write(&c, e.nodeid, fh, 0, data, size), (int)size);
	ck_assert_int_eq(fc_release(&c, e.nodeid, fh), 0);
	ck_assert_int_eq(fc_setattr(&c, e.nodeid, &sa, &a), 0);
	return 0;
}

/* rm -rf of @name under @parent (a directory of files): returns the
 * names READDIRPLUS gave (without . and ..). */
static int rm_dir_of_files(uint64_t parent, const char *name)
{
	static char names[65536];
	struct fuse_entry_out d;
	uint64_t fh, off = 0;
	int n, seen = 0;

	ck_assert_int_eq(fc_lookup(&c, parent, name, &d), 0);
	ck_assert_int_eq(fc_opendir(&c, d.nodeid, &fh), 0);
	while ((n = fc_readdir(&c, d.nodeid, fh, true, off, names, sizeof(names), &off)) > 0) {
		for (char *p = names, *nl; *p; p = nl + 1) {
			nl = strchr(p, '\n');
			ck_assert_ptr_nonnull(nl);
			*nl = 0;
			if (strcmp(p, ".") && strcmp(p, "..")) {
				ck_assert_int_eq(fc_unlink(&c, d.nodeid, p), 0);
				seen++;
			}
		}
	}
	ck_assert_int_eq(n, 0);
	ck_assert_int_eq(fc_release(&c, d.nodeid, fh), 0);
	ck_assert_int_eq(fc_rmdir(&c, parent, name), 0);
	return seen;
}

START_TEST(tar_x_then_rm_rf_of_10000_files)
{
	struct fuse_server_stats st;
	struct fuse_entry_out d;
	char name[32];
	struct stat hs;

	start(0);
	for (int i = 0; i < DIRS; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		ck_assert_int_eq(fc_mkdir(&c, FUSE_ROOT_ID, name, 0755, &d), 0);
		for (int f = 0; f < FILES_PER_DIR; f++) {
			char fname[32];

			snprintf(fname, sizeof(fname), "f%d.c", f);
			ck_assert_int_eq(tar_one_file(d.nodeid, fname, (unsigned)((i * 7919 + f * 104729) % 4033 + 64)), 0);
		}
	}
	fuse_server_stats(c.s, &st);
	ck_assert_uint_eq(st.inodes, 1 + DIRS + DIRS * FILES_PER_DIR);
	ck_assert_uint_eq(st.handles, 0);
	for (int i = 0; i < DIRS; i++) {
		snprintf(name, sizeof(name), "s%d", i);
		ck_assert_int_eq(rm_dir_of_files(FUSE_ROOT_ID, name), FILES_PER_DIR);
	}
	ck_assert_int_eq(stat(share, &hs), 0);
	ck_assert_uint_eq(hs.st_nlink, 2); /* no folder left on the host */
	fuse_server_stats(c.s, &st);
	ck_assert_uint_eq(st.handles, 0);
}
END_TEST

START_TEST(a_full_inode_table_fails_new_inodes_only)
{
	struct fuse_server_stats st;
	struct fuse_entry_out d, e;
	char fname[32];
	int made = 0, r = 0;

	start(1000);
	fuse_server_stats(c.s, &st);
	ck_assert_uint_eq(st.max_inodes, 1000);
	ck_assert_int_eq(fc_mkdir(&c, FUSE_ROOT_ID, "d", 0755, &d), 0);
	while (made < 2000) {
		snprintf(fname, sizeof(fname), "f%d", made);
		r = tar_one_file(d.nodeid, fname, 10);
		if (r)
			break;
		made++;
	}
	ck_assert_int_eq(r, -ENFILE);
	ck_assert_int_eq(made, 1000 - 2); /* the root and d hold two slots */
	/* Known inodes still work; forgetting one makes room for one. */
	ck_assert_int_eq(fc_lookup(&c, d.nodeid, "f7", &e), 0);
	fc_forget(&c, e.nodeid, 2); /* CREATE's lookup and this one */
	ck_assert_int_eq(tar_one_file(d.nodeid, "one-more", 10), 0);
	ck_assert_int_eq(tar_one_file(d.nodeid, "and-another", 10), -ENFILE);
}
END_TEST

/* rm -rf removes entries between READDIRs. Where an offset counts
 * entries from the start, a server that seeks to the guest's offset for
 * every READDIR lands past as many entries as were removed: they are
 * never listed and the rmdir fails with ENOTEMPTY (bench-fs's rm -rf in
 * the L1, whose tmpfs is such a file system). Needs root: the ramfs is
 * mounted in a private mount namespace of this test's process. */
START_TEST(rm_rf_where_offsets_count_entries)
{
	enum { N = 300 };
	char path[160];

	if (geteuid() != 0)
		ck_abort_msg("this test mounts a ramfs (offsets that count entries): run it as root");
	ck_assert_int_eq(unshare(CLONE_NEWNS), 0);
	ck_assert_int_eq(mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL), 0);
	umask(0);
	fc_tmpdir(top, sizeof(top), "fsramfs");
	snprintf(share, sizeof(share), "%s/share", top);
	ck_assert_int_eq(mkdir(share, 0755), 0);
	ck_assert_int_eq(mount("kvmini-test", share, "ramfs", 0, "mode=0755"), 0);
	snprintf(path, sizeof(path), "%s/d", share);
	ck_assert_int_eq(mkdir(path, 0755), 0);
	for (int i = 0; i < N; i++) {
		snprintf(path, sizeof(path), "%s/d/file-%03d", share, i);
		int fd = open(path, O_CREAT | O_WRONLY, 0644);

		ck_assert_int_ge(fd, 0);
		close(fd);
	}
	fc_start(&c, share, NULL);
	/* Each 4 KiB READDIRPLUS holds about 25 of them: a dozen rounds. */
	ck_assert_int_eq(rm_dir_of_files(FUSE_ROOT_ID, "d"), N);
	fc_stop(&c);
	ck_assert_int_eq(umount(share), 0);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fs_scale");
	TCase *tc = tcase_create("scale");

	tcase_add_checked_fixture(tc, NULL, teardown);
	tcase_set_timeout(tc, 120);
	tcase_add_test(tc, tar_x_then_rm_rf_of_10000_files);
	tcase_add_test(tc, a_full_inode_table_fails_new_inodes_only);
	tcase_add_test(tc, rm_rf_where_offsets_count_entries);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
