/* Per-thread seccomp filters.
 *
 * The filters are built with libseccomp once, in the main thread, before
 * any other thread starts, and kept as raw BPF; a thread installs its own
 * with two plain system calls (prctl, seccomp), so nothing that can fail
 * for lack of memory or a library quirk runs in the threads themselves.
 * Filters are per thread (no TSYNC): the main thread installs its filter
 * last, after it created every vCPU and the event-loop thread, so those
 * do not inherit it.
 *
 * Default action SECCOMP_RET_TRAP, not KILL_PROCESS: KILL_PROCESS can
 * only log to the kernel's audit log, and the user should see on stderr
 * which call was refused. The refused call never runs either way; the
 * SIGSYS handler only reports it (async-signal-safe) and ends the
 * process. The filters allow neither rt_sigaction nor sigprocmask tricks
 * that could unhook it: rt_sigaction is not on any list, and a SIGSYS
 * that arrives blocked is fatal anyway (the kernel forces it). */
#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <malloc.h>
#include <seccomp.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/ucontext.h>
#include <time.h>
#include <unistd.h>

#include "kvmini/config.h"
#include "kvmini/seccomp.h"
#include "seccomp_rules.h"

/* ---- building ---- */

struct sc_prog {
	struct sock_filter *insns;
	unsigned short len;
};

static struct sc_prog progs[SECCOMP_NR_THREADS];
static bool enabled;

/* Names for the message, resolved ahead: the handler cannot allocate. */
#define SC_NAMES 512
static char names[SC_NAMES][24];
static bool names_done;

static __thread int thread_kind = -1;
static void (*fatal_hook)(void);

const char *seccomp_thread_name(enum seccomp_thread kind)
{
	static const char *const n[] = { "vcpu", "io", "main", "fs" };

	return (unsigned)kind < SECCOMP_NR_THREADS ? n[kind] : "?";
}

/* libseccomp 2.5 exports BPF only to an fd: a memfd, read back. */
static int export_prog(scmp_filter_ctx ctx, struct sc_prog *p)
{
	int fd = memfd_create("kvmini-seccomp", MFD_CLOEXEC);
	struct stat st;
	int r;

	if (fd < 0)
		return -errno;
	r = seccomp_export_bpf(ctx, fd);
	if (!r && fstat(fd, &st) < 0)
		r = -errno;
	if (!r && (st.st_size <= 0 || st.st_size % sizeof(struct sock_filter) ||
		   st.st_size / sizeof(struct sock_filter) > BPF_MAXINSNS))
		r = -E2BIG;
	if (!r) {
		p->insns = malloc((size_t)st.st_size);
		if (!p->insns)
			r = -ENOMEM;
		else if (pread(fd, p->insns, (size_t)st.st_size, 0) != st.st_size)
			r = -EIO;
		p->len = (unsigned short)(st.st_size / sizeof(struct sock_filter));
	}
	close(fd);
	return r;
}

static int build(enum seccomp_thread kind, struct kv_err *e)
{
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_TRAP);
	int r;

	if (!ctx)
		return kv_err_set(e, -ENOMEM, "seccomp: cannot start the %s filter",
				  seccomp_thread_name(kind));
	/* A 32-bit or x32 system call is never kvmini's own. */
	r = seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
	if (!r)
		r = seccomp_rules_add(ctx, (unsigned)kind, getpid());
	if (!r)
		r = export_prog(ctx, &progs[kind]);
	seccomp_release(ctx);
	if (r)
		return kv_err_set(e, r, "seccomp: building the %s thread's filter: %s",
				  seccomp_thread_name(kind), strerror(-r));
	return 0;
}

static void resolve_names(void)
{
	for (int nr = 0; nr < SC_NAMES; nr++) {
		char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);

		if (s) {
			strncpy(names[nr], s, sizeof(names[nr]) - 1);
			free(s);
		}
	}
	names_done = true;
}

/* ---- reporting ---- */

static size_t put_str(char *buf, size_t at, size_t cap, const char *s)
{
	while (*s && at < cap)
		buf[at++] = *s++;
	return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, unsigned long v, unsigned base)
{
	char tmp[24];
	size_t n = 0;

	do {
		tmp[n++] = "0123456789abcdef"[v % base];
		v /= base;
	} while (v && n < sizeof(tmp));
	while (n && at < cap)
		buf[at++] = tmp[--n];
	return at;
}

static void sigsys_handler(int sig, siginfo_t *si, void *ucv)
{
	const ucontext_t *uc = ucv;
	char msg[192];
	size_t cap = sizeof(msg) - 2, n = 0;
	int nr = si->si_syscall;

	(void)sig;
	n = put_str(msg, n, cap, "kvmini: seccomp: thread ");
	n = put_str(msg, n, cap, thread_kind >= 0 ? seccomp_thread_name(thread_kind) : "?");
	n = put_str(msg, n, cap, " made forbidden system call ");
	n = put_num(msg, n, cap, (unsigned long)nr, 10);
	n = put_str(msg, n, cap, " (");
	n = put_str(msg, n, cap, nr >= 0 && nr < SC_NAMES && names[nr][0] ? names[nr] : "?");
	if (nr == SYS_ioctl) {
		n = put_str(msg, n, cap, " request 0x");
		n = put_num(msg, n, cap, (unsigned long)uc->uc_mcontext.gregs[REG_RSI], 16);
	}
	n = put_str(msg, n, cap, ")");
	/* "\r\n": the terminal may be in raw mode until the line below. */
	msg[n++] = '\r';
	msg[n++] = '\n';
	if (write(STDERR_FILENO, msg, n) < 0) {
		/* nothing better to do */
	}
	if (fatal_hook)
		fatal_hook(); /* the terminal's mode back: tcsetattr is async-signal-safe */
	_exit(KVMINI_EXIT_FAILURE);
}

