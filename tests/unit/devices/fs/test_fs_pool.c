/* The worker pool: hooks run once per worker before any job, jobs run,
 * queued jobs can be cancelled and are dropped at destroy, a failing
 * hook fails creation. Then the FUSE server's workers run every
 * operation under a seccomp filter holding exactly the system calls
 * devices/fs/pool.c documents: any other call fails the test with its
 * number. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "kvmini/fs_pool.h"
#include "../../check_main.h"
#include "fuse_client.h"
#include "worker_filter.h"

static atomic_int inits, enters, ran, gate_open, blocked;

struct tjob {
	struct fs_pool_job job;
	bool block;
};

static void run(void *ctx, struct fs_pool_job *job, void *scratch)
{
	struct tjob *t = (struct tjob *)job;

	ck_assert_ptr_nonnull(scratch);
	if (t->block) {
		atomic_fetch_add(&blocked, 1);
		while (!atomic_load(&gate_open))
			usleep(1000);
	}
	atomic_fetch_add(&ran, 1);
}

static int count_init(void *ctx, struct kv_err *e)
{
	atomic_fetch_add(&inits, 1);
	return 0;
}

static int count_enter(void *ctx, struct kv_err *e)
{
	/* Every worker ran its init before its enter hook. */
	ck_assert_int_ge(atomic_load(&inits), atomic_load(&enters) + 1);
	atomic_fetch_add(&enters, 1);
	return ctx ? kv_err_set(e, -EPERM, "refused by the test") : 0;
}

static void wait_for(atomic_int *v, int want)
{
	for (int i = 0; i < 5000 && atomic_load(v) < want; i++)
		usleep(1000);
	ck_assert_int_eq(atomic_load(v), want);
}

static struct fs_pool_cfg cfg(unsigned n)
{
	return (struct fs_pool_cfg){ .name = "tpool", .nr_workers = n, .scratch_size = 4096,
				     .run = run, .worker_init = count_init,
				     .thread_enter = count_enter };
}

START_TEST(jobs_and_hooks)
{
	static struct tjob jobs[200];
	struct fs_pool_cfg c = cfg(3);
	struct kv_err e = { 0 };
	struct fs_pool *p;

	ck_assert_int_eq(fs_pool_create(&c, &p, &e), 0);
	/* Creation returns once every worker passed its hooks. */
	ck_assert_int_eq(atomic_load(&inits), 3);
	ck_assert_int_eq(atomic_load(&enters), 3);
	for (int i = 0; i < 200; i++)
		fs_pool_submit(p, &jobs[i].job);
	wait_for(&ran, 200);
	ck_assert_uint_eq(fs_pool_destroy(p), 0);
}
END_TEST

static void *open_gate_later(void *arg)
{
	usleep(100 * 1000);
	atomic_store(&gate_open, 1);
	return NULL;
}

START_TEST(cancel_and_drop)
{
	static struct tjob jobs[7];
	struct fs_pool_cfg c = cfg(2);
	struct kv_err e = { 0 };
	struct fs_pool *p;
	pthread_t t;
	int a, b;

	ck_assert_int_eq(fs_pool_create(&c, &p, &e), 0);
	jobs[0].block = jobs[1].block = true;
	fs_pool_submit(p, &jobs[0].job);
	fs_pool_submit(p, &jobs[1].job);
	wait_for(&blocked, 2);
	for (int i = 2; i < 7; i++) {
		jobs[i].job.owner = i < 5 ? (void *)&a : (void *)&b;
		fs_pool_submit(p, &jobs[i].job);
	}
	ck_assert_uint_eq(fs_pool_cancel(p, &a), 3);
	ck_assert_uint_eq(fs_pool_cancel(p, &a), 0);
	atomic_store(&gate_open, 1);
	wait_for(&ran, 4);
	/* Destroyed while busy: the running jobs finish, queued ones drop. */
	atomic_store(&gate_open, 0);
	atomic_store(&blocked, 0);
	for (int i = 0; i < 5; i++) {
		jobs[i].block = i < 2;
		fs_pool_submit(p, &jobs[i].job);
	}
	wait_for(&blocked, 2);
	ck_assert_int_eq(pthread_create(&t, NULL, open_gate_later, NULL), 0);
	ck_assert_uint_eq(fs_pool_destroy(p), 3);
	pthread_join(t, NULL);
	ck_assert_int_eq(atomic_load(&ran), 6);
}
END_TEST

