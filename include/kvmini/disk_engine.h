/* The disk layer's submission engine (devices/disk/engine.c): reads,
 * writes and fdatasyncs on file descriptors, through Linux AIO with its
 * completions signalled on an eventfd that the event loop watches, or
 * synchronously when the kernel has no AIO. Every I/O completes through
 * disk_engine_reap(), also the ones done synchronously, so its user has
 * one completion path. It knows nothing of disks, overlays or virtio.
 *
 * Not thread-safe: the caller serialises every call (virtio-blk holds
 * its device lock). Nothing here allocates after disk_engine_init. */
#ifndef KVMINI_DISK_ENGINE_H
#define KVMINI_DISK_ENGINE_H

#include <libaio.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "kvmini/err.h"

enum disk_io_op { DISK_IO_READ, DISK_IO_WRITE, DISK_IO_FSYNC };

/* One I/O, owned by the caller until disk_engine_reap hands it back. */
struct disk_io {
	/* set by the caller */
	enum disk_io_op op;
	int fd;
	int fallback_fd;           /* @fd is O_DIRECT: where to redo the I/O when
				    * the file system refuses it (EINVAL); -1: none */
	const struct iovec *iov;   /* READ, WRITE: kept valid until reaped */
	unsigned niov;
	uint64_t off;
	uint64_t len;              /* READ, WRITE: the bytes @iov holds */
	/* set by the engine when it hands the I/O back */
	int res;                   /* 0, or -errno (a short transfer is -EIO) */
	/* the engine's */
	struct iocb iocb;
	struct disk_io *next;
	bool ran;                  /* manual engine: executed, not yet handed back */
};

enum disk_engine_kind {
	DISK_ENGINE_AUTO = 0,      /* Linux AIO; synchronous when the kernel has none */
	DISK_ENGINE_SYNC,          /* synchronous I/O in disk_engine_submit */
	DISK_ENGINE_MANUAL,        /* tests: I/O waits until disk_engine_run_held */
};

struct disk_io_list {
	struct disk_io *head, *tail;
	unsigned n;
};

struct disk_engine {
	char name[32];
	enum disk_engine_kind kind;  /* in effect: AUTO means AIO is on */
	int efd;                     /* signalled when something can be reaped */
	io_context_t ctx;
	bool aio_fsync;              /* IOCB_CMD_FDSYNC works */
	unsigned depth, in_kernel;
	struct disk_io_list pending; /* AIO refused with EAGAIN: resubmitted on reap */
	struct disk_io_list done;    /* finished, not yet handed back */
	struct disk_io_list held;    /* manual engine: submitted, not yet run */
};

/* Sets up an engine for at most @depth I/Os at once, named @name in log
 * lines. AUTO falls back to synchronous I/O (with a warning) when
 * io_setup fails. */
int disk_engine_init(struct disk_engine *e, enum disk_engine_kind kind, unsigned depth,
		     const char *name, struct kv_err *err) KV_MUST_CHECK;
/* After disk_engine_drain: releases the context and the eventfd. */
void disk_engine_fini(struct disk_engine *e);
/* What the event loop watches (EPOLLIN). */
int disk_engine_fd(const struct disk_engine *e);

/* Starts @io; it comes back through disk_engine_reap. */
void disk_engine_submit(struct disk_engine *e, struct disk_io *io);
/* Hands back an I/O its user did itself (or refused), with @res, through
 * the same path. */
void disk_engine_finish(struct disk_engine *e, struct disk_io *io, int res);

typedef void (*disk_io_done)(void *opaque, struct disk_io *io);
/* Collects finished I/Os (an O_DIRECT I/O the file system refused with
 * EINVAL is redone on its fallback fd first) and calls @done for each,
 * in no particular order, until none is left; @done may submit and
 * finish more. Returns how many it handed back. */
unsigned disk_engine_reap(struct disk_engine *e, disk_io_done done, void *opaque);
/* Waits for every I/O the kernel holds (their buffers may be about to
 * go away), then hands back everything: finished I/Os with their
 * result, the ones never started with -ECANCELED. Starts nothing, so it
 * runs on any thread. */
void disk_engine_drain(struct disk_engine *e, disk_io_done done, void *opaque);

/* Manual engine (tests): how many I/Os wait, and running the @k-th of
 * them (0 = oldest) now: it is handed back at the next reap when
 * @hand_back, else it stays held (run) until a later call hands it back.
 * 0, or -ENOENT when there is no such I/O. */
unsigned disk_engine_held(const struct disk_engine *e);
int disk_engine_run_held(struct disk_engine *e, unsigned k, bool hand_back);

#endif
