/* A small pool of worker threads for blocking work (devices/fs/pool.c):
 * the FUSE server's file-system calls, so a slow host file system never
 * stalls a vCPU or the event loop. Jobs are intrusive (the caller owns
 * their memory), each worker has a scratch buffer allocated before it
 * starts, and nothing in a worker allocates: the pool never mallocs after
 * creation.
 *
 * Start-up of each worker, in order: @worker_init (the owner's own
 * per-thread setup, e.g. the server's umask), then @thread_enter (the
 * VM's: installs the worker's seccomp filter; NULL: nothing). A failure
 * in either fails fs_pool_create with that message. From then on a
 * worker only waits on the pool's condition variable and runs jobs. */
#ifndef KVMINI_FS_POOL_H
#define KVMINI_FS_POOL_H

#include <stddef.h>

#include "kvmini/err.h"

#define FS_POOL_MAX_WORKERS 64

struct fs_pool_job {
	struct fs_pool_job *next;
	void *owner;          /* for fs_pool_cancel */
};

struct fs_pool_cfg {
	const char *name;     /* for messages and thread names ("fs0" -> "fs0-w1") */
	unsigned nr_workers;  /* 1 .. FS_POOL_MAX_WORKERS */
	size_t scratch_size;  /* per worker, allocated (zeroed) by fs_pool_create */
	/* Runs a job on a worker. */
	void (*run)(void *ctx, struct fs_pool_job *job, void *scratch);
	void *ctx;
	int (*worker_init)(void *ctx, struct kv_err *e); /* NULL: nothing */
	int (*thread_enter)(void *thread_ctx, struct kv_err *e);
	void *thread_ctx;
};

struct fs_pool;

/* Starts the workers and waits until each has run its start-up. */
int fs_pool_create(const struct fs_pool_cfg *cfg, struct fs_pool **out,
		   struct kv_err *e) KV_MUST_CHECK;
/* Stops and joins the workers (each finishes the job it runs); jobs
 * still queued are dropped and counted in the return value. */
unsigned fs_pool_destroy(struct fs_pool *p);
/* Queues @job (any thread); a free worker picks it up. */
void fs_pool_submit(struct fs_pool *p, struct fs_pool_job *job);
/* Removes the queued (not yet started) jobs of @owner; returns how many. */
unsigned fs_pool_cancel(struct fs_pool *p, void *owner);

#endif
