/* The documented worker system-call list as a seccomp filter: see
 * worker_filter.h and the list at the top of devices/fs/pool.c. */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#include "worker_filter.h"

#ifndef __NR_fchmodat2
#define __NR_fchmodat2 452
#endif

atomic_int wf_trapped_nr;
atomic_int wf_trapped_count;
atomic_int wf_entered;
static struct sock_fprog prog;

static void on_sigsys(int sig, siginfo_t *si, void *uc_)
{
	ucontext_t *uc = uc_;
	int expected = 0;

	atomic_compare_exchange_strong(&wf_trapped_nr, &expected, si->si_syscall);
	atomic_fetch_add(&wf_trapped_count, 1);
	uc->uc_mcontext.gregs[REG_RAX] = -ENOSYS;
}

#define ALLOW(nr) ck_assert_int_eq(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0), 0)
#define ALLOW_ARG(nr, ...) \
	ck_assert_int_eq(seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 1, __VA_ARGS__), 0)
#define EQ(arg, v) ((struct scmp_arg_cmp){ (arg), SCMP_CMP_EQ, (scmp_datum_t)(v), 0 })
#define MASKED(arg, mask, v) \
	((struct scmp_arg_cmp){ (arg), SCMP_CMP_MASKED_EQ, (scmp_datum_t)(mask), (scmp_datum_t)(v) })

void wf_init(void)
{
	struct sigaction sa = { 0 };
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	const unsigned open_mask = O_CREAT | O_EXCL | O_NOFOLLOW;
	int pfd[2];

	ck_assert_ptr_nonnull(ctx);
	/* The pool: waiting, and leaving. */
	ALLOW(__NR_futex);
	ALLOW(__NR_madvise);
	ALLOW(__NR_munmap);
	ALLOW(__NR_rt_sigprocmask);
	ALLOW(__NR_exit);
	/* The server. */
	ALLOW_ARG(__NR_openat2, EQ(3, 24));
	ALLOW_ARG(__NR_openat, MASKED(2, open_mask, 0));
	ALLOW_ARG(__NR_openat, MASKED(2, open_mask, O_NOFOLLOW));
	ALLOW_ARG(__NR_openat, MASKED(2, open_mask, O_CREAT | O_EXCL | O_NOFOLLOW));
	ALLOW(__NR_close);
	ALLOW_ARG(__NR_newfstatat, EQ(3, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
	ALLOW_ARG(__NR_newfstatat, EQ(3, AT_EMPTY_PATH));
	ALLOW(__NR_fstatfs);
	ALLOW(__NR_preadv);
	ALLOW(__NR_pwritev);
	ALLOW(__NR_getdents64);
	ALLOW_ARG(__NR_lseek, EQ(2, SEEK_SET));
	ALLOW_ARG(__NR_lseek, EQ(2, SEEK_DATA));
	ALLOW_ARG(__NR_lseek, EQ(2, SEEK_HOLE));
	ALLOW(__NR_mkdirat);
	ALLOW_ARG(__NR_mknodat, MASKED(2, S_IFMT, S_IFREG));
	ALLOW_ARG(__NR_mknodat, MASKED(2, S_IFMT, S_IFIFO));
	ALLOW_ARG(__NR_mknodat, MASKED(2, S_IFMT, S_IFSOCK));
	ALLOW(__NR_symlinkat);
	ALLOW_ARG(__NR_unlinkat, EQ(2, 0));
	ALLOW_ARG(__NR_unlinkat, EQ(2, AT_REMOVEDIR));
	ALLOW_ARG(__NR_linkat, EQ(4, AT_EMPTY_PATH));
	ALLOW_ARG(__NR_linkat, EQ(4, AT_SYMLINK_FOLLOW));
	ALLOW_ARG(__NR_renameat2, MASKED(4, ~(scmp_datum_t)(RENAME_NOREPLACE | RENAME_EXCHANGE), 0));
	ALLOW(__NR_readlinkat);
	ALLOW_ARG(__NR_fchmodat2, EQ(3, AT_EMPTY_PATH));
	ALLOW(__NR_fchmodat);
	ALLOW(__NR_fchmod);
	ALLOW(__NR_ftruncate);
	ALLOW_ARG(__NR_fchownat, EQ(4, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
	ALLOW_ARG(__NR_utimensat, EQ(3, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW));
	ALLOW_ARG(__NR_fallocate,
		  MASKED(1, ~(scmp_datum_t)(FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE |
					    FALLOC_FL_ZERO_RANGE | FALLOC_FL_COLLAPSE_RANGE |
					    FALLOC_FL_INSERT_RANGE), 0));
	ALLOW(__NR_fsync);
	ALLOW(__NR_fdatasync);
	ALLOW(__NR_syncfs);
	ALLOW_ARG(__NR_faccessat2, EQ(3, AT_EMPTY_PATH | AT_EACCESS));
	ALLOW(__NR_faccessat);
	ALLOW(__NR_getxattr);
	ALLOW_ARG(__NR_setxattr, MASKED(4, ~(scmp_datum_t)3, 0));
	ALLOW(__NR_listxattr);
	ALLOW(__NR_removexattr);
	/* Not the worker's: returning from this test's SIGSYS recorder. */
	ALLOW(__NR_rt_sigreturn);
	/* Completion (irqfd, KVM_IRQ_LINE) and rate-limited logging. */
	ALLOW(__NR_write);
	ALLOW(__NR_clock_gettime);
#if defined(__SANITIZE_ADDRESS__)
#define WF_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define WF_ASAN 1
#endif
#endif
#ifdef WF_ASAN
	/* AddressSanitizer's runtime maps memory for a thread's fake stack
	 * and allocator caches (vmm/seccomp.c allows mmap in every thread);
	 * the plain build proves the workers themselves map nothing. */
	ALLOW(__NR_sigaltstack);
	ALLOW(__NR_sched_getaffinity);
	ALLOW_ARG(__NR_mmap, MASKED(2, PROT_EXEC, 0));
	ALLOW_ARG(__NR_mprotect, MASKED(2, PROT_EXEC, 0));
#endif
	/* Export the BPF once, here: the threads only install it. */
	ck_assert_int_eq(pipe(pfd), 0);
	ck_assert_int_eq(seccomp_export_bpf(ctx, pfd[1]), 0);
	close(pfd[1]);
	static struct sock_filter insns[4096];
	ssize_t n = read(pfd[0], insns, sizeof(insns));

	close(pfd[0]);
	ck_assert_int_gt(n, 0);
	prog.len = (unsigned short)(n / (ssize_t)sizeof(insns[0]));
	prog.filter = insns;
	seccomp_release(ctx);

	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	ck_assert_int_eq(sigaction(SIGSYS, &sa, NULL), 0);
}

int wf_enter(void *unused, struct kv_err *e)
{
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0 ||
	    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) < 0)
		return kv_err_set(e, -errno, "seccomp: %s", strerror(errno));
	atomic_fetch_add(&wf_entered, 1);
	return 0;
}
