/* A seccomp filter holding exactly the system calls devices/fs/pool.c
 * documents for a FUSE worker (with the argument checks listed there),
 * installed by a thread_enter hook, so a test proves the list complete:
 * a call outside it traps, and the SIGSYS handler records its number
 * (the call then fails with ENOSYS) for the test to report. */
#ifndef KVMINI_TEST_WORKER_FILTER_H
#define KVMINI_TEST_WORKER_FILTER_H

#include <stdatomic.h>

#include "kvmini/err.h"

/* The first forbidden call a filtered thread made (0: none), and how
 * many. */
extern atomic_int wf_trapped_nr;
extern atomic_int wf_trapped_count;
extern atomic_int wf_entered;

/* Builds the filter and installs the SIGSYS recorder (main thread, once). */
void wf_init(void);
/* The thread_enter hook: installs the filter on the calling thread. */
int wf_enter(void *ctx, struct kv_err *e);

#endif
