/* What a thread started by a lower layer (the event loop, a device's
 * workers) runs first, before it touches anything a guest controls. The
 * composition injects it (vmm/seccomp.c hands out each kind of thread's
 * system call filter), so the lower layer knows no policy; a NULL policy
 * or hook means none. The thread must have done every first allocation
 * it will ever need before calling it (SECURITY.md). */
#ifndef KVMINI_THREAD_POLICY_H
#define KVMINI_THREAD_POLICY_H

#include <stddef.h>
#include "kvmini/err.h"

struct thread_policy {
	int (*enter)(const void *ctx, struct kv_err *e);
	const void *ctx;
};

static inline int thread_policy_enter(const struct thread_policy *p, struct kv_err *e)
{
	return p && p->enter ? p->enter(p->ctx, e) : 0;
}

#endif