static int install_handler(struct kv_err *e)
{
	struct sigaction sa = { .sa_sigaction = sigsys_handler, .sa_flags = SA_SIGINFO };

	sigfillset(&sa.sa_mask);
	if (sigaction(SIGSYS, &sa, NULL) < 0)
		return kv_err_set(e, -errno, "seccomp: sigaction(SIGSYS): %s", strerror(errno));
	return 0;
}

/* ---- public ---- */

/* glibc state that is set up lazily on first use, with system calls no
 * filter allows, is set up here, before any filter. */
static void warm_up_libc(void)
{
	/* The first gmtime_r (the CMOS RTC, on a vCPU) runs tzset, which
	 * opens /etc/localtime: seen as "thread vcpu made forbidden system
	 * call 257 (openat)" when the guest first read the clock. */
	tzset();
	/* One malloc arena for every thread. glibc gives threads arenas of
	 * their own; past eight it asks the kernel for the CPU count
	 * (sched_getaffinity or /sys), and shrinking a thread arena's heap
	 * reads /proc/sys/vm/overcommit_memory: a Debian boot's disk I/O
	 * killed the I/O thread that way. The main arena grows and shrinks
	 * with brk and mmap only. Before any thread allocates. */
	mallopt(M_ARENA_MAX, 1);
}

/* A thread's first malloc sets up its malloc state (tcache, its arena
 * binding): done here, before the filter, whatever the thread does
 * afterwards. */
static void warm_up_thread(void)
{
	free(malloc(1));
}

static int prepare(struct kv_err *e)
{
	int r;

	warm_up_libc();
	if (!names_done)
		resolve_names();
	for (int k = 0; k < SECCOMP_NR_THREADS; k++) {
		if (progs[k].insns)
			continue;
		r = build((enum seccomp_thread)k, e);
		if (r)
			return r;
	}
	return install_handler(e);
}

int seccomp_enable(struct kv_err *e)
{
	int r = prepare(e);

	if (!r)
		enabled = true;
	return r;
}

bool seccomp_enabled(void)
{
	return enabled;
}

int seccomp_apply(enum seccomp_thread kind, struct kv_err *e)
{
	struct sock_fprog fprog;
	int r;

	if ((unsigned)kind >= SECCOMP_NR_THREADS)
		return kv_err_set(e, -EINVAL, "seccomp: no such thread kind %d", (int)kind);
	if (!progs[kind].insns) {
		r = prepare(e);
		if (r)
			return r;
	}
	warm_up_thread();
	fprog = (struct sock_fprog){ .len = progs[kind].len, .filter = progs[kind].insns };
	/* Needed to filter without CAP_SYS_ADMIN; kvmini never execs anyway. */
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
		return kv_err_set(e, -errno, "seccomp: PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
	thread_kind = (int)kind;
	if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0) {
		r = -errno;
		thread_kind = -1;
		return kv_err_set(e, r, "seccomp: installing the %s thread's filter: %s%s",
				  seccomp_thread_name(kind), strerror(-r),
				  r == -EINVAL ? " (a kernel without seccomp filters? use --seccomp=off)" : "");
	}
	return 0;
}

int seccomp_thread_start(enum seccomp_thread kind, struct kv_err *e)
{
#ifdef SC_ASAN
	/* LeakSanitizer's check at exit runs in a helper process that the
	 * main thread clones and that inherits its filter; it needs clone,
	 * ptrace, wait4, /proc/self/task and more, and dies silently (so the
	 * exit hangs) when refused one. ASan builds are for finding bugs, not
	 * for running hostile guests: their main thread stays unfiltered, the
	 * vCPU and I/O threads are filtered as in every build. */
	if (kind == SECCOMP_MAIN)
		return 0;
#endif
	return enabled ? seccomp_apply(kind, e) : 0;
}

static const enum seccomp_thread policy_kinds[SECCOMP_NR_THREADS] = {
	SECCOMP_VCPU, SECCOMP_IO, SECCOMP_MAIN, SECCOMP_FS,
};

static int policy_enter(const void *ctx, struct kv_err *e)
{
	return seccomp_thread_start(*(const enum seccomp_thread *)ctx, e);
}

struct thread_policy seccomp_policy(enum seccomp_thread kind)
{
	if ((unsigned)kind >= SECCOMP_NR_THREADS)
		return (struct thread_policy){ 0 };
	return (struct thread_policy){ policy_enter, &policy_kinds[kind] };
}

void seccomp_set_fatal_hook(void (*hook)(void))
{
	fatal_hook = hook;
}
