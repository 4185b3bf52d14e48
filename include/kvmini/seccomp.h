/* Per-thread seccomp allow-lists (libseccomp), installed once setup is
 * done: every file, tap, eventfd and KVM fd is open before the threads
 * that use them start running the guest. A call outside a thread's list
 * never runs: the kernel raises SIGSYS (SECCOMP_RET_TRAP) and the handler
 * writes
 *   kvmini: seccomp: thread <kind> made forbidden system call <nr> (<name>)
 * to stderr, calls the fatal hook (the front end restores the terminal)
 * and ends the whole process with _exit(KVMINI_EXIT_FAILURE).
 * The lists themselves are in vmm/seccomp.c and summarised in SECURITY.md. */
#ifndef KVMINI_SECCOMP_H
#define KVMINI_SECCOMP_H

#include <stdbool.h>
#include "kvmini/err.h"
#include "kvmini/thread_policy.h"

enum seccomp_thread {
	SECCOMP_VCPU,   /* KVM_RUN loop and the device emulation it dispatches to */
	SECCOMP_IO,     /* the event loop: virtqueues, disk and tap I/O */
	SECCOMP_MAIN,   /* console input, signals, then teardown */
	SECCOMP_FS,     /* virtio-fs workers: file-system calls on the share's fds */
	SECCOMP_NR_THREADS
};

/* "vcpu", "io", "main", "fs": the <kind> of the message above. */
const char *seccomp_thread_name(enum seccomp_thread kind);

/* Builds the filters of every kind of thread and installs the SIGSYS
 * reporter; from then on seccomp_thread_start() filters the calling
 * thread. Call from the main thread before any other thread starts.
 * Without it (--seccomp=off, unit tests) seccomp_thread_start does nothing. */
int seccomp_enable(struct kv_err *e) KV_MUST_CHECK;
bool seccomp_enabled(void);

/* Installs @kind's filter on the calling thread (and on threads it
 * creates later); other threads are not touched. Builds the filters
 * first if seccomp_enable has not. There is no way back. */
int seccomp_apply(enum seccomp_thread kind, struct kv_err *e) KV_MUST_CHECK;

/* For threads as they start: seccomp_apply when seccomp_enable ran,
 * else nothing. */
int seccomp_thread_start(enum seccomp_thread kind, struct kv_err *e) KV_MUST_CHECK;

/* The same, as a policy to hand to a lower layer that starts threads
 * (evloop_start, a device's workers). */
struct thread_policy seccomp_policy(enum seccomp_thread kind);

/* Called from the SIGSYS handler before the process ends: must be
 * async-signal-safe (tcsetattr is). NULL: none. */
void seccomp_set_fatal_hook(void (*hook)(void));

#endif