START_TEST(failing_hook_fails_create)
{
	struct fs_pool_cfg c = cfg(4);
	struct kv_err e = { 0 };
	struct fs_pool *p = NULL;

	c.thread_ctx = &c; /* count_enter refuses */
	ck_assert_int_eq(fs_pool_create(&c, &p, &e), -EPERM);
	ck_assert_ptr_null(p);
	ck_assert_ptr_nonnull(strstr(e.msg, "refused by the test"));
	ck_assert_ptr_nonnull(strstr(e.msg, "tpool"));
	c.nr_workers = 0;
	ck_assert_int_eq(fs_pool_create(&c, &p, &e), -EINVAL);
}
END_TEST

/* One of everything the server does, through the workers. */
static void workload(struct fc *c)
{
	static char big[300000];
	struct fuse_setattr_in sa = { 0 };
	struct fuse_entry_out e, d, l;
	struct fuse_attr a;
	char names[8192], v[16];
	uint64_t fh, dfh, off = 0;
	struct fuse_fallocate_in fa = { 0 };
	struct fuse_lseek_in ls = { .whence = SEEK_DATA };
	struct fuse_fsync_in fs = { 0 };
	struct fuse_access_in ac = { .mask = R_OK | W_OK };
	struct fuse_batch_forget_in bf = { .count = 1 };
	uint8_t bft[sizeof(bf) + sizeof(struct fuse_forget_one)];

	ck_assert_int_eq(fc_mkdir(c, FUSE_ROOT_ID, "d", 0755, &d), 0);
	ck_assert_int_eq(fc_create(c, d.nodeid, "f", O_RDWR, 0644, &e, &fh), 0);
	ck_assert_int_eq(fc_write(c, e.nodeid, fh, 0, big, sizeof(big)), (int)sizeof(big));
	ck_assert_int_eq(fc_read(c, e.nodeid, fh, 10, big, 100000), 100000);
	fa.fh = fs.fh = ls.fh = fh;
	fa.length = 4096;
	fa.mode = 1; /* KEEP_SIZE */
	ck_assert_int_eq(fc_call(c, FUSE_FALLOCATE, e.nodeid, &fa, sizeof(fa), NULL, 0, 0), 0);
	ck_assert_int_eq(fc_call(c, FUSE_LSEEK, e.nodeid, &ls, sizeof(ls), NULL, 0, 8), 0);
	ck_assert_int_eq(fc_call(c, FUSE_FSYNC, e.nodeid, &fs, sizeof(fs), NULL, 0, 0), 0);
	fs.fsync_flags = FUSE_FSYNC_FDATASYNC;
	ck_assert_int_eq(fc_call(c, FUSE_FSYNC, e.nodeid, &fs, sizeof(fs), NULL, 0, 0), 0);
	ck_assert_int_eq(fc_call(c, FUSE_FLUSH, e.nodeid, &(struct fuse_flush_in){ .fh = fh },
				 sizeof(struct fuse_flush_in), NULL, 0, 0), 0);
	sa.valid = FATTR_MODE | FATTR_SIZE | FATTR_ATIME | FATTR_MTIME_NOW | FATTR_MTIME |
		   FATTR_UID | FATTR_GID;
	sa.mode = 0600;
	sa.size = 10;
	sa.uid = getuid();
	sa.gid = getgid();
	ck_assert_int_eq(fc_setattr(c, e.nodeid, &sa, &a), 0);
	sa.valid |= FATTR_FH;
	sa.fh = fh;
	ck_assert_int_eq(fc_setattr(c, e.nodeid, &sa, &a), 0);
	ck_assert_int_eq(fc_release(c, e.nodeid, fh), 0);
	ck_assert_int_eq(fc_open(c, e.nodeid, O_RDWR | O_TRUNC | O_APPEND, &fh), 0);
	ck_assert_int_eq(fc_release(c, e.nodeid, fh), 0);
	ck_assert_int_eq(fc_create(c, d.nodeid, "f", O_RDWR, 0644, &e, &fh), 0);
	ck_assert_int_eq(fc_release(c, e.nodeid, fh), 0);
	ck_assert_int_eq(fc_setxattr(c, e.nodeid, "user.k", "v", 1, 0), 0);
	ck_assert_int_eq(fc_getxattr(c, e.nodeid, "user.k", v, sizeof(v)), 1);
	ck_assert_int_eq(fc_getxattr(c, e.nodeid, "user.k", NULL, 0), 1);
	ck_assert_int_eq(fc_call(c, FUSE_REMOVEXATTR, e.nodeid, NULL, 0, "user.k", 7, 0), 0);
	ck_assert_int_eq(fc_call(c, FUSE_ACCESS, e.nodeid, &ac, sizeof(ac), NULL, 0, 0), 0);
	ck_assert_int_eq(fc_link(c, e.nodeid, FUSE_ROOT_ID, "hard", &l), 0);
	ck_assert_int_eq(fc_symlink(c, FUSE_ROOT_ID, "sym", "d/f", &l), 0);
	ck_assert_int_eq(fc_readlink(c, l.nodeid, names, sizeof(names)), 0);
	ck_assert_int_eq(fc_mknod(c, FUSE_ROOT_ID, "fifo", S_IFIFO | 0600, &l), 0);
	ck_assert_int_eq(fc_mknod(c, FUSE_ROOT_ID, "reg", S_IFREG | 0600, &l), 0);
	ck_assert_int_eq(fc_rename(c, FUSE_ROOT_ID, "reg", d.nodeid, "reg2", 0), 0);
	ck_assert_int_eq(fc_rename(c, FUSE_ROOT_ID, "hard", FUSE_ROOT_ID, "sym", RENAME_EXCHANGE),
			 0);
	ck_assert_int_eq(fc_lookup(c, FUSE_ROOT_ID, "..", &l), 0);
	ck_assert_int_eq(fc_lookup(c, d.nodeid, "..", &l), 0);
	ck_assert_int_eq(fc_opendir(c, d.nodeid, &dfh), 0);
	ck_assert_int_gt(fc_readdir(c, d.nodeid, dfh, true, 0, names, sizeof(names), &off), 0);
	ck_assert_int_gt(fc_readdir(c, d.nodeid, dfh, false, 0, names, sizeof(names), &off), 0);
	ck_assert_int_eq(fc_call(c, FUSE_FSYNCDIR, d.nodeid, &(struct fuse_fsync_in){ .fh = dfh },
				 sizeof(fs), NULL, 0, 0), 0);
	ck_assert_int_eq(fc_release(c, d.nodeid, dfh), 0);
	ck_assert_int_eq(fc_call(c, FUSE_STATFS, d.nodeid, NULL, 0, NULL, 0, 80), 0);
	ck_assert_int_eq(fc_call(c, FUSE_SYNCFS, FUSE_ROOT_ID, &(struct fuse_syncfs_in){ 0 },
				 sizeof(struct fuse_syncfs_in), NULL, 0, 0), 0);
	ck_assert_int_eq(fc_unlink(c, d.nodeid, "f"), 0);
	ck_assert_int_eq(fc_unlink(c, d.nodeid, "reg2"), 0);
	ck_assert_int_eq(fc_rmdir(c, FUSE_ROOT_ID, "d"), 0);
	ck_assert_int_eq(fc_mknod(c, FUSE_ROOT_ID, "dev", S_IFCHR | 0600, &l), -EPERM);
	/* A malformed request: logged (rate-limited) from the worker. */
	ck_assert_int_eq(fc_lookup(c, FUSE_ROOT_ID, "x/y", &l), -EINVAL);
	fc_forget(c, e.nodeid, 1);
	memcpy(bft, &bf, sizeof(bf));
	memcpy(bft + sizeof(bf), &(struct fuse_forget_one){ .nodeid = d.nodeid, .nlookup = 1 },
	       sizeof(struct fuse_forget_one));
	fc_call(c, FUSE_BATCH_FORGET, 0, bft, sizeof(bft), NULL, 0, 0);
	ck_assert_int_eq(fc_call(c, FUSE_DESTROY, 0, NULL, 0, NULL, 0, 0), 0);
}

