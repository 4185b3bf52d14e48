/* The allow-lists of kvmini's threads, with the argument checks that
 * narrow each call to the way kvmini uses it (SECURITY.md prints the
 * same table). Anything not here raises SIGSYS (vmm/seccomp.c).
 *
 * Threads: VCPU runs KVM_RUN and the device emulation an exit dispatches
 * to (register writes: virtio queue setup and reset, MSI-X routing); IO
 * is the event loop (virtqueues, disk and tap I/O); MAIN reads the
 * console, takes signals, then tears down; FS are the virtio-fs workers
 * (their file-system calls: vmm/seccomp_rules_fs.c). No thread opens a file,
 * creates a socket or a thread, or executes anything once filtered. */
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <signal.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <termios.h>

#include "kvmini/seccomp.h"
#include "seccomp_rules.h"

#define VCPU (1u << SECCOMP_VCPU)
#define IO   (1u << SECCOMP_IO)
#define MAIN (1u << SECCOMP_MAIN)
#define FS   (1u << SECCOMP_FS)
#define ALL  (VCPU | IO | MAIN)
#define ANY  (ALL | FS)

struct sc_call {
	unsigned kinds;
	int nr;
};

/* Calls whose arguments cannot do harm beyond what the thread's own
 * job needs (reads and writes on fds kvmini opened, waiting, time). */
static const struct sc_call calls[] = {
	{ ALL,  SCMP_SYS(read) },       /* eventfds, stdin, signalfd, libaio's eventfd */
	{ ANY,  SCMP_SYS(write) },      /* console out, stderr, eventfds (irqfd, kicks, stop) */
	{ ALL,  SCMP_SYS(writev) },     /* virtio-console output */
	{ ANY,  SCMP_SYS(futex) },
	{ ANY,  SCMP_SYS(clock_gettime) }, /* when the vDSO falls back (no stable TSC) */
	{ ANY,  SCMP_SYS(gettimeofday) },
	{ ANY,  SCMP_SYS(munmap) },
	{ ANY,  SCMP_SYS(brk) },        /* malloc: one arena, grown and trimmed with brk */
	{ ALL,  SCMP_SYS(epoll_ctl) },  /* evloop_add/mod/del: queue setup and reset from a vCPU */
	{ ALL,  SCMP_SYS(io_getevents) }, /* virtio-blk drains in-flight requests on reset */
	{ ANY,  SCMP_SYS(rt_sigprocmask) }, /* pthread_kill, abort */
	{ ANY,  SCMP_SYS(rt_sigreturn) },
	{ ANY,  SCMP_SYS(restart_syscall) },
	{ ANY,  SCMP_SYS(getpid) },
	{ ANY,  SCMP_SYS(gettid) },
	{ ANY,  SCMP_SYS(sched_yield) },
	{ ANY,  SCMP_SYS(exit) },
	{ ANY,  SCMP_SYS(exit_group) },
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
	/* The main thread: console input and signals, then teardown. */
	{ MAIN, SCMP_SYS(poll) },
	{ MAIN, SCMP_SYS(signalfd4) },   /* terminal_run makes its signalfd after the filter */
	{ MAIN, SCMP_SYS(ppoll) },
	{ MAIN, SCMP_SYS(close) },
	{ MAIN, SCMP_SYS(io_destroy) },
	{ MAIN, SCMP_SYS(getrusage) },
	{ MAIN, SCMP_SYS(fstat) },      /* stdio's first write to a stream */
	{ MAIN, SCMP_SYS(newfstatat) },
	{ MAIN, SCMP_SYS(lseek) },      /* also --report: /proc/self/statm, opened before, read again at the end */
	{ MAIN, SCMP_SYS(pread64) },    /* --report: KVM's statistics fds (KVM_GET_STATS_FD) */
	{ MAIN, SCMP_SYS(mincore) },    /* --report: which guest RAM pages are resident (gm_resident_bytes) */
	{ MAIN, SCMP_SYS(wait4) },      /* --net user: reaping passt (kvmini's only child) at teardown */
#ifdef SC_ASAN
	/* AddressSanitizer's runtime: the alternate signal stack of an
	 * exiting thread, its allocator's per-thread setup. */
	{ ANY,  SCMP_SYS(sigaltstack) },
	{ ANY,  SCMP_SYS(sched_getaffinity) },
#endif
};

struct sc_ioctl {
	unsigned kinds;
	unsigned long req;
};

