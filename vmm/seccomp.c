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
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/seccomp.h>
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

#if defined(__SANITIZE_ADDRESS__)
#define SC_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SC_ASAN 1
#endif
#endif

#define VCPU (1u << SECCOMP_VCPU)
#define IO   (1u << SECCOMP_IO)
#define MAIN (1u << SECCOMP_MAIN)
#define ALL  (VCPU | IO | MAIN)

struct sc_call {
	unsigned kinds;
	int nr;
};

/* System calls allowed without looking at their arguments. mmap,
 * mprotect (never with PROT_EXEC), tgkill (only the vCPU kick and abort)
 * and ioctl (by request number) are added in add_rules. */
static const struct sc_call calls[] = {
	/* Every thread: memory for malloc, locks, time, logging to stderr,
	 * eventfd signalling, the vCPU kick, leaving. */
	{ ALL,  SCMP_SYS(read) },       /* eventfds, stdin, signalfd, libaio's eventfd */
	{ ALL,  SCMP_SYS(write) },      /* console out, stderr, eventfds (irqfd, kicks, stop) */
	{ ALL,  SCMP_SYS(writev) },     /* virtio-console output */
	{ ALL,  SCMP_SYS(futex) },
	{ ALL,  SCMP_SYS(clock_gettime) }, /* when the vDSO falls back (no stable TSC) */
	{ ALL,  SCMP_SYS(gettimeofday) },
	{ ALL,  SCMP_SYS(munmap) },
	{ ALL,  SCMP_SYS(madvise) },
	{ ALL,  SCMP_SYS(mremap) },
	{ ALL,  SCMP_SYS(brk) },
	{ ALL,  SCMP_SYS(epoll_ctl) },  /* evloop_add/mod/del: queue setup and reset from a vCPU */
	{ ALL,  SCMP_SYS(io_getevents) }, /* virtio-blk drains in-flight requests on reset */
	{ ALL,  SCMP_SYS(rt_sigprocmask) }, /* pthread_kill, abort */
	{ ALL,  SCMP_SYS(rt_sigreturn) },
	{ ALL,  SCMP_SYS(restart_syscall) },
	{ ALL,  SCMP_SYS(getpid) },
	{ ALL,  SCMP_SYS(gettid) },
	{ ALL,  SCMP_SYS(sched_yield) },
	{ ALL,  SCMP_SYS(exit) },
	{ ALL,  SCMP_SYS(exit_group) },
	/* The event loop: virtqueue work, disks (libaio or plain), taps. */
	{ IO,   SCMP_SYS(epoll_wait) },
	{ IO,   SCMP_SYS(epoll_pwait) },
	{ IO,   SCMP_SYS(readv) },
	{ IO,   SCMP_SYS(preadv) },
	{ IO,   SCMP_SYS(pwritev) },
	{ IO,   SCMP_SYS(preadv2) },
	{ IO,   SCMP_SYS(pwritev2) },
	{ IO,   SCMP_SYS(pread64) },
	{ IO,   SCMP_SYS(pwrite64) },
	{ IO,   SCMP_SYS(io_submit) },
	{ IO,   SCMP_SYS(fdatasync) },
	{ IO,   SCMP_SYS(fsync) },
	{ IO,   SCMP_SYS(fallocate) },  /* discard / write-zeroes, snapshot overlay */
	/* The main thread: console input and signals, then teardown. */
	{ MAIN, SCMP_SYS(poll) },
	{ MAIN, SCMP_SYS(signalfd4) },   /* terminal_run makes its signalfd after the filter */
	{ MAIN, SCMP_SYS(ppoll) },
	{ MAIN, SCMP_SYS(close) },
	{ MAIN, SCMP_SYS(io_destroy) },
	{ MAIN, SCMP_SYS(getrusage) },
	{ MAIN, SCMP_SYS(fstat) },      /* stdio's first write to a stream */
	{ MAIN, SCMP_SYS(newfstatat) },
	{ MAIN, SCMP_SYS(lseek) },
#ifdef SC_ASAN
	/* AddressSanitizer's runtime: the alternate signal stack of an
	 * exiting thread, its allocator's per-thread setup. */
	{ ALL,  SCMP_SYS(sigaltstack) },
	{ ALL,  SCMP_SYS(sched_getaffinity) },
#endif
};

struct sc_ioctl {
	unsigned kinds;
	unsigned long req;
};

static const struct sc_ioctl ioctls[] = {
	{ VCPU, KVM_RUN },
	{ VCPU | MAIN, KVM_GET_REGS },   /* register dump on a crash, KVMINI_DUMP_ON_EXIT */
	{ VCPU | MAIN, KVM_GET_SREGS },
	{ ALL,  KVM_IRQ_LINE },          /* INTx and the UART: from any thread */
	{ VCPU | MAIN, KVM_IRQFD },      /* MSI-X vectors routed by the guest / torn down */
	{ VCPU | MAIN, KVM_SET_GSI_ROUTING },
	{ VCPU | MAIN, KVM_IOEVENTFD },
	{ VCPU | IO, TUNSETOFFLOAD },    /* virtio-net feature negotiation and reset */
	{ ALL,  TCSETSF },               /* terminal_restore, also from the SIGSYS handler */
	{ MAIN, TCGETS },                /* isatty */
};

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
	static const char *const n[] = { "vcpu", "io", "main" };

	return (unsigned)kind < SECCOMP_NR_THREADS ? n[kind] : "?";
}

/* libseccomp's SCMP_An() macros leave datum_b out, which clang's
 * -Wmissing-field-initializers rejects: spell every field. */
static struct scmp_arg_cmp arg_cmp(unsigned arg, enum scmp_compare op, scmp_datum_t a,
				   scmp_datum_t b)
{
	return (struct scmp_arg_cmp){ .arg = arg, .op = op, .datum_a = a, .datum_b = b };
}

static int add_rules(scmp_filter_ctx ctx, unsigned kind_bit)
{
	int r = 0;

	for (size_t i = 0; i < sizeof(calls) / sizeof(calls[0]) && !r; i++)
		if (calls[i].kinds & kind_bit)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i].nr, 0);
	for (size_t i = 0; i < sizeof(ioctls) / sizeof(ioctls[0]) && !r; i++)
		if (ioctls[i].kinds & kind_bit)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
					     arg_cmp(1, SCMP_CMP_EQ, ioctls[i].req, 0));
	/* Memory never becomes executable after setup. */
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
				     arg_cmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
				     arg_cmp(2, SCMP_CMP_MASKED_EQ, PROT_EXEC, 0));
	/* Signals to threads of this process: the vCPU kick and abort(). */
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
				     arg_cmp(2, SCMP_CMP_EQ, SIGUSR1, 0));
	if (!r)
		r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
				     arg_cmp(2, SCMP_CMP_EQ, SIGABRT, 0));
	return r;
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
		r = add_rules(ctx, 1u << kind);
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
	SECCOMP_VCPU, SECCOMP_IO, SECCOMP_MAIN,
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