START_TEST(workers_stay_within_the_documented_calls)
{
	struct fuse_server_cfg sc = { .nr_workers = 2, .thread_enter = wf_enter };
	char top[64], dir[96];
	struct fc c;

	umask(0);
	wf_init();
	fc_tmpdir(top, sizeof(top), "fspool");
	for (int pass = 0; pass < 2; pass++) {
		/* Pass 1: every fallback (openat, fchmodat, faccessat and
		 * linkat through /proc/self/fd). */
		sc.host_disable = pass ? ~0u : 0;
		snprintf(dir, sizeof(dir), "%s/%d", top, pass);
		ck_assert_int_eq(mkdir(dir, 0755), 0);
		fc_start(&c, dir, &sc);
		c.via_workers = true;
		workload(&c);
		fc_stop(&c); /* the workers exit under their filter too */
	}
	ck_assert_int_eq(atomic_load(&wf_entered), 4);
	ck_assert_msg(atomic_load(&wf_trapped_count) == 0,
		      "a worker made %d undocumented system call(s), the first: %d",
		      atomic_load(&wf_trapped_count), atomic_load(&wf_trapped_nr));
	fc_rmrf(top);
}
END_TEST

int main(void)
{
	Suite *s = suite_create("fs_pool");
	TCase *tc = tcase_create("pool");

	tcase_set_timeout(tc, 30);
	tcase_add_test(tc, jobs_and_hooks);
	tcase_add_test(tc, cancel_and_drop);
	tcase_add_test(tc, failing_hook_fails_create);
	tcase_add_test(tc, workers_stay_within_the_documented_calls);
	suite_add_tcase(s, tc);
	return check_run_suite(s);
}