/* ioctl by request number. */
static const struct sc_ioctl ioctls[] = {
	{ VCPU, KVM_RUN },
	{ VCPU | MAIN, KVM_GET_REGS },   /* register dump on a crash, KVMINI_DUMP_ON_EXIT */
	{ VCPU | MAIN, KVM_GET_SREGS },
	{ ANY,  KVM_IRQ_LINE },          /* INTx, the UART, a virtio-fs completion: any thread */
	{ VCPU | MAIN, KVM_IRQFD },      /* MSI-X vectors routed by the guest / torn down */
	{ VCPU | MAIN, KVM_SET_GSI_ROUTING },
	{ VCPU | MAIN, KVM_IOEVENTFD },
	{ VCPU | IO, TUNSETOFFLOAD },    /* virtio-net feature negotiation and reset */
	{ ANY,  TCSETSF },               /* terminal_restore, also from the SIGSYS handler */
	{ MAIN, TCGETS },                /* isatty */
	{ MAIN, TIOCGWINSZ },            /* the terminal's size, on SIGWINCH */
	{ MAIN, KVM_GET_STATS_FD },      /* --report: KVM's statistics, read once the VM stopped */
};

/* madvise advice glibc and kvmini give after setup: freeing pages (a
 * thread stack at exit, trimmed memory). */
static const int advice[] __attribute__((unused)) = { MADV_DONTNEED, MADV_FREE };

/* fallocate modes: hole punching (discard, write-zeroes, the snapshot
 * overlay); never growing or collapsing a file. */
static const int falloc_modes[] = { FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE };

/* Signals a thread may send, to a thread of this very process: the vCPU
 * kick and abort(). */
static const int signals[] = { SIGUSR1, SIGABRT };

/* libseccomp's SCMP_An() macros leave datum_b out, which clang's
 * -Wmissing-field-initializers rejects: spell every field. */
static struct scmp_arg_cmp arg(unsigned n, enum scmp_compare op, scmp_datum_t a, scmp_datum_t b)
{
	return (struct scmp_arg_cmp){ .arg = n, .op = op, .datum_a = a, .datum_b = b };
}

static struct scmp_arg_cmp arg_eq(unsigned n, scmp_datum_t v)
{
	return arg(n, SCMP_CMP_EQ, v, 0);
}

/* (arg & mask) == want */
static struct scmp_arg_cmp arg_masked(unsigned n, scmp_datum_t mask, scmp_datum_t want)
{
	return arg(n, SCMP_CMP_MASKED_EQ, mask, want);
}

#define ALLOW(ctx, call, ...) \
	seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(call), __VA_ARGS__)
#define N(a) (sizeof(a) / sizeof((a)[0]))

static int add_memory_rules(scmp_filter_ctx ctx)
{
	int r;

	/* Anonymous memory only (fd -1; glibc passes it sign-extended), never
	 * executable: no file is mapped and no code appears after setup. */
	r = ALLOW(ctx, mmap, 3, arg_masked(2, PROT_EXEC, 0),
		  arg_masked(3, MAP_ANONYMOUS, MAP_ANONYMOUS),
		  arg_masked(4, 0xffffffffu, 0xffffffffu));
	if (!r)
		r = ALLOW(ctx, mprotect, 1, arg_masked(2, PROT_EXEC, 0));
	/* realloc of a large block: may move, never onto a fixed address. */
	if (!r)
		r = ALLOW(ctx, mremap, 1, arg_masked(3, ~(scmp_datum_t)MREMAP_MAYMOVE, 0));
#ifdef SC_ASAN
	/* ASan's allocator gives more advice (NOHUGEPAGE, DONTDUMP...). */
	if (!r)
		r = ALLOW(ctx, madvise, 0);
#else
	for (size_t i = 0; i < N(advice) && !r; i++)
		r = ALLOW(ctx, madvise, 1, arg_eq(2, (scmp_datum_t)advice[i]));
#endif
	return r;
}

static int add_signal_rules(scmp_filter_ctx ctx, pid_t pid)
{
	int r = 0;

	for (size_t i = 0; i < N(signals) && !r; i++)
		r = ALLOW(ctx, tgkill, 2, arg_eq(0, (scmp_datum_t)pid),
			  arg_eq(2, (scmp_datum_t)signals[i]));
	return r;
}

int seccomp_rules_add(scmp_filter_ctx ctx, unsigned kind, pid_t pid)
{
	unsigned bit = 1u << kind;
	int r = 0;

	for (size_t i = 0; i < N(calls) && !r; i++)
		if (calls[i].kinds & bit)
			r = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, calls[i].nr, 0);
	for (size_t i = 0; i < N(ioctls) && !r; i++)
		if (ioctls[i].kinds & bit)
			r = ALLOW(ctx, ioctl, 1, arg_eq(1, ioctls[i].req));
	if (!r && (bit & IO))
		for (size_t i = 0; i < N(falloc_modes) && !r; i++)
			r = ALLOW(ctx, fallocate, 1, arg_eq(1, (scmp_datum_t)falloc_modes[i]));
	if (!r && (bit & FS))
		r = seccomp_rules_add_fs(ctx);
	if (!r)
		r = add_memory_rules(ctx);
	if (!r)
		r = add_signal_rules(ctx, pid);
	return r;
}
